"""Weight-event detection that trusts only settled changes.

Each plate keeps a window of its latest samples.  The plate is *settled* when
the window's spread is small; a settled level that differs from the last
settled level (the baseline) by at least ``min_delta_g`` is one event.  Small
settled moves are absorbed into the baseline, so slow drift never becomes an
event, and a hand pressing on the plate (a transient) never settles.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

from edge.config import DetectorConfig


@dataclass(frozen=True, slots=True)
class WeightEvent:
    device_id: str
    plate: int
    delta_g: float
    start_ms: int  # when the plate left its last settled level
    end_ms: int  # the sample that confirmed the new level
    settled_ms: int  # the first sample of the settled window: when the hand let go


class PlateDetector:
    __slots__ = ("_cfg", "_unsettled_since", "_window", "baseline_g", "device_id", "plate")

    def __init__(self, device_id: str, plate: int, cfg: DetectorConfig) -> None:
        self.device_id = device_id
        self.plate = plate
        self._cfg = cfg
        self._window: deque[float] = deque(maxlen=cfg.settle_samples)
        self.baseline_g: float | None = None
        self._unsettled_since: int | None = None

    @property
    def in_motion(self) -> bool:
        """True while the plate is moving away from its baseline (a change in progress)."""
        return self._unsettled_since is not None

    def feed(self, samples: list[float], first_ts_ms: int, period_ms: float) -> WeightEvent | None:
        self._window.extend(samples)
        end_ms = first_ts_ms + round(period_ms * (len(samples) - 1))
        if len(self._window) < self._window.maxlen:  # type: ignore[operator]
            return None
        mean, sd = _mean_sd(self._window)
        if sd > self._cfg.settle_sd_g:
            if self._unsettled_since is None:
                self._unsettled_since = first_ts_ms
            return None
        if self.baseline_g is None:
            self.baseline_g = mean
            return None
        delta = mean - self.baseline_g
        started = self._unsettled_since if self._unsettled_since is not None else first_ts_ms
        self._unsettled_since = None
        self.baseline_g = mean
        if abs(delta) < self._cfg.min_delta_g:
            return None  # drift or noise: absorbed into the baseline
        settled = end_ms - round(period_ms * (len(self._window) - 1))
        return WeightEvent(self.device_id, self.plate, delta, started, end_ms, settled)


def _mean_sd(values: deque[float]) -> tuple[float, float]:
    n = len(values)
    mean = sum(values) / n
    var = sum((v - mean) ** 2 for v in values) / n
    return mean, math.sqrt(var)


@dataclass(frozen=True, slots=True)
class ShelfEvent:
    """Settled changes on neighbouring plates of one shelf that happened together."""

    device_id: str
    plates: tuple[int, ...]
    deltas_g: tuple[float, ...]  # per plate, same order
    start_ms: int
    end_ms: int
    settled_ms: int  # when the last of its plates came to rest

    @property
    def delta_g(self) -> float:
        return sum(self.deltas_g)


#: Plate changes that settle this close together belong to one item.
GROUP_WINDOW_MS = 450


class ShelfDetector:
    """The plates of one shelf, and the grouping of their changes into shelf events.

    A plate change waits until its neighbouring plates are still, then it is
    merged with the changes of neighbouring plates that settled at about the
    same time (an item lying across plates); changes that cancel out (an item
    moved between neighbouring plates) disappear.
    """

    def __init__(self, device_id: str, plates: int, cfg: DetectorConfig) -> None:
        self.device_id = device_id
        self.plates = [PlateDetector(device_id, i, cfg) for i in range(plates)]
        self._neighbours = cfg.neighbour_plates
        self._min_delta = cfg.min_delta_g
        self._pending: list[WeightEvent] = []

    @property
    def in_motion(self) -> bool:
        return bool(self._pending) or any(p.in_motion for p in self.plates)

    def feed(self, samples: list[list[float]], ts_ms: int, rate_hz: int) -> list[ShelfEvent]:
        period_ms = 1000.0 / rate_hz
        for detector, plate_samples in zip(self.plates, samples, strict=False):
            event = detector.feed(plate_samples, ts_ms, period_ms)
            if event is not None:
                self._pending.append(event)
        return self._flush() if self._pending else []

    def _moving_near(self, plate: int) -> bool:
        lo, hi = (
            max(0, plate - self._neighbours),
            min(len(self.plates), plate + self._neighbours + 1),
        )
        return any(self.plates[i].in_motion for i in range(lo, hi))

    def _flush(self) -> list[ShelfEvent]:
        groups: list[list[WeightEvent]] = []
        for event in sorted(self._pending, key=lambda e: (e.end_ms, e.plate)):
            for group in groups:
                if any(
                    abs(event.plate - other.plate) <= self._neighbours
                    and abs(event.end_ms - other.end_ms) <= GROUP_WINDOW_MS
                    for other in group
                ):
                    group.append(event)
                    break
            else:
                groups.append([event])
        out: list[ShelfEvent] = []
        for group in groups:
            if any(self._moving_near(e.plate) for e in group):
                continue
            for e in group:
                self._pending.remove(e)
            per_plate: dict[int, float] = {}
            for e in group:
                per_plate[e.plate] = per_plate.get(e.plate, 0.0) + e.delta_g
            if abs(sum(per_plate.values())) < self._min_delta:
                continue  # moved between plates, or a touch that came back
            plates = tuple(sorted(per_plate))
            out.append(
                ShelfEvent(
                    self.device_id,
                    plates,
                    tuple(per_plate[p] for p in plates),
                    min(e.start_ms for e in group),
                    max(e.end_ms for e in group),
                    max(e.settled_ms for e in group),
                )
            )
        return out
