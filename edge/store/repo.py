"""Every read and write of the gateway's tables.

The gateway has ONE writer (its message worker); the API opens its own
read-only connection.  Multi-row changes run in one ``BEGIN IMMEDIATE``
transaction, so a receipt and its lines are written together or not at all.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cloud_sync.wire import (
    KIND_DEVICE_STATE,
    KIND_HEARTBEAT,
    KIND_TRANSACTION,
    STREAM_DEVICES,
    STREAM_TELEMETRY,
    STREAM_TRANSACTIONS,
)
from edge.store.alerts import Alerts
from edge.store.base import new_event_id, where_clause
from edge.store.calibration import Calibrations
from edge.store.db import connect
from edge.store.downsync import DownSyncState
from edge.store.ota import Ota
from edge.store.outbox import Outbox
from edge.store.prices import Prices
from edge.store.registry import Registry
from edge.store.review import ReviewQueue
from edge.store.sensors import Sensors
from edge.store.shoppers import Shoppers
from edge.store.staff import StaffViews
from edge.store.stock import StockLevels
from edge.store.twins import Twins


@dataclass(frozen=True, slots=True)
class ReceiptRow:
    barcode: str
    name: str
    quantity: int
    unit_price_minor: int

    @property
    def line_total_minor(self) -> int:
        return self.quantity * self.unit_price_minor


class Store(
    Registry,
    Twins,
    Sensors,
    Outbox,
    Calibrations,
    Alerts,
    StockLevels,
    DownSyncState,
    Prices,
    Ota,
    StaffViews,
    Shoppers,
    ReviewQueue,
):
    @classmethod
    def open(cls, path: Path, *, readonly: bool = False) -> Store:
        return cls(connect(path, readonly=readonly))

    # ------------------------------------------------------------------ devices

    def record_birth(
        self, device_id: str, device_type: str, firmware: str, birth_count: int, seq: int, ts: int
    ) -> None:
        with self.transaction():
            self._x(
                "INSERT INTO devices (device_id, device_type, firmware, birth_count, state,"
                " last_seq, last_seen_ms) VALUES (?, ?, ?, ?, 'online', ?, ?)"
                " ON CONFLICT(device_id) DO UPDATE SET device_type = excluded.device_type,"
                " firmware = excluded.firmware, birth_count = excluded.birth_count,"
                " state = 'online', last_seq = excluded.last_seq,"
                " last_seen_ms = excluded.last_seen_ms",
                (device_id, device_type, firmware, birth_count, seq, ts),
            )
            self._event("device_birth", ts, device_id, None, {"birth_count": birth_count})

    def record_state(
        self, device_id: str, device_type: str, state: str, ts: int, reason: str = ""
    ) -> None:
        with self.transaction():
            self._x(
                "INSERT INTO devices (device_id, device_type, state, last_seen_ms, offline_reason)"
                " VALUES (?, ?, ?, ?, ?) ON CONFLICT(device_id) DO UPDATE SET"
                " state = excluded.state, last_seen_ms = excluded.last_seen_ms,"
                " offline_reason = excluded.offline_reason",
                (device_id, device_type, state, ts, reason if state == "offline" else None),
            )
            self._event("device_state", ts, device_id, None, {"state": state, "reason": reason})
            self.enqueue(
                STREAM_DEVICES,
                KIND_DEVICE_STATE,
                {
                    "device_id": device_id,
                    "device_type": device_type,
                    "state": state,
                    "reason": reason,
                },
                ts_ms=ts,
            )

    def record_heartbeat(
        self,
        device_id: str,
        device_type: str,
        ts: int,
        health: dict[str, Any],
    ) -> None:
        """``health``: uptime_s, firmware, battery_pct, rssi_dbm (the last two may be None)."""
        with self.transaction():
            self._x(
                "INSERT INTO devices (device_id, device_type, uptime_s, firmware, battery_pct,"
                " rssi_dbm, last_heartbeat_ms) VALUES (?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT(device_id) DO UPDATE SET uptime_s = excluded.uptime_s,"
                " firmware = excluded.firmware, battery_pct = excluded.battery_pct,"
                " rssi_dbm = excluded.rssi_dbm, last_heartbeat_ms = excluded.last_heartbeat_ms",
                (
                    device_id,
                    device_type,
                    health["uptime_s"],
                    health["firmware"],
                    health.get("battery_pct"),
                    health.get("rssi_dbm"),
                    ts,
                ),
            )
            self.enqueue(  # telemetry for HQ: evicted first when the outbox is full
                STREAM_TELEMETRY,
                KIND_HEARTBEAT,
                {"device_id": device_id, "device_type": device_type, **health},
                ts_ms=ts,
            )

    def save_device_counters(self, rows: list[tuple[str, int, int, int, int]]) -> None:
        """(device_id, last_seq, last_seen_ms, seq_gaps, duplicates) for known devices."""
        with self.transaction():
            self.db.conn.executemany(
                "UPDATE devices SET last_seq = ?, last_seen_ms = ?, seq_gaps = ?,"
                " duplicates = ? WHERE device_id = ?",
                [(seq, seen, gaps, dups, dev) for dev, seq, seen, gaps, dups in rows],
            )

    def devices(self) -> list[dict[str, Any]]:
        return list(self.db.query("SELECT * FROM devices ORDER BY device_id"))

    # ------------------------------------------------------------------ dead letters

    def dead_letter(self, topic: str, payload: bytes, reason: str, ts: int) -> None:
        with self.transaction():
            self._x(
                "INSERT INTO dead_letters (received_ms, topic, payload, reason)"
                " VALUES (?, ?, ?, ?)",
                (ts, topic, payload, reason),
            )

    def dead_letters(self, limit: int = 100) -> list[dict[str, Any]]:
        rows = self.db.query(
            "SELECT id, received_ms, topic, payload, reason FROM dead_letters"
            " ORDER BY id DESC LIMIT ?",
            (limit,),
        )
        return [{**r, "payload": bytes(r["payload"]).decode("utf-8", "replace")} for r in rows]

    def device_state_counts(self) -> dict[str, int]:
        """How many devices are in each state (online, offline, provisioned)."""
        rows = self.db.conn.execute("SELECT state, count(*) FROM devices GROUP BY state")
        return {str(state): int(n) for state, n in rows}

    def dead_letter_count(self) -> int:
        return int(self.db.execute("SELECT count(*) FROM dead_letters").fetchone()[0])

    # ------------------------------------------------------------------ events

    def record_event(
        self, kind: str, ts: int, device_id: str | None, session: str | None, body: dict[str, Any]
    ) -> str:
        with self.transaction():
            return self._event(kind, ts, device_id, session, body)

    def events(self, kind: str | None = None, limit: int = 1000) -> list[dict[str, Any]]:
        where, params = ("WHERE kind = ?", (kind, limit)) if kind else ("", (limit,))
        rows = self.db.query(
            f"SELECT * FROM events {where} ORDER BY ts_ms, event_id LIMIT ?", params
        )
        return [{**r, "body": json.loads(r["body"])} for r in rows]

    def event_count(self, kind: str, *, from_devices: bool = False) -> int:
        """How many events of ``kind``; ``from_devices``: only those a device caused
        (a cart change from a shelf, not from a staff decision)."""
        extra = " AND device_id IS NOT NULL" if from_devices else ""
        row = self.db.conn.execute(f"SELECT count(*) FROM events WHERE kind = ?{extra}", (kind,))
        return int(row.fetchone()[0])

    # ------------------------------------------------------------------ sessions and carts

    def open_session(self, token: str, gate: str, ts: int) -> bool:
        """Open a shopper session; False when the token was already used."""
        with self.transaction():
            cur = self.db.conn.execute(
                "INSERT INTO sessions (token, state, entered_ms, entry_gate)"
                " VALUES (?, 'open', ?, ?) ON CONFLICT(token) DO NOTHING",
                (token, ts, gate),
            )
            if cur.rowcount == 0:
                return False
            self._event("session_open", ts, gate, token, {})
            return True

    def open_sessions(self) -> list[dict[str, Any]]:
        return list(
            self.db.query("SELECT * FROM sessions WHERE state = 'open' ORDER BY entered_ms")
        )

    def sessions(
        self, state: str | None = None, limit: int = 200, tokens: list[str] | None = None
    ) -> list[dict[str, Any]]:
        """Sessions newest first, each with its cart; only ``tokens`` when given."""
        where, params = where_clause({"state": state}, "token", tokens)
        sessions = list(
            self.db.query(
                f"SELECT * FROM sessions {where} ORDER BY entered_ms DESC LIMIT ?",
                (*params, limit),
            )
        )
        lines = self._children(
            "SELECT session_token, barcode, quantity FROM cart_lines"
            " WHERE session_token IN ({}) ORDER BY session_token, barcode",
            [s["token"] for s in sessions],
        )
        for s in sessions:
            s["cart"] = {r["barcode"]: int(r["quantity"]) for r in lines.get(s["token"], [])}
        return sessions

    def session(self, token: str) -> dict[str, Any] | None:
        rows = list(self.db.query("SELECT * FROM sessions WHERE token = ?", (token,)))
        return rows[0] if rows else None

    def change_cart(
        self, token: str, barcode: str, delta: int, ts: int, device_id: str, body: dict[str, Any]
    ) -> int:
        """Add (delta > 0) or remove units; returns the new quantity of that line."""
        with self.transaction():
            quantity = self._add_to_cart(token, barcode, delta)
            self._event("cart_change", ts, device_id, token, {**body, "delta": delta})
            return quantity

    def move_between_carts(
        self,
        giver: str,
        taker: str,
        barcode: str,
        quantity: int,
        ts: int,
        device_id: str,
        body: dict[str, Any],
    ) -> None:
        """``quantity`` units of ``barcode`` leave ``giver``'s cart for ``taker``'s, in one
        transaction (one ``cart_handoff`` event)."""
        with self.transaction():
            self._add_to_cart(giver, barcode, -quantity)
            self._add_to_cart(taker, barcode, quantity)
            moved = {"barcode": barcode, "quantity": quantity, "from": giver, "to": taker}
            self._event("cart_handoff", ts, device_id, taker, {**body, **moved})

    def _add_to_cart(self, token: str, barcode: str, delta: int) -> int:
        self._x(
            "INSERT INTO cart_lines (session_token, barcode, quantity) VALUES (?, ?, ?)"
            " ON CONFLICT(session_token, barcode) DO UPDATE SET"
            " quantity = quantity + excluded.quantity",
            (token, barcode, delta),
        )
        row = self.db.conn.execute(
            "SELECT quantity FROM cart_lines WHERE session_token = ? AND barcode = ?",
            (token, barcode),
        ).fetchone()
        quantity = int(row[0])
        if quantity <= 0:
            self._x(
                "DELETE FROM cart_lines WHERE session_token = ? AND barcode = ?",
                (token, barcode),
            )
        return max(quantity, 0)

    def cart(self, token: str) -> dict[str, int]:
        rows = self.db.query(
            "SELECT barcode, quantity FROM cart_lines WHERE session_token = ? ORDER BY barcode",
            (token,),
        )
        return {r["barcode"]: int(r["quantity"]) for r in rows}

    # ------------------------------------------------------------------ receipts

    def close_with_receipt(
        self,
        token: str,
        exit_gate: str,
        ts: int,
        currency: str,
        lines: list[ReceiptRow],
    ) -> str:
        """Close the session and write its receipt and lines in ONE transaction."""
        receipt_id = new_event_id()
        total = sum(line.line_total_minor for line in lines)
        with self.transaction():
            cur = self.db.conn.execute(
                "UPDATE sessions SET state = 'closed', exited_ms = ?, exit_gate = ?"
                " WHERE token = ? AND state = 'open'",
                (ts, exit_gate, token),
            )
            if cur.rowcount != 1:
                raise LookupError(f"session {token!r} is not open")
            self._x(
                "INSERT INTO receipts (receipt_id, session_token, currency, total_minor,"
                " issued_ms) VALUES (?, ?, ?, ?, ?)",
                (receipt_id, token, currency, total, ts),
            )
            self.db.conn.executemany(
                "INSERT INTO receipt_lines (receipt_id, line_no, barcode, name, quantity,"
                " unit_price_minor, line_total_minor) VALUES (?, ?, ?, ?, ?, ?, ?)",
                [
                    (
                        receipt_id,
                        no,
                        line.barcode,
                        line.name,
                        line.quantity,
                        line.unit_price_minor,
                        line.line_total_minor,
                    )
                    for no, line in enumerate(lines, start=1)
                ],
            )
            self._event("receipt", ts, exit_gate, token, {"receipt_id": receipt_id, "total": total})
            self.enqueue(  # for HQ, in the SAME transaction as the receipt
                STREAM_TRANSACTIONS,
                KIND_TRANSACTION,
                {
                    "receipt_id": receipt_id,
                    "session_token": token,
                    "exit_gate": exit_gate,
                    "currency": currency,
                    "total_minor": total,
                    "issued_ms": ts,
                    "lines": [
                        {
                            "barcode": line.barcode,
                            "name": line.name,
                            "quantity": line.quantity,
                            "unit_price_minor": line.unit_price_minor,
                            "line_total_minor": line.line_total_minor,
                        }
                        for line in lines
                    ],
                },
                ts_ms=ts,
            )
        return receipt_id

    def receipts(
        self, limit: int = 100, token: str | None = None, receipt_ids: list[str] | None = None
    ) -> list[dict[str, Any]]:
        """Receipts newest first with their lines and adjustments; of one session
        (``token``) or only ``receipt_ids`` when given."""
        where, params = where_clause({"session_token": token}, "receipt_id", receipt_ids)
        receipts = list(
            self.db.query(
                f"SELECT * FROM receipts {where} ORDER BY issued_ms DESC, receipt_id DESC LIMIT ?",
                (*params, limit),
            )
        )
        ids = [r["receipt_id"] for r in receipts]
        lines = self._children(
            "SELECT receipt_id, barcode, name, quantity, unit_price_minor, line_total_minor"
            " FROM receipt_lines WHERE receipt_id IN ({}) ORDER BY receipt_id, line_no",
            ids,
        )
        adjustments = self._children(
            "SELECT receipt_id, adjustment_id, review_id, barcode, name, quantity,"
            " unit_price_minor, amount_minor, created_ms FROM receipt_adjustments"
            " WHERE receipt_id IN ({}) ORDER BY receipt_id, created_ms",
            ids,
        )
        for r in receipts:
            r["adjustments"] = adjustments.get(r["receipt_id"], [])
            r["adjusted_total_minor"] = r["total_minor"] + sum(
                a["amount_minor"] for a in r["adjustments"]
            )
            r["lines"] = lines.get(r["receipt_id"], [])
        return receipts

    def receipt_count(self) -> int:
        """Transactions (issued receipts) recorded in this store."""
        return int(self.db.conn.execute("SELECT count(*) FROM receipts").fetchone()[0])

    def receipt(self, receipt_id: str) -> dict[str, Any] | None:
        found = self.receipts(limit=1, receipt_ids=[receipt_id])
        return found[0] if found else None
