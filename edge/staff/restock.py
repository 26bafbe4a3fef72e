"""Restock alerts: stock per lane from its settled weight, one alert per low lane.

A *lane* is the plates of one product on one shelf (the plates whose planogram
product it is).  Its stock is ``(settled weight - tare) / unit weight``, where
the settled weight is the sum of its plates' baselines in the weight-event
detector (a plate with a hand on it keeps its last settled level, so a pick in
progress never counts), and the tare is what the lane weighs without units:
learned from the first settled weight and the planogram's stock, or set by a
staff count.  Tares and levels are kept in ``lane_stock``, so a restart
continues where it was.

When a plate's calibration changes (or it was under calibration), the units the
lane held before stay, and its tare is learned again from the new level: the
weights changed units, not the stock (a staff count corrects it if need be).

Hysteresis: the alert is raised when the lane holds ``restock_at`` units or
fewer, and resolves only once it holds ``refilled_at`` (``restock_at`` plus
``restock.refill_units``), so a lane hovering at its threshold raises one alert.
Runs on the gateway's worker thread.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from devices.layout import Planogram
from edge.alerts import Alerter
from edge.checkout.detector import ShelfDetector, ShelfEvent
from edge.config import RestockConfig
from edge.store.repo import Store

log = logging.getLogger(__name__)

RESTOCK = "restock"


@dataclass
class Lane:
    device_id: str
    barcode: str
    name: str
    plates: tuple[int, ...]
    unit_weight_g: float
    planned_units: int
    restock_at: int | None  # None: no alerts
    refilled_at: int | None
    tare_g: float | None = None
    level_g: float | None = None
    units: int | None = None
    alerting: bool = False
    #: The plates' calibrations the tare was learned under (None: not looked at yet).
    calibrations: tuple[object, ...] | None = None

    @property
    def key(self) -> tuple[str, str]:
        return self.device_id, self.barcode

    def row(self) -> dict[str, Any]:
        return {
            "device_id": self.device_id,
            "barcode": self.barcode,
            "plates": list(self.plates),
            "unit_weight_g": self.unit_weight_g,
            "planned_units": self.planned_units,
            "restock_at": self.restock_at,
            "refilled_at": self.refilled_at,
            "tare_g": None if self.tare_g is None else round(self.tare_g, 1),
            "level_g": None if self.level_g is None else round(self.level_g, 1),
            "units": self.units,
        }

    def detail(self) -> dict[str, Any]:
        return {
            "barcode": self.barcode,
            "name": self.name,
            "plates": list(self.plates),
            "units": self.units,
            "restock_at": self.restock_at,
            "refilled_at": self.refilled_at,
        }


def lane_is_low(units: int | None, restock_at: int | None) -> bool:
    """Is a lane low: weighed, with a restock threshold, and holding that many units or
    fewer?  (``Store.lanes_low`` counts the same in SQL.)"""
    return restock_at is not None and units is not None and units <= restock_at


def plan_lanes(planogram: Planogram, cfg: RestockConfig) -> list[Lane]:
    """The lanes of a planogram with their thresholds (products of unknown weight: none)."""
    lanes = []
    for shelf in planogram.shelves:
        by_product: dict[str, list[int]] = {}
        planned: dict[str, int] = {}
        explicit: dict[str, list[int]] = {}
        for plate in shelf.plates:
            by_product.setdefault(plate.barcode, []).append(plate.plate)
            planned[plate.barcode] = planned.get(plate.barcode, 0) + plate.stock
            if plate.restock_at is not None:
                explicit.setdefault(plate.barcode, []).append(plate.restock_at)
        for barcode, plates in by_product.items():
            product = planogram.product(barcode)
            if product.unit_weight_g <= 0:
                continue
            stock = planned[barcode]
            at: int | None
            if barcode in explicit:
                at = max(explicit[barcode])
            elif cfg.default_share > 0 and stock > 0:
                at = math.ceil(cfg.default_share * stock)
            else:
                at = None
            refilled = None if at is None else min(at + cfg.refill_units, max(stock, at + 1))
            lanes.append(
                Lane(
                    shelf.device_id,
                    barcode,
                    product.name,
                    tuple(sorted(plates)),
                    product.unit_weight_g,
                    stock,
                    at,
                    refilled,
                )
            )
    return lanes


class RestockMonitor:
    def __init__(
        self,
        planogram: Planogram,
        cfg: RestockConfig,
        store: Store,
        alerter: Alerter,
        shelves: Mapping[str, ShelfDetector],
        clock_ms: Callable[[], int],
        calibration: Callable[[str, int], object] = lambda _device, _plate: None,
    ) -> None:
        self._cfg = cfg
        self._store = store
        self._alerter = alerter
        self._shelves = shelves
        self._clock_ms = clock_ms
        self._calibration = calibration
        self.lanes = {lane.key: lane for lane in plan_lanes(planogram, cfg)} if cfg.enabled else {}
        self._by_plate = {
            (lane.device_id, plate): lane for lane in self.lanes.values() for plate in lane.plates
        }
        for row in store.lanes():
            lane = self.lanes.get((row["device_id"], row["barcode"]))
            if lane is not None:
                lane.tare_g, lane.level_g, lane.units = row["tare_g"], row["level_g"], row["units"]
        for alert in store.alerts(state="active", kind=RESTOCK):
            lane = self._by_plate.get((alert["device_id"], alert["plate"]))
            if lane is not None:
                lane.alerting = True

    def replace_planogram(self, planogram: Planogram) -> None:
        """A new planogram while running (on the worker).  A lane it keeps on the same
        plates keeps its tare, count and alert; when its unit weight changed, it keeps
        its units and learns its tare again from its level.  Other lanes start as at a
        first start: the tare from the settled weight and the planogram's stock (a
        staff count corrects it).  See :meth:`resolve_orphans` for the alerts of lanes
        that are gone."""
        if not self._cfg.enabled:
            return
        lanes = {lane.key: lane for lane in plan_lanes(planogram, self._cfg)}
        for key, lane in lanes.items():
            old = self.lanes.get(key)
            if old is None or old.plates != lane.plates:
                continue
            lane.tare_g, lane.level_g, lane.units = old.tare_g, old.level_g, old.units
            lane.alerting, lane.calibrations = old.alerting, old.calibrations
            units, level = lane.units, lane.level_g
            if lane.unit_weight_g != old.unit_weight_g and units is not None and level is not None:
                lane.tare_g = level - units * lane.unit_weight_g
                self._store.save_lane(lane.row(), self._clock_ms())  # a restart goes on so
        self.lanes = lanes
        self._by_plate = {
            (lane.device_id, plate): lane for lane in lanes.values() for plate in lane.plates
        }

    def resolve_orphans(self) -> None:
        """Resolve the restock alerts of lanes that are no more (after a new planogram)."""
        for alert in self._store.alerts(state="active", kind=RESTOCK):
            lane = self._by_plate.get((alert["device_id"], alert["plate"]))
            if lane is None or lane.plates[0] != alert["plate"]:
                self._alerter.resolve(RESTOCK, alert["device_id"], alert["plate"])

    # ------------------------------------------------------------------ inputs

    def on_shelf_event(self, event: ShelfEvent) -> None:
        """A settled change on a shelf: look at the lanes on its plates now."""
        seen: set[tuple[str, str]] = set()
        for plate in event.plates:
            lane = self._by_plate.get((event.device_id, plate))
            if lane is None or lane.key in seen:
                continue
            seen.add(lane.key)
            if lane.tare_g is None:
                # Never weighed settled before (a pick soon after start): it held its
                # planogram stock before this event.
                level = self._level(lane)
                if level is not None:
                    before = level - sum(
                        d
                        for p, d in zip(event.plates, event.deltas_g, strict=True)
                        if p in lane.plates
                    )
                    lane.tare_g = before - lane.planned_units * lane.unit_weight_g
            self._evaluate(lane)

    def tick(self) -> None:
        """Every lane (a first settled weight, drift): called every few seconds."""
        for lane in self.lanes.values():
            self._evaluate(lane)

    def count(self, device_id: str, barcode: str, units: int, by: str) -> dict[str, Any]:
        """Staff counted ``units`` on a lane: its tare follows from its settled weight now."""
        lane = self.lanes.get((device_id, barcode))
        if lane is None:
            raise LookupError(f"no lane of {barcode!r} on {device_id!r}")
        level = self._level(lane)
        if level is None:
            raise ValueError(f"the plates of {barcode!r} on {device_id!r} have not settled yet")
        lane.tare_g = level - units * lane.unit_weight_g
        lane.units = None  # written again below
        now = self._clock_ms()
        self._store.record_event(
            "stock_counted", now, device_id, None, {"barcode": barcode, "units": units, "by": by}
        )
        self._evaluate(lane)
        return lane.row()

    # ------------------------------------------------------------------ the estimate

    def _level(self, lane: Lane) -> float | None:
        shelf = self._shelves.get(lane.device_id)
        if shelf is None:
            return None
        total = 0.0
        for plate in lane.plates:
            if plate >= len(shelf.plates):
                return None
            detector = shelf.plates[plate]
            if detector.muted:
                lane.calibrations = ()  # under calibration: learn the tare again after
                return None
            if detector.baseline_g is None:
                return None  # not settled yet
            total += detector.baseline_g
        return total

    def _evaluate(self, lane: Lane) -> None:
        level = self._level(lane)
        if level is None:
            return
        changed = False
        calibrations = tuple(self._calibration(lane.device_id, p) for p in lane.plates)
        if lane.calibrations is None:
            lane.calibrations = calibrations  # what the stored tare was learned under
        if calibrations != lane.calibrations:
            lane.calibrations = calibrations
            if lane.tare_g is not None and lane.units is not None:
                lane.tare_g = level - lane.units * lane.unit_weight_g  # same units, new scale
                changed = True
        if lane.tare_g is None:
            lane.tare_g = level - lane.planned_units * lane.unit_weight_g
            changed = True
        units = max(0, round((level - lane.tare_g) / lane.unit_weight_g))
        lane.level_g = level
        if units != lane.units:
            lane.units = units
            changed = True
        if changed:
            self._store.save_lane(lane.row(), self._clock_ms())
        self._judge(lane, changed)

    def _judge(self, lane: Lane, changed: bool) -> None:
        if lane.restock_at is None or lane.refilled_at is None or lane.units is None:
            return
        plate = lane.plates[0]
        if lane_is_low(lane.units, lane.restock_at):
            if not lane.alerting or changed:  # raise once; then keep its count current
                self._alerter.raise_alert(RESTOCK, lane.device_id, plate, lane.detail())
                lane.alerting = True
        elif lane.units >= lane.refilled_at and lane.alerting:
            self._alerter.resolve(RESTOCK, lane.device_id, plate)
            lane.alerting = False
        elif lane.alerting and changed:
            self._alerter.raise_alert(RESTOCK, lane.device_id, plate, lane.detail())
