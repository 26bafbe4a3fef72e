"""Device twins: desired settings (from staff/HQ) and reported ones (from the device)."""

from __future__ import annotations

import json
from typing import Any

from edge.store.base import StoreBase


class Twins(StoreBase):
    def twin(self, device_id: str) -> dict[str, Any]:
        row = self.db.conn.execute(
            "SELECT desired, reported, version, updated_ms FROM twins WHERE device_id = ?",
            (device_id,),
        ).fetchone()
        if row is None:
            return {
                "device_id": device_id,
                "desired": {},
                "reported": {},
                "version": 0,
                "updated_ms": None,
                "pending": {},
            }
        desired, reported = json.loads(row[0]), json.loads(row[1])
        pending = {k: v for k, v in desired.items() if reported.get(k) != v}
        return {
            "device_id": device_id,
            "desired": desired,
            "reported": reported,
            "version": row[2],
            "updated_ms": row[3],
            "pending": pending,
        }

    def set_desired(self, device_id: str, changes: dict[str, Any], ts: int) -> dict[str, Any]:
        with self.transaction():
            current = self.twin(device_id)
            desired = {**current["desired"], **changes}
            self._x(
                "INSERT INTO twins (device_id, desired, version, updated_ms) VALUES (?, ?, 1, ?)"
                " ON CONFLICT(device_id) DO UPDATE SET desired = excluded.desired,"
                " version = version + 1, updated_ms = excluded.updated_ms",
                (device_id, json.dumps(desired, sort_keys=True), ts),
            )
            self._event("twin_desired", ts, device_id, None, {"changes": changes})
        return self.twin(device_id)

    def set_reported(self, device_id: str, reported: dict[str, Any], ts: int) -> dict[str, Any]:
        with self.transaction():
            current = self.twin(device_id)
            merged = {**current["reported"], **reported}
            self._x(
                "INSERT INTO twins (device_id, reported, updated_ms) VALUES (?, ?, ?)"
                " ON CONFLICT(device_id) DO UPDATE SET reported = excluded.reported,"
                " updated_ms = excluded.updated_ms",
                (device_id, json.dumps(merged, sort_keys=True), ts),
            )
        return self.twin(device_id)
