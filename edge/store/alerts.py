"""Staff alerts (maintenance, restock, cold chain, ...): open -> acked -> resolved.

At most one alert per (kind, device, plate) is not resolved (a unique index
says so); raising it again while it is active changes nothing.
"""

from __future__ import annotations

import json
from typing import Any

from cloud_sync.wire import KIND_ALERT, STREAM_ALERTS
from edge.store.base import StoreBase, new_event_id

_ACTIVE = "state IN ('open', 'acked')"
#: What HQ gets of an alert on every change (stream ``alerts``, state class).
_HQ_FIELDS = (
    "alert_id",
    "kind",
    "state",
    "device_id",
    "plate",
    "detail",
    "raised_ms",
    "acked_ms",
    "resolved_ms",
)


class Alerts(StoreBase):
    def open_alert(
        self, kind: str, device_id: str, plate: int | None, detail: dict[str, Any], ts: int
    ) -> tuple[dict[str, Any], bool]:
        """Raise an alert; returns it and whether it is new (False: one was already active)."""
        with self.transaction():
            active = self._active(kind, device_id, plate)
            if active is not None:
                return active, False
            alert_id = new_event_id()
            self._x(
                "INSERT INTO alerts (alert_id, kind, device_id, plate, state, raised_ms, detail)"
                " VALUES (?, ?, ?, ?, 'open', ?, ?)",
                (alert_id, kind, device_id, plate, ts, json.dumps(detail, sort_keys=True)),
            )
            self._event(
                "alert_raised",
                ts,
                device_id,
                None,
                {"alert_id": alert_id, "kind": kind, "plate": plate, "detail": detail},
            )
            self._alert_to_hq(alert_id, ts)
        alert = self.alert(alert_id)
        assert alert is not None
        return alert, True

    def update_alert_detail(self, alert_id: str, detail: dict[str, Any], ts: int) -> None:
        with self.transaction():
            self._x(
                f"UPDATE alerts SET detail = ? WHERE alert_id = ? AND {_ACTIVE}",
                (json.dumps(detail, sort_keys=True), alert_id),
            )
            self._event("alert_updated", ts, None, None, {"alert_id": alert_id, "detail": detail})
            self._alert_to_hq(alert_id, ts)

    def ack_alert(self, alert_id: str, ts: int, by: str) -> tuple[dict[str, Any], bool]:
        """Staff saw it; returns the alert and whether this changed it (acking twice is fine)."""
        with self.transaction():
            alert = self.alert(alert_id)
            if alert is None:
                raise LookupError(f"no alert {alert_id}")
            if alert["state"] == "resolved":
                raise ValueError(f"alert {alert_id} is already resolved")
            if alert["state"] == "acked":
                return alert, False
            self._x(
                "UPDATE alerts SET state = 'acked', acked_ms = ? WHERE alert_id = ?",
                (ts, alert_id),
            )
            self._event(
                "alert_acked", ts, alert["device_id"], None, {"alert_id": alert_id, "by": by}
            )
            self._alert_to_hq(alert_id, ts, by=by)
        acked = self.alert(alert_id)
        assert acked is not None
        return acked, True

    def resolve_alert(
        self, kind: str, device_id: str, plate: int | None, ts: int
    ) -> dict[str, Any] | None:
        """The condition is gone: resolve the active alert (None when there was none)."""
        with self.transaction():
            active = self._active(kind, device_id, plate)
            if active is None:
                return None
            self._x(
                "UPDATE alerts SET state = 'resolved', resolved_ms = ? WHERE alert_id = ?",
                (ts, active["alert_id"]),
            )
            self._event(
                "alert_resolved",
                ts,
                device_id,
                None,
                {"alert_id": active["alert_id"], "kind": kind, "plate": plate},
            )
            self._alert_to_hq(active["alert_id"], ts)
        return self.alert(active["alert_id"])

    def _alert_to_hq(self, alert_id: str, ts: int, by: str | None = None) -> None:
        """The alert as it is now, for HQ (inside the transaction that changed it)."""
        alert = self.alert(alert_id)
        if alert is None:  # an update of an alert that is gone: nothing to report
            return
        payload = {k: alert[k] for k in _HQ_FIELDS}
        if by is not None:
            payload["by"] = by
        self.enqueue(STREAM_ALERTS, KIND_ALERT, payload, ts_ms=ts)

    def alert(self, alert_id: str) -> dict[str, Any] | None:
        rows = self._alert_rows("WHERE alert_id = ?", (alert_id,))
        return rows[0] if rows else None

    def alerts(
        self,
        state: str | None = None,
        kind: str | None = None,
        device_id: str | None = None,
        limit: int = 200,
    ) -> list[dict[str, Any]]:
        """Newest first; ``state='active'`` means open or acked."""
        clauses: list[str] = []
        params: list[Any] = []
        if state == "active":
            clauses.append(_ACTIVE)
        elif state is not None:
            clauses.append("state = ?")
            params.append(state)
        for column, value in (("kind", kind), ("device_id", device_id)):
            if value is not None:
                clauses.append(f"{column} = ?")
                params.append(value)
        where = ("WHERE " + " AND ".join(clauses)) if clauses else ""
        return self._alert_rows(
            f"{where} ORDER BY raised_ms DESC, alert_id DESC LIMIT ?", (*params, limit)
        )

    def _active(self, kind: str, device_id: str, plate: int | None) -> dict[str, Any] | None:
        rows = self._alert_rows(
            f"WHERE kind = ? AND device_id = ? AND plate IS ? AND {_ACTIVE}",
            (kind, device_id, plate),
        )
        return rows[0] if rows else None

    def _alert_rows(self, tail: str, params: tuple[Any, ...]) -> list[dict[str, Any]]:
        rows = self.db.query(
            "SELECT alert_id, kind, device_id, plate, state, raised_ms, acked_ms, resolved_ms,"
            f" detail FROM alerts {tail}",
            params,
        )
        return [{**r, "detail": json.loads(r["detail"])} for r in rows]
