"""Firmware images, rollouts and each device's progress through one.  Mixed into Store.

Every change of a rollout's or a device's state is also written as an event
(``ota_rollout``, ``ota_device``), in the same transaction, for the audit trail.
"""

from __future__ import annotations

import json
from typing import Any

from edge.store.base import StoreBase

#: Device states of a rollout in which the device is busy with the update.
IN_FLIGHT = ("offered", "installing", "booted", "verifying")
#: Rollout states in which devices are still being offered the image.
ACTIVE_ROLLOUT = ("canary", "rolling")

_DEVICE_COLUMNS = (
    "device_id, wave, position, state, from_version, detail, since_ms, booted_ms, confirm_sent_ms"
)


class Ota(StoreBase):
    # ------------------------------------------------------------------ images

    def ota_add_image(self, manifest: dict[str, Any], image: bytes, ts: int) -> bool:
        """Keep a verified image; False when this (device type, version) is already there."""
        with self.transaction():
            cur = self.db.conn.execute(
                "INSERT INTO ota_images (device_type, version, sha256, size, manifest, image,"
                " registered_ms) VALUES (?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT(device_type, version) DO NOTHING",
                (
                    manifest["device_type"],
                    manifest["version"],
                    manifest["sha256"],
                    manifest["size"],
                    json.dumps(manifest, sort_keys=True),
                    image,
                    ts,
                ),
            )
            if cur.rowcount == 0:
                return False
            self._event(
                "ota_image",
                ts,
                None,
                None,
                {k: manifest[k] for k in ("device_type", "version", "sha256", "size")},
            )
            return True

    def ota_image(self, device_type: str, version: str) -> tuple[dict[str, Any], bytes] | None:
        """The manifest and bytes of an image."""
        row = self.db.conn.execute(
            "SELECT manifest, image FROM ota_images WHERE device_type = ? AND version = ?",
            (device_type, version),
        ).fetchone()
        return None if row is None else (json.loads(row[0]), bytes(row[1]))

    def ota_images(self) -> list[dict[str, Any]]:
        """Registered images (without their bytes), newest first."""
        rows = self.db.query(
            "SELECT device_type, version, sha256, size, registered_ms FROM ota_images"
            " ORDER BY registered_ms DESC, device_type, version"
        )
        return list(rows)

    # ------------------------------------------------------------------ rollouts

    def ota_create_rollout(
        self,
        rollout_id: str,
        device_type: str,
        version: str,
        canary_share: float,
        devices: list[tuple[str, str, str | None]],
        ts: int,
    ) -> None:
        """A new rollout in state ``canary``; ``devices``: (device_id, wave, from_version)
        in offer order, every device ``pending``."""
        with self.transaction():
            self._x(
                "INSERT INTO ota_rollouts (rollout_id, device_type, version, state, reason,"
                " canary_share, created_ms, updated_ms) VALUES (?, ?, ?, 'canary', NULL, ?, ?, ?)",
                (rollout_id, device_type, version, canary_share, ts, ts),
            )
            self.db.conn.executemany(
                "INSERT INTO ota_rollout_devices (rollout_id, device_id, wave, position, state,"
                " from_version, since_ms) VALUES (?, ?, ?, ?, 'pending', ?, ?)",
                [
                    (rollout_id, device_id, wave, position, from_version, ts)
                    for position, (device_id, wave, from_version) in enumerate(devices)
                ],
            )
            self._event(
                "ota_rollout",
                ts,
                None,
                None,
                {
                    "rollout_id": rollout_id,
                    "state": "canary",
                    "device_type": device_type,
                    "version": version,
                    "devices": [d for d, _, _ in devices],
                },
            )

    def ota_update(
        self,
        rollout_id: str,
        ts: int,
        *,
        device_id: str | None = None,
        state: str | None = None,
        detail: str | None = None,
        booted_ms: int | None = None,
        confirm_sent_ms: int | None = None,
        rollout_state: str | None = None,
        reason: str | None = None,
    ) -> None:
        """Change one device's row and/or the rollout's state, in one transaction.

        Only what is given changes; ``since_ms`` moves when the device's state does.
        """
        with self.transaction():
            if device_id is not None:
                sets, params = [], []
                if state is not None:
                    sets += ["state = ?", "since_ms = ?"]
                    params += [state, ts]
                for column, value in (
                    ("detail", detail),
                    ("booted_ms", booted_ms),
                    ("confirm_sent_ms", confirm_sent_ms),
                ):
                    if value is not None:
                        sets.append(f"{column} = ?")
                        params.append(value)
                if sets:
                    self._x(
                        f"UPDATE ota_rollout_devices SET {', '.join(sets)}"
                        " WHERE rollout_id = ? AND device_id = ?",
                        (*params, rollout_id, device_id),
                    )
                if state is not None:
                    self._event(
                        "ota_device",
                        ts,
                        device_id,
                        None,
                        {"rollout_id": rollout_id, "state": state, "detail": detail or ""},
                    )
            if rollout_state is not None:
                self._x(
                    "UPDATE ota_rollouts SET state = ?, reason = coalesce(?, reason),"
                    " updated_ms = ? WHERE rollout_id = ?",
                    (rollout_state, reason, ts, rollout_id),
                )
                self._event(
                    "ota_rollout",
                    ts,
                    None,
                    None,
                    {"rollout_id": rollout_id, "state": rollout_state, "reason": reason or ""},
                )

    def ota_rollout(self, rollout_id: str) -> dict[str, Any] | None:
        """One rollout with its devices (in offer order) and a count per device state."""
        rows = list(self.db.query("SELECT * FROM ota_rollouts WHERE rollout_id = ?", (rollout_id,)))
        if not rows:
            return None
        rollout = rows[0]
        rollout["devices"] = list(
            self.db.query(
                f"SELECT {_DEVICE_COLUMNS} FROM ota_rollout_devices WHERE rollout_id = ?"
                " ORDER BY position",
                (rollout_id,),
            )
        )
        counts: dict[str, int] = {}
        for device in rollout["devices"]:
            counts[device["state"]] = counts.get(device["state"], 0) + 1
        rollout["counts"] = counts
        return rollout

    def ota_rollouts(self, limit: int = 100) -> list[dict[str, Any]]:
        """Rollouts, newest first, each with a count of its devices per state."""
        rollouts = list(
            self.db.query(
                "SELECT * FROM ota_rollouts ORDER BY created_ms DESC, rollout_id DESC LIMIT ?",
                (limit,),
            )
        )
        counts = self._children(
            "SELECT rollout_id, state, count(*) AS n FROM ota_rollout_devices"
            " WHERE rollout_id IN ({}) GROUP BY rollout_id, state ORDER BY rollout_id, state",
            [r["rollout_id"] for r in rollouts],
        )
        for rollout in rollouts:
            rollout["counts"] = {r["state"]: r["n"] for r in counts.get(rollout["rollout_id"], [])}
        return rollouts

    def ota_rollouts_to_watch(self) -> list[str]:
        """Rollouts that still offer images or have a device in the middle of an update."""
        placeholders = ", ".join("?" * len(IN_FLIGHT))
        rows = self.db.conn.execute(
            "SELECT rollout_id FROM ota_rollouts WHERE state IN (?, ?) UNION"
            " SELECT DISTINCT rollout_id FROM ota_rollout_devices"
            f" WHERE state IN ({placeholders}) ORDER BY 1",
            (*ACTIVE_ROLLOUT, *IN_FLIGHT),
        )
        return [r[0] for r in rows]

    def ota_rollouts_of(self, device_id: str, version: str | None = None) -> list[str]:
        """Rollouts (of ``version``, or any) that include the device, newest first."""
        rows = self.db.conn.execute(
            "SELECT r.rollout_id FROM ota_rollouts r JOIN ota_rollout_devices d"
            " ON d.rollout_id = r.rollout_id WHERE d.device_id = ?"
            " AND (? IS NULL OR r.version = ?)"
            " ORDER BY r.created_ms DESC, r.rollout_id DESC",
            (device_id, version, version),
        )
        return [r[0] for r in rows]

    def ota_active_rollout(self, device_type: str) -> str | None:
        """The rollout of this device type that is still offering images, if any."""
        row = self.db.conn.execute(
            "SELECT rollout_id FROM ota_rollouts WHERE device_type = ? AND state IN (?, ?)",
            (device_type, *ACTIVE_ROLLOUT),
        ).fetchone()
        return None if row is None else str(row[0])
