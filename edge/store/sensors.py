"""Environmental sensor readings: the fridge and freezer temperature log."""

from __future__ import annotations

from typing import Any

from cloud_sync.wire import KIND_TEMPERATURE, STREAM_TELEMETRY
from edge.store.base import StoreBase


class Sensors(StoreBase):
    def record_temperature(
        self, device_id: str, ts: int, celsius: float, door_open: bool | None
    ) -> None:
        with self.transaction():
            self._x(
                "INSERT OR REPLACE INTO temperature_log (device_id, ts_ms, celsius, door_open)"
                " VALUES (?, ?, ?, ?)",
                (device_id, ts, celsius, None if door_open is None else int(door_open)),
            )
            self.enqueue(  # telemetry for HQ: evicted first when the outbox is full
                STREAM_TELEMETRY,
                KIND_TEMPERATURE,
                {"device_id": device_id, "celsius": celsius, "door_open": door_open},
                ts_ms=ts,
            )

    def temperatures(
        self, device_id: str, since_ms: int = 0, limit: int = 1000
    ) -> list[dict[str, Any]]:
        """A unit's readings since ``since_ms``, oldest first."""
        rows = self.db.conn.execute(
            "SELECT ts_ms, celsius, door_open FROM temperature_log"
            " WHERE device_id = ? AND ts_ms >= ? ORDER BY ts_ms LIMIT ?",
            (device_id, since_ms, limit),
        ).fetchall()
        return [
            {"ts_ms": ts, "celsius": c, "door_open": None if d is None else bool(d)}
            for ts, c, d in rows
        ]
