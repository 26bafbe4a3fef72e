"""The review queue's tables: items the checkout engine was not sure about, and the
adjustments their resolution makes to receipts already issued.  Mixed into ``Store``."""

from __future__ import annotations

import json
from typing import Any

from cloud_sync.wire import KIND_ADJUSTMENT, KIND_REFUND, STREAM_TRANSACTIONS
from edge.store.base import StoreBase, new_event_id


class ReviewQueue(StoreBase):
    def add_review(
        self, device_id: str, ts: int, body: dict[str, Any], reason: str, token: str | None
    ) -> str:
        review_id = new_event_id()
        with self.transaction():
            self._add_review(review_id, device_id, ts, body, reason, token)
        return review_id

    def _add_review(
        self,
        review_id: str,
        device_id: str,
        ts: int,
        body: dict[str, Any],
        reason: str,
        token: str | None,
        *,
        delta_g: float | None = None,
        event: dict[str, Any] | None = None,
    ) -> None:
        """The item and its ``review_needed`` event, inside the caller's transaction
        (``delta_g``: default the body's; ``event``: more for the event's body)."""
        self._x(
            "INSERT INTO review_items (review_id, created_ms, device_id, reason, delta_g,"
            " session_token, body) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                review_id,
                ts,
                device_id,
                reason,
                body.get("delta_g", 0.0) if delta_g is None else delta_g,
                token,
                json.dumps(body, sort_keys=True),
            ),
        )
        self._event(
            "review_needed",
            ts,
            device_id,
            token,
            {**body, "review_id": review_id, "why": reason, **(event or {})},
        )

    def _review_row(self, row: dict[str, Any]) -> dict[str, Any]:
        out = {**row, "body": json.loads(row["body"])}
        out["resolution"] = json.loads(row["resolution"]) if row["resolution"] else None
        return out

    def review_item(self, review_id: str) -> dict[str, Any] | None:
        rows = list(self.db.query("SELECT * FROM review_items WHERE review_id = ?", (review_id,)))
        return self._review_row(rows[0]) if rows else None

    def reviews(self, status: str | None = "open", limit: int = 200) -> list[dict[str, Any]]:
        where, params = ("WHERE status = ?", (status, limit)) if status else ("", (limit,))
        rows = self.db.query(
            f"SELECT * FROM review_items {where} ORDER BY created_ms, review_id LIMIT ?", params
        )
        return [self._review_row(r) for r in rows]

    def review_count(self, status: str | None = None) -> int:
        if status is None:
            return int(self.db.execute("SELECT count(*) FROM review_items").fetchone()[0])
        return int(
            self.db.execute(
                "SELECT count(*) FROM review_items WHERE status = ?", (status,)
            ).fetchone()[0]
        )

    def _close_review(
        self, review_id: str, status: str, ts: int, by: str, resolution: dict[str, Any]
    ) -> None:
        cur = self.db.conn.execute(
            "UPDATE review_items SET status = ?, resolved_ms = ?, resolved_by = ?,"
            " resolution = ? WHERE review_id = ? AND status = 'open'",
            (status, ts, by, json.dumps(resolution, sort_keys=True), review_id),
        )
        if cur.rowcount != 1:
            raise LookupError(f"review item {review_id} is not open")

    def close_review(
        self, review_id: str, status: str, ts: int, by: str, resolution: dict[str, Any]
    ) -> None:
        with self.transaction():
            self._close_review(review_id, status, ts, by, resolution)
            self._event("review_" + status, ts, None, None, {"review_id": review_id})

    def resolve_review_into_cart(
        self, review_id: str, ts: int, by: str, decision: dict[str, Any], delta: int
    ) -> None:
        """Resolve and change the open session's cart in one transaction."""
        token, barcode = decision["session_token"], decision["barcode"]
        with self.transaction():
            self._close_review(review_id, "resolved", ts, by, decision)
            self._x(
                "INSERT INTO cart_lines (session_token, barcode, quantity) VALUES (?, ?, ?)"
                " ON CONFLICT(session_token, barcode) DO UPDATE SET"
                " quantity = quantity + excluded.quantity",
                (token, barcode, delta),
            )
            self._x("DELETE FROM cart_lines WHERE session_token = ? AND quantity <= 0", (token,))
            self._event(
                "cart_change",
                ts,
                None,
                token,
                {"barcode": barcode, "delta": delta, "review_id": review_id},
            )

    def resolve_review_into_receipt(
        self,
        review_id: str,
        ts: int,
        by: str,
        decision: dict[str, Any],
        delta: int,
        name: str,
        unit_price_minor: int,
    ) -> str:
        """Resolve against an issued receipt: an extra charge (delta > 0) or a refund."""
        token = decision["session_token"]
        row = self.db.conn.execute(
            "SELECT receipt_id, currency FROM receipts WHERE session_token = ?", (token,)
        ).fetchone()
        if row is None:
            raise LookupError(f"session {token!r} has no receipt")
        adjustment_id = new_event_id()
        with self.transaction():
            self._close_review(review_id, "resolved", ts, by, decision)
            self._x(
                "INSERT INTO receipt_adjustments (adjustment_id, receipt_id, review_id,"
                " barcode, name, quantity, unit_price_minor, amount_minor, created_ms)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    adjustment_id,
                    row[0],
                    review_id,
                    decision["barcode"],
                    name,
                    delta,
                    unit_price_minor,
                    delta * unit_price_minor,
                    ts,
                ),
            )
            self._event(
                "receipt_adjusted",
                ts,
                None,
                token,
                {
                    "receipt_id": row[0],
                    "adjustment_id": adjustment_id,
                    "amount_minor": delta * unit_price_minor,
                },
            )
            self.enqueue(  # money for HQ, in the SAME transaction as the adjustment
                STREAM_TRANSACTIONS,
                KIND_REFUND if delta < 0 else KIND_ADJUSTMENT,
                {
                    "adjustment_id": adjustment_id,
                    "receipt_id": row[0],
                    "review_id": review_id,
                    "session_token": token,
                    "barcode": decision["barcode"],
                    "name": name,
                    "quantity": delta,
                    "unit_price_minor": unit_price_minor,
                    "amount_minor": delta * unit_price_minor,
                    "currency": row[1],
                    "created_ms": ts,
                },
                ts_ms=ts,
                event_id=adjustment_id,
            )
        return adjustment_id
