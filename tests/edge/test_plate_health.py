"""The plate health monitor on synthetic batches: flags, hysteresis, drift."""

from __future__ import annotations

import math
import random
from collections.abc import Callable

import pytest

from devices.calibration import Calibration
from edge.config import PlateHealthConfig
from edge.plates.health import HealthChange, PlateHealth

BATCH_MS = 200
CFG = PlateHealthConfig(
    check_every=1,
    stuck_after_s=5,
    saturated_after_s=1,
    noisy_sd_g=10,
    noisy_after_s=4,
    drift_window_s=60,
    max_drift_g_per_min=5,
    clear_after_s=3,
    full_scale_raw=20_000,
)

#: plate -> value at sample time t (s); plate 1 is always healthy.
Signal = Callable[[float], float]


class Feeder:
    def __init__(self, cfg: PlateHealthConfig = CFG, seed: int = 0) -> None:
        self.health = PlateHealth(cfg)
        self.rng = random.Random(seed)
        self.t_ms = 0
        self.changes: list[HealthChange] = []

    def run(
        self,
        seconds: float,
        plate0: Signal,
        noise_sd: float = 1.5,
        factors: dict[int, Calibration] | None = None,
    ) -> list[HealthChange]:
        new: list[HealthChange] = []
        for _ in range(round(seconds * 1000 / BATCH_MS)):
            samples = []
            for plate in range(2):
                row = []
                for i in range(12):
                    t = (self.t_ms + i * 1000 / 60) / 1000
                    value = plate0(t) if plate == 0 else 800.0 + self.rng.gauss(0, 1.5)
                    if plate == 0 and noise_sd:
                        value += self.rng.gauss(0, noise_sd)
                    row.append(round(value, 1))
                samples.append(row)
            new += self.health.feed("shelf-1", samples, self.t_ms, factors)
            self.t_ms += BATCH_MS
        self.changes += new
        return new


def _level(g: float) -> Signal:
    return lambda t: g


def test_a_healthy_plate_with_picks_and_hands_raises_nothing():
    feed = Feeder()
    load = [1500.0]

    def plate0(t: float) -> float:
        # a hand on the plate every 10 s for 0.8 s, a unit of 350 g gone each time
        phase = t % 10
        if 5 <= phase < 5.8:
            return load[0] + 120 * math.sin(2 * math.pi * 5 * t) + 80
        return load[0] - 350 * (t // 10 % 3) - (350 if phase >= 5.8 else 0)

    assert feed.run(120, plate0) == []
    assert feed.health.status("shelf-1", 0)["conditions"] == []
    assert abs(feed.health.status("shelf-1", 0)["drift_g_per_min"]) < 1.0


def test_stuck_is_flagged_once_after_its_time_and_clears_after_its_time():
    feed = Feeder()
    assert feed.run(4.6, _level(1000.0), noise_sd=0) == []  # zero variance, not yet 5 s
    [raised] = feed.run(1.0, _level(1000.0), noise_sd=0)
    assert raised.conditions == ("stuck",)
    assert raised.plate == 0
    assert raised.detail["raw_min"] == raised.detail["raw_max"] == 1000.0
    assert feed.run(30, _level(1000.0), noise_sd=0) == []  # raised once, not again
    assert feed.run(2.8, _level(1000.0)) == []  # alive again, but not for long enough
    [cleared] = feed.run(0.4, _level(1000.0))
    assert cleared.conditions == ()


def test_a_stuck_plate_that_wakes_now_and_then_does_not_flap():
    feed = Feeder()
    feed.run(6, _level(1000.0), noise_sd=0)
    assert [c.conditions for c in feed.changes] == [("stuck",)]
    for _ in range(10):  # 2 s alive (less than clear_after_s), 2 s frozen again
        feed.run(2, _level(1000.0))
        feed.run(2, _level(1000.0), noise_sd=0)
    assert [c.conditions for c in feed.changes] == [("stuck",)]


def test_noise_sustained_is_flagged_and_a_noise_near_the_threshold_does_not_flap():
    feed = Feeder()
    assert feed.run(3.8, _level(1000.0), noise_sd=30) == []
    [raised] = feed.run(0.4, _level(1000.0), noise_sd=30)
    assert raised.conditions == ("noisy",)
    assert raised.detail["sd_g"] > 10
    # hovering around the threshold: it stays flagged (clears only well below it)
    feed.run(60, _level(1000.0), noise_sd=9.5)
    assert [c.conditions for c in feed.changes] == [("noisy",)]
    feed.run(5, _level(1000.0), noise_sd=1.5)
    assert [c.conditions for c in feed.changes] == [("noisy",), ()]


def test_a_hand_for_a_few_seconds_is_not_noise():
    feed = Feeder()
    wobble: Signal = lambda t: 1000 + (150 * math.sin(2 * math.pi * 4 * t) if t < 3 else 0)  # noqa: E731
    assert feed.run(20, wobble) == []


def test_saturation_is_flagged_and_not_also_called_stuck():
    feed = Feeder()
    feed.run(2, _level(1000.0))
    feed.run(10, _level(20_000.0), noise_sd=0)
    assert [c.conditions for c in feed.changes] == [("saturated",)]
    feed.run(4, _level(1000.0))
    assert [c.conditions for c in feed.changes] == [("saturated",), ()]


def test_drift_beyond_the_rate_is_flagged_and_picks_do_not_count_as_drift():
    feed = Feeder()
    # 12 g/min of drift on a plate from which a 350 g unit is picked every 15 s
    drifting: Signal = lambda t: 2000 + 12 * t / 60 - 350 * (t // 15)  # noqa: E731
    feed.run(25, drifting)
    assert feed.changes == []  # not enough history yet
    feed.run(40, drifting)
    assert [c.conditions for c in feed.changes] == [("drift",)]
    assert feed.health.status("shelf-1", 0)["drift_g_per_min"] == pytest.approx(12, abs=2)


def test_drift_below_the_rate_is_only_observed():
    feed = Feeder()
    feed.run(90, lambda t: 2000 + 3 * t / 60)
    assert feed.changes == []
    assert feed.health.status("shelf-1", 0)["drift_g_per_min"] == pytest.approx(3, abs=1)


def test_spreads_are_judged_in_grams_through_the_span():
    # raw = 500 + 4 * grams: 4 g of raw noise is 1 g, 60 raw of noise is 15 g
    cal = {0: Calibration(500.0, 0.25)}
    feed = Feeder()
    assert feed.run(10, _level(4500.0), noise_sd=4 * 1.5, factors=cal) == []
    [raised] = feed.run(5, _level(4500.0), noise_sd=60, factors=cal)
    assert raised.conditions == ("noisy",)


def test_a_muted_plate_is_not_judged_and_restored_flags_clear_as_usual():
    feed = Feeder()
    feed.health.mute("shelf-1", 0, True)
    assert feed.run(10, _level(1000.0), noise_sd=0) == []
    feed.health.mute("shelf-1", 0, False)
    feed.health.restore("shelf-1", 0, ["noisy"])  # an alert from before a restart
    assert feed.health.status("shelf-1", 0)["conditions"] == ["noisy"]
    [cleared] = feed.run(4, _level(1000.0))
    assert cleared.conditions == ()


def test_only_every_nth_batch_is_looked_at():
    feed = Feeder(PlateHealthConfig(check_every=5, stuck_after_s=5, clear_after_s=3))
    feed.run(4.8, _level(1000.0), noise_sd=0)
    assert feed.changes == []
    feed.run(2, _level(1000.0), noise_sd=0)
    assert [c.conditions for c in feed.changes] == [("stuck",)]
