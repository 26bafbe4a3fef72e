"""The price catalog and the electronic shelf labels (ESL) that show it.

A ``prices`` row is the current price of a barcode (set by staff or HQ, with a
version and the time of the change); a barcode without one sells at its
planogram price, which the callers pass as the default.  ``esl_labels`` says
which label shows which product and holds each label's last answer to a
``config`` command; what a label should show and what it shows are its twin.
"""

from __future__ import annotations

import json
from typing import Any

from edge.store.base import StoreBase

#: The twin settings that make up what a label shows.
LABEL_SETTINGS = ("barcode", "price_minor", "currency")


class Prices(StoreBase):
    # ------------------------------------------------------------------ catalog

    def price_minor(self, barcode: str, default: int) -> int:
        """The current price of ``barcode``; ``default`` (the planogram's) if never set."""
        row = self.db.conn.execute(
            "SELECT price_minor FROM prices WHERE barcode = ?", (barcode,)
        ).fetchone()
        return default if row is None else int(row[0])

    def price(self, barcode: str) -> dict[str, Any] | None:
        """The catalog row of ``barcode`` (None while it sells at its planogram price)."""
        rows = list(
            self.db.query(
                "SELECT barcode, price_minor, version, updated_ms FROM prices WHERE barcode = ?",
                (barcode,),
            )
        )
        return rows[0] if rows else None

    def set_price(
        self, barcode: str, price_minor: int, previous_minor: int, ts: int, by: str
    ) -> dict[str, Any]:
        """Change a price; one ``price_change`` event.  Returns the new catalog row."""
        with self.transaction():
            return self._set_price(barcode, price_minor, previous_minor, ts, by)

    def _set_price(
        self, barcode: str, price_minor: int, previous_minor: int, ts: int, by: str
    ) -> dict[str, Any]:
        """:meth:`set_price` inside the caller's transaction (HQ's price lists change
        many prices in one)."""
        if price_minor < 0:
            raise ValueError(f"price_minor must be >= 0, got {price_minor}")
        self._x(
            "INSERT INTO prices (barcode, price_minor, version, updated_ms) VALUES (?, ?, 1, ?)"
            " ON CONFLICT(barcode) DO UPDATE SET price_minor = excluded.price_minor,"
            " version = version + 1, updated_ms = excluded.updated_ms",
            (barcode, price_minor, ts),
        )
        row = self.price(barcode)
        assert row is not None
        self._event(
            "price_change",
            ts,
            None,
            None,
            {
                "barcode": barcode,
                "price_minor": price_minor,
                "previous_minor": previous_minor,
                "version": row["version"],
                "by": by,
            },
        )
        return row

    # ------------------------------------------------------------------ labels

    def sync_labels(self, labels: list[tuple[str, str, str]]) -> None:
        """Make ``esl_labels`` the configured (device_id, barcode, product name) list.

        A label that moves to another product forgets its last ack (it was about the old one).
        """
        with self.transaction():
            keep = [device for device, _, _ in labels]
            marks = ", ".join("?" for _ in keep)
            self._x(f"DELETE FROM esl_labels WHERE device_id NOT IN ({marks})", tuple(keep))
            self.db.conn.executemany(
                "INSERT INTO esl_labels (device_id, barcode, name) VALUES (?, ?, ?)"
                " ON CONFLICT(device_id) DO UPDATE SET name = excluded.name,"
                " barcode = excluded.barcode,"
                " ack_ms = CASE WHEN barcode = excluded.barcode THEN ack_ms END,"
                " ack_ok = CASE WHEN barcode = excluded.barcode THEN ack_ok END,"
                " ack_detail = CASE WHEN barcode = excluded.barcode THEN ack_detail END",
                labels,
            )

    def labels_of(self, barcode: str) -> list[str]:
        """The labels that show ``barcode``."""
        rows = self.db.conn.execute(
            "SELECT device_id FROM esl_labels WHERE barcode = ? ORDER BY device_id", (barcode,)
        )
        return [r[0] for r in rows]

    def record_label_ack(self, device_id: str, ts: int, ok: bool, detail: str) -> bool:
        """A label answered a config command; False if ``device_id`` is no label."""
        with self.transaction():
            cur = self.db.conn.execute(
                "UPDATE esl_labels SET ack_ms = ?, ack_ok = ?, ack_detail = ? WHERE device_id = ?",
                (ts, int(ok), detail, device_id),
            )
        return cur.rowcount == 1

    def labels(self) -> list[dict[str, Any]]:
        """Every label: its product, the price it should show and the one it shows."""
        rows = self.db.query(
            "SELECT l.device_id, l.barcode, l.name, l.ack_ms, l.ack_ok, l.ack_detail,"
            " t.desired, t.reported, t.version, d.state, d.battery_pct, d.last_seen_ms"
            " FROM esl_labels l LEFT JOIN twins t ON t.device_id = l.device_id"
            " LEFT JOIN devices d ON d.device_id = l.device_id ORDER BY l.device_id"
        )
        out = []
        for r in rows:
            desired = json.loads(r["desired"] or "{}")
            reported = json.loads(r["reported"] or "{}")
            wanted = {k: desired.get(k) for k in LABEL_SETTINGS}
            shown = {k: reported.get(k) for k in LABEL_SETTINGS}
            out.append(
                {
                    "device_id": r["device_id"],
                    "barcode": r["barcode"],
                    "product": r["name"],
                    "desired_price_minor": wanted["price_minor"],
                    "displayed_price_minor": shown["price_minor"] if shown["barcode"] else None,
                    "displayed_barcode": shown["barcode"] or None,
                    "currency": wanted["currency"],
                    "in_sync": wanted["barcode"] is not None and wanted == shown,
                    "twin_version": r["version"],
                    "state": r["state"] or "unknown",
                    "battery_pct": r["battery_pct"],
                    "last_seen_ms": r["last_seen_ms"],
                    "last_ack": None
                    if r["ack_ms"] is None
                    else {"ts_ms": r["ack_ms"], "ok": bool(r["ack_ok"]), "detail": r["ack_detail"]},
                }
            )
        return out
