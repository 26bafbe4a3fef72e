"""Staff alerts: raised once per (kind, device, plate), acknowledged, resolved.

Generic: maintenance alerts come from the plate health monitor; restock and
cold-chain alerts can use the same book.  Every change of state is stored (with
an event) and published on ``alert_topic(store_id, kind)``.  Runs on the
gateway's worker thread.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from devices.protocol import AlertMessage, alert_topic, encode
from edge.store.repo import Store

log = logging.getLogger(__name__)

MAINTENANCE = "maintenance"

_STATE_TS = {"open": "raised_ms", "acked": "acked_ms", "resolved": "resolved_ms"}


class Alerter:
    def __init__(
        self,
        store: Store,
        store_id: str,
        publish: Callable[[str, bytes], None],
        clock_ms: Callable[[], int],
    ) -> None:
        self._store = store
        self._store_id = store_id
        self._publish = publish
        self._clock_ms = clock_ms

    def raise_alert(
        self, kind: str, device_id: str, plate: int | None, detail: dict[str, Any]
    ) -> dict[str, Any]:
        """Open an alert, or update the detail of the one already active (not raised again)."""
        alert, new = self._store.open_alert(kind, device_id, plate, detail, self._clock_ms())
        if new:
            log.warning(
                "%s alert %s: %s plate %s %s", kind, alert["alert_id"], device_id, plate, detail
            )
            self._announce(alert)
        elif alert["detail"] != detail:
            self._store.update_alert_detail(alert["alert_id"], detail, self._clock_ms())
        return alert

    def resolve(self, kind: str, device_id: str, plate: int | None) -> dict[str, Any] | None:
        """The condition is gone; None when no alert was active."""
        alert = self._store.resolve_alert(kind, device_id, plate, self._clock_ms())
        if alert is not None:
            log.info("%s alert %s resolved", kind, alert["alert_id"])
            self._announce(alert)
        return alert

    def ack(self, alert_id: str, by: str) -> dict[str, Any]:
        """Staff have seen it (it stays active until its condition is gone)."""
        alert, changed = self._store.ack_alert(alert_id, self._clock_ms(), by)
        if changed:
            self._announce(alert)
        return alert

    def _announce(self, alert: dict[str, Any]) -> None:
        message = AlertMessage(
            alert_id=alert["alert_id"],
            kind=alert["kind"],
            state=alert["state"],
            device_id=alert["device_id"],
            plate=alert["plate"],
            detail=alert["detail"],
            raised_ts=alert["raised_ms"],
            ts=alert[_STATE_TS[alert["state"]]],
        )
        self._publish(alert_topic(self._store_id, alert["kind"]), encode(message))
