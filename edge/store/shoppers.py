"""The shopper side's tables: check-ins, disputes, payments and online orders.

Mixed into ``Store``.  Everything here is written by the gateway's worker; the
API reads it through its read-only connection.
"""

from __future__ import annotations

import json
from typing import Any

from edge.store.base import new_event_id, where_clause
from edge.store.review import ReviewQueue

#: The "device" a dispute's review item names: the shopper app, not a shelf.
DISPUTE_DEVICE = "shopper-app"


class Shoppers(ReviewQueue):
    # ------------------------------------------------------------------ check-ins

    def add_checkin(self, token: str, shopper_id: str, issued_ms: int, expires_ms: int) -> None:
        with self.transaction():
            self._x(
                "INSERT INTO checkins (session_token, shopper_id, issued_ms, expires_ms)"
                " VALUES (?, ?, ?, ?)",
                (token, shopper_id, issued_ms, expires_ms),
            )
            self._event("checkin_issued", issued_ms, None, None, {"shopper_id": shopper_id})

    def checkin(self, token: str) -> dict[str, Any] | None:
        rows = list(self.db.query("SELECT * FROM checkins WHERE session_token = ?", (token,)))
        return rows[0] if rows else None

    def use_checkin(self, token: str, gate: str, ts: int) -> None:
        with self.transaction():
            self._x(
                "UPDATE checkins SET used_ms = ?, gate = ? WHERE session_token = ?"
                " AND used_ms IS NULL",
                (ts, gate, token),
            )

    def refuse_checkin(self, token: str, gate: str, ts: int, reason: str) -> None:
        """An entry refused: kept as an event (the shopper's app and staff can see why)."""
        with self.transaction():
            self._event("checkin_refused", ts, gate, token[:128], {"reason": reason})

    def session_shopper(self, token: str) -> str | None:
        row = self.db.conn.execute(
            "SELECT shopper_id FROM checkins WHERE session_token = ?", (token,)
        ).fetchone()
        return str(row[0]) if row else None

    def session_exists(self, token: str) -> bool:
        row = self.db.conn.execute("SELECT 1 FROM sessions WHERE token = ?", (token,)).fetchone()
        return row is not None

    def shopper_session_tokens(
        self, shopper_id: str, state: str | None = None, limit: int = 100
    ) -> list[str]:
        """The shopper's sessions (entered through the gate), newest first."""
        where = " AND s.state = ?" if state else ""
        params: tuple[Any, ...] = (shopper_id, state, limit) if state else (shopper_id, limit)
        rows = self.db.conn.execute(
            "SELECT s.token FROM sessions s JOIN checkins c ON c.session_token = s.token"
            f" WHERE c.shopper_id = ?{where} ORDER BY s.entered_ms DESC LIMIT ?",
            params,
        )
        return [str(r[0]) for r in rows]

    def shopper_receipt_ids(self, shopper_id: str, limit: int = 100) -> list[str]:
        rows = self.db.conn.execute(
            "SELECT r.receipt_id FROM receipts r JOIN checkins c"
            " ON c.session_token = r.session_token WHERE c.shopper_id = ?"
            " ORDER BY r.issued_ms DESC, r.receipt_id DESC LIMIT ?",
            (shopper_id, limit),
        )
        return [str(r[0]) for r in rows]

    def receipt_shopper(self, receipt_id: str) -> str | None:
        row = self.db.conn.execute(
            "SELECT c.shopper_id FROM receipts r JOIN checkins c"
            " ON c.session_token = r.session_token WHERE r.receipt_id = ?",
            (receipt_id,),
        ).fetchone()
        return str(row[0]) if row else None

    # ------------------------------------------------------------------ disputes

    def receipt_line(self, receipt_id: str, line_no: int) -> dict[str, Any] | None:
        rows = list(
            self.db.query(
                "SELECT l.*, r.session_token, r.currency FROM receipt_lines l"
                " JOIN receipts r ON r.receipt_id = l.receipt_id"
                " WHERE l.receipt_id = ? AND l.line_no = ?",
                (receipt_id, line_no),
            )
        )
        return rows[0] if rows else None

    def add_dispute(
        self,
        receipt_id: str,
        line_no: int,
        shopper_id: str,
        quantity: int,
        reason: str,
        ts: int,
        body: dict[str, Any],
        delta_g: float,
    ) -> dict[str, str]:
        """The dispute and its review item, in one transaction; ValueError if the line
        is disputed already."""
        line = self.receipt_line(receipt_id, line_no)
        if line is None:
            raise LookupError(f"receipt {receipt_id} has no line {line_no}")
        dispute_id, review_id = new_event_id(), new_event_id()
        token = line["session_token"]
        why = f"shopper disputes receipt line {line_no}: {reason}"
        with self.transaction():
            taken = self.db.conn.execute(
                "SELECT 1 FROM disputes WHERE receipt_id = ? AND line_no = ?",
                (receipt_id, line_no),
            ).fetchone()
            if taken is not None:
                raise ValueError(f"line {line_no} of receipt {receipt_id} is disputed already")
            self._add_review(
                review_id,
                DISPUTE_DEVICE,
                ts,
                body,
                why,
                token,
                delta_g=delta_g,
                event={"dispute_id": dispute_id},
            )
            self._x(
                "INSERT INTO disputes (dispute_id, receipt_id, line_no, shopper_id, review_id,"
                " quantity, reason, created_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (dispute_id, receipt_id, line_no, shopper_id, review_id, quantity, reason, ts),
            )
        return {"dispute_id": dispute_id, "review_id": review_id}

    def disputes(
        self, *, shopper_id: str | None = None, receipt_id: str | None = None, limit: int = 100
    ) -> list[dict[str, Any]]:
        where, params = where_clause({"d.shopper_id": shopper_id, "d.receipt_id": receipt_id})
        rows = self.db.query(
            "SELECT d.*, i.status AS review_status, i.resolution, a.amount_minor AS"
            " refund_minor, a.adjustment_id FROM disputes d"
            " JOIN review_items i ON i.review_id = d.review_id"
            " LEFT JOIN receipt_adjustments a ON a.review_id = d.review_id"
            f" {where} ORDER BY d.created_ms DESC LIMIT ?",
            (*params, limit),
        )
        out = []
        for row in rows:
            row["resolution"] = json.loads(row["resolution"]) if row["resolution"] else None
            row["state"] = {"open": "open", "dismissed": "rejected"}.get(
                row["review_status"], "refunded" if row["refund_minor"] else "resolved"
            )
            out.append(row)
        return out

    # ------------------------------------------------------------------ payments

    def request_payment(
        self,
        key: str,
        *,
        kind: str,
        amount_minor: int,
        currency: str,
        shopper_id: str,
        provider: str,
        ts: int,
        receipt_id: str | None = None,
        order_id: str | None = None,
    ) -> dict[str, Any]:
        """A charge or refund to make, once: the row of ``key`` (new, or as it was)."""
        with self.transaction():
            self._x(
                "INSERT INTO payments (payment_id, idempotency_key, kind, receipt_id, order_id,"
                " shopper_id, amount_minor, currency, status, provider, created_ms, updated_ms)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'pending', ?, ?, ?)"
                " ON CONFLICT(idempotency_key) DO NOTHING",
                (
                    new_event_id(),
                    key,
                    kind,
                    receipt_id,
                    order_id,
                    shopper_id,
                    amount_minor,
                    currency,
                    provider,
                    ts,
                    ts,
                ),
            )
        found = self.payment(key)
        assert found is not None
        return found

    def payment(self, key: str) -> dict[str, Any] | None:
        rows = list(self.db.query("SELECT * FROM payments WHERE idempotency_key = ?", (key,)))
        return rows[0] if rows else None

    def pending_payments(self, limit: int = 100) -> list[dict[str, Any]]:
        return list(
            self.db.query(
                "SELECT * FROM payments WHERE status = 'pending' ORDER BY created_ms LIMIT ?",
                (limit,),
            )
        )

    def payment_attempted(self, key: str, ts: int) -> None:
        """Counted BEFORE the provider is asked: a crash after it leaves the row pending,
        and the retry sends the same key."""
        with self.transaction():
            self._x(
                "UPDATE payments SET attempts = attempts + 1, updated_ms = ?"
                " WHERE idempotency_key = ?",
                (ts, key),
            )

    def finish_payment(
        self, key: str, status: str, provider_ref: str | None, detail: str, ts: int
    ) -> None:
        with self.transaction():
            cur = self.db.conn.execute(
                "UPDATE payments SET status = ?, provider_ref = ?, detail = ?, updated_ms = ?"
                " WHERE idempotency_key = ? AND status = 'pending'",
                (status, provider_ref, detail, ts, key),
            )
            if cur.rowcount == 1:
                self._event("payment_" + status, ts, None, None, {"key": key, "detail": detail})

    def note_payment_failure(self, key: str, detail: str, ts: int) -> None:
        """The provider could not be reached: the row stays pending for a retry."""
        with self.transaction():
            self._x(
                "UPDATE payments SET detail = ?, updated_ms = ? WHERE idempotency_key = ?",
                (detail, ts, key),
            )

    def payments(
        self,
        *,
        receipt_id: str | None = None,
        shopper_id: str | None = None,
        order_id: str | None = None,
        limit: int = 200,
    ) -> list[dict[str, Any]]:
        where, params = where_clause(
            {"receipt_id": receipt_id, "shopper_id": shopper_id, "order_id": order_id}
        )
        return list(
            self.db.query(
                f"SELECT * FROM payments {where} ORDER BY created_ms, payment_id LIMIT ?",
                (*params, limit),
            )
        )

    def unpaid_receipts(self, receipt_id: str | None = None) -> list[dict[str, Any]]:
        """Receipts of checked-in shoppers, above zero, with no charge yet."""
        only = " AND r.receipt_id = ?" if receipt_id else ""
        return list(
            self.db.query(
                "SELECT r.receipt_id, r.currency, r.total_minor, c.shopper_id FROM receipts r"
                " JOIN checkins c ON c.session_token = r.session_token"
                " LEFT JOIN payments p ON p.idempotency_key = 'receipt:' || r.receipt_id"
                f" WHERE p.payment_id IS NULL AND r.total_minor > 0{only}"
                " ORDER BY r.issued_ms",
                (receipt_id,) if receipt_id else (),
            )
        )

    def unpaid_adjustments(self) -> list[dict[str, Any]]:
        """Extra charges and refunds on receipts of checked-in shoppers, not paid yet."""
        return list(
            self.db.query(
                "SELECT a.adjustment_id, a.receipt_id, a.amount_minor, r.currency,"
                " c.shopper_id FROM receipt_adjustments a"
                " JOIN receipts r ON r.receipt_id = a.receipt_id"
                " JOIN checkins c ON c.session_token = r.session_token"
                " LEFT JOIN payments p ON p.idempotency_key = 'adjustment:' || a.adjustment_id"
                " WHERE p.payment_id IS NULL AND a.amount_minor != 0 ORDER BY a.created_ms"
            )
        )

    # ------------------------------------------------------------------ recommendations

    def bought_together(self, barcodes: list[str], limit: int = 5) -> list[dict[str, Any]]:
        """Products on the same receipts as any of ``barcodes`` (not those), by how many
        receipts they shared."""
        if not barcodes:
            return []
        marks = ",".join("?" * len(barcodes))
        return list(
            self.db.query(
                "SELECT b.barcode, count(DISTINCT b.receipt_id) AS receipts"
                " FROM receipt_lines a JOIN receipt_lines b ON b.receipt_id = a.receipt_id"
                f" WHERE a.barcode IN ({marks}) AND b.barcode NOT IN ({marks})"
                " GROUP BY b.barcode ORDER BY receipts DESC, b.barcode LIMIT ?",
                (*barcodes, *barcodes, limit),
            )
        )

    def popular_since(self, since_ms: int, limit: int = 5) -> list[dict[str, Any]]:
        return list(
            self.db.query(
                "SELECT l.barcode, sum(l.quantity) AS units, count(DISTINCT l.receipt_id)"
                " AS receipts FROM receipt_lines l JOIN receipts r"
                " ON r.receipt_id = l.receipt_id WHERE r.issued_ms >= ?"
                " GROUP BY l.barcode ORDER BY units DESC, l.barcode LIMIT ?",
                (since_ms, limit),
            )
        )

    # ------------------------------------------------------------------ stock

    def units_on_shelves(self) -> dict[str, int]:
        """Units per product estimated from the shelves' weight (lanes with an estimate)."""
        rows = self.db.conn.execute(
            "SELECT barcode, sum(units) FROM lane_stock WHERE units IS NOT NULL GROUP BY barcode"
        )
        return {str(barcode): int(units) for barcode, units in rows}

    def units_promised(self) -> dict[str, int]:
        """Units of online orders not collected yet (they are still on the shelves)."""
        rows = self.db.conn.execute(
            "SELECT l.barcode, sum(l.quantity) FROM order_lines l JOIN orders o"
            " ON o.order_id = l.order_id WHERE o.state = 'placed' GROUP BY l.barcode"
        )
        return {str(barcode): int(units) for barcode, units in rows}

    # ------------------------------------------------------------------ online orders

    def add_order(
        self,
        order_id: str,
        shopper_id: str,
        client_ref: str | None,
        currency: str,
        lines: list[dict[str, Any]],
        route: dict[str, Any],
        ts: int,
    ) -> None:
        total = sum(int(line["line_total_minor"]) for line in lines)
        with self.transaction():
            self._x(
                "INSERT INTO orders (order_id, shopper_id, client_ref, state, currency,"
                " total_minor, created_ms, route) VALUES (?, ?, ?, 'placed', ?, ?, ?, ?)",
                (order_id, shopper_id, client_ref, currency, total, ts, json.dumps(route)),
            )
            self.db.conn.executemany(
                "INSERT INTO order_lines (order_id, line_no, barcode, name, quantity, in_stock,"
                " unit_price_minor, line_total_minor) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    (
                        order_id,
                        no,
                        line["barcode"],
                        line["name"],
                        line["quantity"],
                        line["in_stock"],
                        line["unit_price_minor"],
                        line["line_total_minor"],
                    )
                    for no, line in enumerate(lines, start=1)
                ],
            )
            self._event("order_placed", ts, None, None, {"order_id": order_id, "total": total})

    def order_id_for(self, shopper_id: str, client_ref: str) -> str | None:
        row = self.db.conn.execute(
            "SELECT order_id FROM orders WHERE shopper_id = ? AND client_ref = ?",
            (shopper_id, client_ref),
        ).fetchone()
        return str(row[0]) if row else None

    def order(self, order_id: str) -> dict[str, Any] | None:
        found = self._orders("WHERE order_id = ?", (order_id,))
        return found[0] if found else None

    def orders(
        self, *, state: str | None = None, shopper_id: str | None = None, limit: int = 100
    ) -> list[dict[str, Any]]:
        where, params = where_clause({"state": state, "shopper_id": shopper_id})
        return self._orders(
            f"{where} ORDER BY created_ms DESC, order_id DESC LIMIT ?", (*params, limit)
        )

    def _orders(self, tail: str, params: tuple[Any, ...]) -> list[dict[str, Any]]:
        """Orders (``tail``: WHERE/ORDER BY/LIMIT) with their lines, in two queries."""
        orders = list(self.db.query(f"SELECT * FROM orders {tail}", params))
        lines = self._children(
            "SELECT order_id, line_no, barcode, name, quantity, in_stock, unit_price_minor,"
            " line_total_minor FROM order_lines WHERE order_id IN ({}) ORDER BY order_id, line_no",
            [o["order_id"] for o in orders],
        )
        for order in orders:
            order["route"] = json.loads(order["route"])
            order["lines"] = lines.get(order["order_id"], [])
        return orders

    def advance_order(
        self, order_id: str, from_state: str, to_state: str, ts: int, by: str
    ) -> None:
        column = {"ready": "ready_ms", "collected": "collected_ms"}[to_state]
        with self.transaction():
            cur = self.db.conn.execute(
                f"UPDATE orders SET state = ?, {column} = ?,"
                " ready_by = CASE WHEN ? = 'ready' THEN ? ELSE ready_by END"
                " WHERE order_id = ? AND state = ?",
                (to_state, ts, to_state, by, order_id, from_state),
            )
            if cur.rowcount != 1:
                raise ValueError(f"order {order_id} is not {from_state}")
            self._event("order_" + to_state, ts, None, None, {"order_id": order_id, "by": by})
