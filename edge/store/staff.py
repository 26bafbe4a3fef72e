"""What the staff surfaces read and keep: stock per lane, the cold-chain view of the
temperature log, and the change feed of the dashboard.  Mixed into ``Store``."""

from __future__ import annotations

import json
from typing import Any

from edge.store.base import StoreBase

#: Event kinds by the dashboard panel they change (a prefix ends with ``_``).
_PANELS_BY_KIND: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("alert_", ("alerts", "map")),
    ("review_", ("review", "receipts", "sessions")),
    ("receipt", ("receipts", "sessions")),
    ("cart_change", ("sessions",)),
    ("cart_handoff", ("sessions",)),
    ("session_", ("sessions",)),
    ("device_", ("devices",)),
    ("ota_", ("devices",)),
    ("command_", ("devices",)),
    ("twin_", ("devices",)),
)

_LANE_COLUMNS = (
    "device_id, barcode, plates, unit_weight_g, planned_units, restock_at, refilled_at,"
    " tare_g, level_g, units, updated_ms"
)


def panels_for(kind: str) -> tuple[str, ...]:
    """The dashboard panels an event of ``kind`` changes (none for most weight events)."""
    for prefix, panels in _PANELS_BY_KIND:
        if kind == prefix or (prefix.endswith("_") and kind.startswith(prefix)):
            return panels
    return ()


class StaffViews(StoreBase):
    # ------------------------------------------------------------------ lanes

    def save_lane(self, lane: dict[str, Any], ts: int) -> None:
        """Insert or replace one lane's row (the restock monitor's state)."""
        with self.transaction():
            self._x(
                f"INSERT OR REPLACE INTO lane_stock ({_LANE_COLUMNS})"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    lane["device_id"],
                    lane["barcode"],
                    json.dumps(list(lane["plates"])),
                    lane["unit_weight_g"],
                    lane["planned_units"],
                    lane["restock_at"],
                    lane["refilled_at"],
                    lane["tare_g"],
                    lane["level_g"],
                    lane["units"],
                    ts,
                ),
            )

    def lanes(self, device_id: str | None = None) -> list[dict[str, Any]]:
        where, params = ("WHERE device_id = ?", (device_id,)) if device_id else ("", ())
        rows = self.db.query(
            f"SELECT {_LANE_COLUMNS} FROM lane_stock {where} ORDER BY device_id, plates", params
        )
        return [{**r, "plates": json.loads(r["plates"])} for r in rows]

    def lanes_changed_ms(self) -> int:
        """When any lane last changed (0: never): the dashboard's map is redrawn then."""
        row = self.db.conn.execute("SELECT coalesce(max(updated_ms), 0) FROM lane_stock")
        return int(row.fetchone()[0])

    def lanes_low(self) -> int:
        """Lanes at or below their restock threshold (``edge.staff.restock.lane_is_low``,
        in SQL: a lane without units or without a threshold is not low)."""
        row = self.db.conn.execute(
            "SELECT count(*) FROM lane_stock WHERE restock_at IS NOT NULL AND units <= restock_at"
        )
        return int(row.fetchone()[0])

    def alert_counts(self) -> dict[str, dict[str, int]]:
        """Alerts by kind and state."""
        out: dict[str, dict[str, int]] = {}
        for kind, state, n in self.db.conn.execute(
            "SELECT kind, state, count(*) FROM alerts GROUP BY kind, state"
        ):
            out.setdefault(str(kind), {})[str(state)] = int(n)
        return out

    # ------------------------------------------------------------------ cold chain

    def last_temperature(self, device_id: str) -> dict[str, Any] | None:
        row = self.db.conn.execute(
            "SELECT ts_ms, celsius, door_open FROM temperature_log WHERE device_id = ?"
            " ORDER BY ts_ms DESC LIMIT 1",
            (device_id,),
        ).fetchone()
        if row is None:
            return None
        ts, celsius, door = row
        return {"ts_ms": ts, "celsius": celsius, "door_open": None if door is None else bool(door)}

    def above_since(self, device_id: str, max_c: float) -> int | None:
        """The first reading of the unit's current run above ``max_c`` (None: in range now)."""
        row = self.db.conn.execute(
            "SELECT min(ts_ms) FROM temperature_log WHERE device_id = ? AND ts_ms > coalesce("
            " (SELECT max(ts_ms) FROM temperature_log WHERE device_id = ? AND celsius <= ?), -1)",
            (device_id, device_id, max_c),
        ).fetchone()
        return None if row[0] is None else int(row[0])

    def temperature_units(self) -> list[str]:
        """Every unit with a reading in the log."""
        rows = self.db.conn.execute("SELECT DISTINCT device_id FROM temperature_log")
        return sorted(str(r[0]) for r in rows)

    # ------------------------------------------------------------------ change feed

    def change_cursor(self) -> int:
        """Where the change feed stands now (the newest event row)."""
        return int(self.db.conn.execute("SELECT coalesce(max(rowid), 0) FROM events").fetchone()[0])

    def changed_panels(self, cursor: int, limit: int = 5000) -> tuple[set[str], int]:
        """The dashboard panels changed by the events after ``cursor``, and the new cursor."""
        rows = self.db.conn.execute(
            "SELECT rowid, kind FROM events WHERE rowid > ? ORDER BY rowid LIMIT ?",
            (cursor, limit),
        ).fetchall()
        panels: set[str] = set()
        for rowid, kind in rows:
            cursor = max(cursor, int(rowid))
            panels.update(panels_for(str(kind)))
        return panels, cursor
