"""Load-cell calibration factors per plate (``grams = (raw - tare_raw) * span``)."""

from __future__ import annotations

from typing import Any

from edge.store.base import StoreBase

_COLUMNS = "device_id, plate, tare_raw, span, updated_ms"


class Calibrations(StoreBase):
    def save_calibration(
        self,
        device_id: str,
        plate: int,
        tare_raw: float,
        span: float,
        ts: int,
        body: dict[str, Any],
    ) -> dict[str, Any]:
        """Store a plate's factors and a ``calibration_saved`` event in one transaction."""
        with self.transaction():
            self._x(
                "INSERT INTO plate_calibration (device_id, plate, tare_raw, span, updated_ms)"
                " VALUES (?, ?, ?, ?, ?) ON CONFLICT(device_id, plate) DO UPDATE SET"
                " tare_raw = excluded.tare_raw, span = excluded.span,"
                " updated_ms = excluded.updated_ms",
                (device_id, plate, tare_raw, span, ts),
            )
            self._event(
                "calibration_saved",
                ts,
                device_id,
                None,
                {**body, "plate": plate, "tare_raw": tare_raw, "span": span},
            )
        return {
            "device_id": device_id,
            "plate": plate,
            "tare_raw": tare_raw,
            "span": span,
            "updated_ms": ts,
        }

    def delete_calibration(self, device_id: str, plate: int, ts: int, by: str) -> bool:
        """Forget a plate's factors (it reads raw as grams again); False if it had none."""
        with self.transaction():
            cur = self.db.conn.execute(
                "DELETE FROM plate_calibration WHERE device_id = ? AND plate = ?",
                (device_id, plate),
            )
            if cur.rowcount == 0:
                return False
            self._event("calibration_cleared", ts, device_id, None, {"plate": plate, "by": by})
            return True

    def calibration(self, device_id: str, plate: int) -> dict[str, Any] | None:
        rows = list(
            self.db.query(
                f"SELECT {_COLUMNS} FROM plate_calibration WHERE device_id = ? AND plate = ?",
                (device_id, plate),
            )
        )
        return rows[0] if rows else None

    def calibrations(self, device_id: str | None = None) -> list[dict[str, Any]]:
        where, params = ("WHERE device_id = ?", (device_id,)) if device_id else ("", ())
        return list(
            self.db.query(
                f"SELECT {_COLUMNS} FROM plate_calibration {where} ORDER BY device_id, plate",
                params,
            )
        )
