"""Cold-chain alerts: a fridge or freezer that stays above its limit for too long.

Judged on the readings' own timestamps (the sensor's clock): the first reading
above ``max_c`` starts the excursion; a reading at or below it ends it.  Once
an excursion has lasted ``after_s`` one alert is raised; it resolves when a
reading is back at ``max_c - clear_margin_c`` or colder.  After a restart the
excursion's start is found again in the temperature log.  Runs on the
gateway's worker thread.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from edge.alerts import Alerter
from edge.config import ColdChainConfig
from edge.store.repo import Store

log = logging.getLogger(__name__)

COLD_CHAIN = "cold_chain"


@dataclass(frozen=True, slots=True)
class Limit:
    device_id: str
    name: str
    max_c: float
    after_s: float


def limit_of(cfg: ColdChainConfig, device_id: str) -> Limit:
    for unit in cfg.units:
        if unit.device_id == device_id:
            after = unit.after_s if unit.after_s is not None else cfg.after_s
            return Limit(device_id, unit.name or device_id, unit.max_c, after)
    return Limit(device_id, device_id, cfg.default_max_c, cfg.after_s)


@dataclass
class _Unit:
    limit: Limit
    above_since_ms: int | None
    last_ts: int
    alerting: bool


class ColdChainMonitor:
    def __init__(self, cfg: ColdChainConfig, store: Store, alerter: Alerter) -> None:
        self._cfg = cfg
        self._store = store
        self._alerter = alerter
        self._units: dict[str, _Unit] = {}
        self._alerting = {a["device_id"] for a in store.alerts(state="active", kind=COLD_CHAIN)}

    def on_reading(self, device_id: str, ts: int, celsius: float) -> None:
        """A reading that is already in the temperature log."""
        unit = self._units.get(device_id)
        if unit is None:
            limit = limit_of(self._cfg, device_id)
            # The log holds this reading too: the excursion (if any) may have begun before.
            since = self._store.above_since(device_id, limit.max_c)
            unit = _Unit(limit, since, ts, device_id in self._alerting)
            self._units[device_id] = unit
        elif ts <= unit.last_ts:
            return  # an older reading delivered again
        unit.last_ts = ts
        limit = unit.limit
        if celsius > limit.max_c:
            if unit.above_since_ms is None:
                unit.above_since_ms = ts
            if not unit.alerting and ts - unit.above_since_ms >= limit.after_s * 1000:
                self._alerter.raise_alert(
                    COLD_CHAIN,
                    device_id,
                    None,
                    {
                        "name": limit.name,
                        "celsius": celsius,
                        "max_c": limit.max_c,
                        "after_s": limit.after_s,
                        "above_since_ms": unit.above_since_ms,
                    },
                )
                unit.alerting = True
            return
        unit.above_since_ms = None
        if unit.alerting and celsius <= limit.max_c - self._cfg.clear_margin_c:
            self._alerter.resolve(COLD_CHAIN, device_id, None)
            unit.alerting = False


def unit_status(store: Store, cfg: ColdChainConfig, device_id: str) -> dict[str, Any]:
    """A unit as the API shows it: limit, last reading, excursion, active alert."""
    limit = limit_of(cfg, device_id)
    last = store.last_temperature(device_id)
    since = store.above_since(device_id, limit.max_c) if last is not None else None
    alerts = store.alerts(state="active", kind=COLD_CHAIN, device_id=device_id, limit=1)
    if alerts:
        state = "alert"
    elif since is not None:
        state = "above"
    elif last is None:
        state = "no readings"
    else:
        state = "ok"
    return {
        "device_id": device_id,
        "name": limit.name,
        "max_c": limit.max_c,
        "after_s": limit.after_s,
        "last": last,
        "above_since_ms": since,
        "state": state,
        "alert_id": alerts[0]["alert_id"] if alerts else None,
    }


def units_of(store: Store, cfg: ColdChainConfig) -> list[str]:
    """Configured units first, then any other sensor in the log."""
    configured = [u.device_id for u in cfg.units]
    return configured + [d for d in store.temperature_units() if d not in configured]
