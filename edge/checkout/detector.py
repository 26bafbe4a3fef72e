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
    end_ms: int  # when the new level had settled


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
        return WeightEvent(self.device_id, self.plate, delta, started, end_ms)


def _mean_sd(values: deque[float]) -> tuple[float, float]:
    n = len(values)
    mean = sum(values) / n
    var = sum((v - mean) ** 2 for v in values) / n
    return mean, math.sqrt(var)


class ShelfDetector:
    """The plates of one shelf."""

    def __init__(self, device_id: str, plates: int, cfg: DetectorConfig) -> None:
        self.device_id = device_id
        self.plates = [PlateDetector(device_id, i, cfg) for i in range(plates)]

    @property
    def in_motion(self) -> bool:
        return any(p.in_motion for p in self.plates)

    def feed(self, samples: list[list[float]], ts_ms: int, rate_hz: int) -> list[WeightEvent]:
        period_ms = 1000.0 / rate_hz
        events = []
        for detector, plate_samples in zip(self.plates, samples, strict=False):
            event = detector.feed(plate_samples, ts_ms, period_ms)
            if event is not None:
                events.append(event)
        return events
