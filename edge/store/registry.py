"""Provisioned devices and their MQTT credentials (password hashes only).  Mixed into Store."""

from __future__ import annotations

from typing import Any

from edge.store.base import StoreBase


class Registry(StoreBase):
    def provision(
        self, store_id: str, device_id: str, device_type: str, password_hash: str, ts: int
    ) -> None:
        """Register a device with its credentials; a device id is provisioned once."""
        with self.transaction():
            row = self.db.conn.execute(
                "SELECT 1 FROM credentials WHERE username = ?", (device_id,)
            ).fetchone()
            if row is not None:
                raise ValueError(f"device {device_id!r} is already provisioned")
            self._x(
                "INSERT INTO devices (device_id, device_type, state, store_id, provisioned_ms)"
                " VALUES (?, ?, 'provisioned', ?, ?) ON CONFLICT(device_id) DO UPDATE SET"
                " device_type = excluded.device_type, store_id = excluded.store_id,"
                " provisioned_ms = excluded.provisioned_ms",
                (device_id, device_type, store_id, ts),
            )
            self._x(
                "INSERT INTO credentials (username, device_id, role, password_hash, created_ms)"
                " VALUES (?, ?, 'device', ?, ?)",
                (device_id, device_id, password_hash, ts),
            )
            self._event("device_provisioned", ts, device_id, None, {"type": device_type})

    def set_gateway_credentials(self, username: str, password_hash: str, ts: int) -> None:
        with self.transaction():
            self._x(
                "INSERT INTO credentials (username, device_id, role, password_hash, created_ms)"
                " VALUES (?, 'gateway', 'gateway', ?, ?) ON CONFLICT(username) DO UPDATE SET"
                " password_hash = excluded.password_hash, created_ms = excluded.created_ms",
                (username, password_hash, ts),
            )

    def credentials(self) -> dict[str, str]:
        """username -> password hash, every device and the gateway."""
        rows = self.db.conn.execute("SELECT username, password_hash FROM credentials")
        return dict(rows)

    def provisioned(self) -> list[dict[str, Any]]:
        return list(
            self.db.query(
                "SELECT d.device_id, d.device_type, d.store_id, d.provisioned_ms, d.state"
                " FROM devices d JOIN credentials c ON c.device_id = d.device_id"
                " WHERE c.role = 'device' ORDER BY d.device_id"
            )
        )
