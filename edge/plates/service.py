"""The gateway's plates: calibration applied to every weight batch, health, staff actions.

``on_weight`` runs on the worker for every weight batch: the health monitor
sees the raw samples (every n-th batch), a plate being measured gets them, and
the checkout engine gets grams.  Without stored factors a batch passes through
untouched (one dict lookup).  The staff actions run their state changes on the
worker through ``call``; ``tare``, ``span`` and ``finish`` wait (in the
caller's thread) for the plate to settle.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import CancelledError, Future
from typing import Any

from devices.calibration import Calibration
from edge.alerts import MAINTENANCE, Alerter
from edge.checkout.engine import CheckoutEngine
from edge.config import PlatesConfig
from edge.plates.calibrator import Calibrator
from edge.plates.health import HealthChange, PlateHealth
from edge.store.repo import Store

ACTIONS = ("status", "start", "tare", "span", "finish", "cancel")


class PlateService:
    def __init__(
        self,
        cfg: PlatesConfig,
        store: Store,
        engine: CheckoutEngine,
        alerter: Alerter,
        call: Callable[[Callable[[], Any]], Any],
    ) -> None:
        self.cfg = cfg
        self._engine = engine
        self._alerter = alerter
        self._call = call
        self.health = PlateHealth(cfg.health)
        self.calibrator = Calibrator(
            store,
            cfg.calibration,
            cfg.health.full_scale_raw,
            engine.clock_ms,
            self._plate_count,
            self,
        )
        for alert in store.alerts(state="active", kind=MAINTENANCE):
            if alert["plate"] is not None:
                conditions = alert["detail"].get("conditions", [])
                self.health.restore(alert["device_id"], alert["plate"], conditions)

    def on_weight(
        self, device_id: str, samples: list[list[float]], ts_ms: int
    ) -> list[list[float]]:
        """Raw samples of one shelf's batch in; the same batch in grams out."""
        calibrator = self.calibrator
        changes = self.health.feed(device_id, samples, ts_ms, calibrator.factors.get(device_id))
        if changes:
            self._report(changes)
        if calibrator.capturing:
            calibrator.feed(device_id, samples)
        return calibrator.apply(device_id, samples)

    def _report(self, changes: list[HealthChange]) -> None:
        for change in changes:
            if change.conditions:
                self._alerter.raise_alert(
                    MAINTENANCE, change.device_id, change.plate, change.detail
                )
            else:
                self._alerter.resolve(MAINTENANCE, change.device_id, change.plate)

    def _plate_count(self, device_id: str) -> int | None:
        shelf = self._engine.shelves.get(device_id)
        return None if shelf is None else len(shelf.plates)

    # ------------------------------------------------------------------ PlateHooks

    def mute(self, device_id: str, plate: int) -> None:
        self._engine.shelves[device_id].reset_plate(plate, muted=True)
        self.health.mute(device_id, plate, True)

    def unmute(self, device_id: str, plate: int, baseline_g: float | None) -> None:
        self._engine.shelves[device_id].reset_plate(plate, muted=False, baseline_g=baseline_g)
        self.health.mute(device_id, plate, False)

    def rescale(self, device_id: str, plate: int, old: Calibration, new: Calibration) -> None:
        self._engine.shelves[device_id].rescale_plate(plate, lambda g: new.grams(old.raw(g)))
        self.health.rescaled(device_id, plate)

    # ------------------------------------------------------------------ staff actions

    def calibrate(
        self, device_id: str, plate: int, action: str, known_g: float | None = None
    ) -> dict[str, Any]:
        """One step of the guided flow (see :mod:`edge.plates.calibrator`)."""
        cal = self.calibrator
        if action in ("tare", "span", "finish"):  # these wait for the plate to settle
            return self._measure(device_id, plate, action, known_g)
        steps: dict[str, Callable[[str, int], dict[str, Any]]] = {
            "status": cal.status,
            "start": cal.start,
            "cancel": cal.cancel,
        }
        if action not in steps:
            raise ValueError(f"unknown calibration action {action!r}; one of {ACTIONS}")
        step = steps[action]
        result: dict[str, Any] = self._call(lambda: step(device_id, plate))
        return result

    def _measure(
        self, device_id: str, plate: int, what: str, known_g: float | None
    ) -> dict[str, Any]:
        waiter: Future[dict[str, Any]] = self._call(
            lambda: self.calibrator.measure(device_id, plate, what, known_g)
        )
        timeout = self.cfg.calibration.measure_timeout_s
        try:
            try:
                return waiter.result(timeout)
            except TimeoutError:
                if self._call(lambda: self.calibrator.abandon(device_id, plate, waiter)):
                    raise TimeoutError(
                        f"plate {plate} of {device_id} did not settle within {timeout:g} s: "
                        "keep hands off it (and for the span, put the weight on) and try again"
                    ) from None
            return waiter.result(0)  # it was done just as the time ran out
        except CancelledError:
            raise ValueError("the calibration was cancelled meanwhile") from None

    def set_calibration(
        self, device_id: str, plate: int, tare_raw: float | None, span: float | None, by: str
    ) -> dict[str, Any]:
        """Single-shot factors (both given), or forget them (both None)."""
        if (tare_raw is None) != (span is None):
            raise ValueError("give both tare_raw and span, or neither to forget the factors")
        cal = None if tare_raw is None or span is None else Calibration(tare_raw, span)
        result: dict[str, Any] = self._call(
            lambda: self.calibrator.set_factors(device_id, plate, cal, by)
        )
        return result

    def ack_alert(self, alert_id: str, by: str) -> dict[str, Any]:
        result: dict[str, Any] = self._call(lambda: self._alerter.ack(alert_id, by))
        return result
