"""The load-cell model: noise, drift, hand-contact transients, determinism."""

from __future__ import annotations

import random
import statistics

import pytest

from firmware_sim.loadcell import BUMP_MAX_G, BUMP_MIN_G, LoadCell

RATE = 60.0


def _samples(cell: LoadCell, start_s: float, end_s: float) -> list[tuple[float, float]]:
    first, last = round(start_s * RATE), round(end_s * RATE)
    return [(i / RATE, cell.sample(i / RATE)) for i in range(first, last)]


def test_noise_is_gaussian_around_the_true_load() -> None:
    cell = LoadCell(1000.0, rng=random.Random(1))
    values = [v for _, v in _samples(cell, 0.0, 100.0)]  # 6000 samples
    assert statistics.fmean(values) == pytest.approx(1000.0, abs=0.1)
    assert statistics.stdev(values) == pytest.approx(1.5, rel=0.05)
    assert cell.true_load_g == 1000.0


def test_custom_noise_and_no_noise() -> None:
    noisy = LoadCell(0.0, rng=random.Random(2), noise_sd_g=5.0)
    values = [v for _, v in _samples(noisy, 0.0, 50.0)]
    assert statistics.stdev(values) == pytest.approx(5.0, rel=0.06)
    quiet = LoadCell(250.0, rng=random.Random(2), noise_sd_g=0.0)
    assert {v for _, v in _samples(quiet, 0.0, 1.0)} == {250.0}


def test_drift_is_off_by_default_and_linear_when_on() -> None:
    cell = LoadCell(500.0, rng=random.Random(3), noise_sd_g=0.0, drift_g_per_s=0.5)
    assert cell.sample(0.0) == 500.0
    assert cell.sample(100.0) == pytest.approx(550.0)
    flat = LoadCell(500.0, rng=random.Random(3), noise_sd_g=0.0)
    assert flat.sample(1000.0) == 500.0


def test_change_shows_hand_pressure_then_settles_at_new_load() -> None:
    cell = LoadCell(2000.0, rng=random.Random(4))
    cell.change(-350.0, contact_s=0.4, at=1.0)
    assert cell.true_load_g == pytest.approx(1650.0)  # the truth changes at once

    before = [v for _, v in _samples(cell, 0.0, 1.0)]
    during = [v for _, v in _samples(cell, 1.0, 1.4)]
    after = [v for _, v in _samples(cell, 1.45, 3.0)]

    assert statistics.fmean(before) == pytest.approx(2000.0, abs=1.0)
    # During contact: the OLD load plus a hand bump of 30..250 g, not the new load.
    noise_margin = 6.0
    assert all(
        2000 + BUMP_MIN_G - noise_margin <= v <= 2000 + BUMP_MAX_G + noise_margin for v in during
    )
    assert max(during) - min(during) > 20.0  # it wobbles; not a flat step
    assert statistics.fmean(after) == pytest.approx(1650.0, abs=1.0)
    assert statistics.stdev(after) < 2.5


def test_bump_is_irregular_between_changes() -> None:
    cell = LoadCell(1000.0, rng=random.Random(5), noise_sd_g=0.0)
    cell.change(100.0, contact_s=0.5, at=0.0)
    cell.change(-100.0, contact_s=0.5, at=2.0)
    first = [v - 1000.0 for _, v in _samples(cell, 0.0, 0.5)]
    second = [v - 1100.0 for _, v in _samples(cell, 2.0, 2.5)]
    assert first != second
    assert cell.sample(3.0) == pytest.approx(1000.0)


def test_change_defaults_to_the_latest_sample_time() -> None:
    cell = LoadCell(800.0, rng=random.Random(6), noise_sd_g=0.0)
    cell.sample(5.0)
    cell.change(-200.0, contact_s=0.3)
    assert cell.sample(5.1) > 800.0  # hand on the plate
    assert cell.sample(5.4) == pytest.approx(600.0)


def test_zero_contact_is_a_clean_step() -> None:
    cell = LoadCell(800.0, rng=random.Random(7), noise_sd_g=0.0)
    cell.change(-100.0, contact_s=0.0, at=1.0)
    assert cell.sample(0.99) == 800.0
    assert cell.sample(1.0) == pytest.approx(700.0)


def test_overlapping_changes_queue_one_hand_at_a_time() -> None:
    cell = LoadCell(1000.0, rng=random.Random(8), noise_sd_g=0.0)
    cell.change(-100.0, contact_s=0.5, at=1.0)
    cell.change(-100.0, contact_s=0.5, at=1.2)  # starts when the first contact ends
    assert cell.true_load_g == pytest.approx(800.0)
    assert cell.sample(1.55) > 900.0 - 1e-9  # second contact: old load 900 plus bump
    assert cell.sample(2.0) == pytest.approx(800.0)


def test_same_seed_same_readings_other_seed_other_readings() -> None:
    def run(seed: int) -> list[float]:
        cell = LoadCell(1234.0, rng=random.Random(seed))
        out = [v for _, v in _samples(cell, 0.0, 1.0)]
        cell.change(-210.0, contact_s=0.4)
        out += [v for _, v in _samples(cell, 1.0, 3.0)]
        return out

    assert run(42) == run(42)
    assert run(42) != run(43)


def test_rejects_negative_parameters() -> None:
    with pytest.raises(ValueError, match="noise"):
        LoadCell(0.0, rng=random.Random(0), noise_sd_g=-1.0)
    cell = LoadCell(0.0, rng=random.Random(0))
    with pytest.raises(ValueError, match="contact"):
        cell.change(10.0, contact_s=-0.1)
