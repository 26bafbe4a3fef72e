"""Calibration math: raw to grams, span from a known weight, and the settle test."""

from __future__ import annotations

import math
import random

import pytest

from devices.calibration import IDENTITY, Calibration, settled_level, span_from


def test_factors_invert_a_raw_transfer():
    offset, gain = 812.5, 2.5  # raw = offset + gain * grams
    cal = Calibration(tare_raw=offset, span=span_from(2000.0, offset + gain * 2000.0, offset))
    assert cal.span == pytest.approx(1 / gain)
    assert cal.grams(offset + gain * 535.0) == pytest.approx(535.0)
    assert cal.apply([offset, offset + gain * 100.0]) == pytest.approx([0.0, 100.0])


def test_a_reversed_load_cell_gets_a_negative_span():
    cal = Calibration(1000.0, span_from(500.0, 1000.0 - 2 * 500.0, 1000.0))
    assert cal.span < 0
    assert cal.grams(1000.0 - 2 * 250.0) == pytest.approx(250.0)


def test_identity_and_bad_factors():
    assert IDENTITY.is_identity
    assert IDENTITY.apply([1.5, 2.5]) == [1.5, 2.5]
    assert not Calibration(0.0, 0.5).is_identity
    with pytest.raises(ValueError, match="span"):
        Calibration(0.0, 0.0)
    with pytest.raises(ValueError, match="span"):
        Calibration(math.nan, 1.0)
    with pytest.raises(ValueError, match="positive"):
        span_from(0.0, 10.0, 0.0)
    with pytest.raises(ValueError, match="did not change"):
        span_from(100.0, 10.0, 10.0)


def _noise(level: float, sd: float, n: int = 60, seed: int = 0) -> list[float]:
    rng = random.Random(seed)
    return [level + rng.gauss(0, sd) for _ in range(n)]


@pytest.mark.parametrize("seed", range(20))
def test_white_noise_around_a_level_is_settled(seed):
    level = settled_level(_noise(3000.0, 4.0, seed=seed))
    assert level is not None
    assert level.mean == pytest.approx(3000.0, abs=3.0)
    assert 2.0 < level.sd < 6.0
    assert level.se == pytest.approx(level.sd / math.sqrt(60))


def test_a_frozen_signal_is_settled_with_no_spread():
    level = settled_level([1234.5] * 60)
    assert level is not None
    assert (level.mean, level.sd, level.se) == (1234.5, 0.0, 0.0)


def test_a_hand_wobble_a_ramp_and_a_step_are_not_settled():
    t = [i / 60 for i in range(60)]
    wobble = [
        1000 + 40 * math.sin(2 * math.pi * 4 * x) + n for x, n in zip(t, _noise(0, 1), strict=True)
    ]
    ramp = [1000 + 30 * x + n for x, n in zip(t, _noise(0, 1), strict=True)]
    step = _noise(1000, 1.0, 30) + _noise(1020, 1.0, 30, seed=1)
    assert settled_level(wobble) is None
    assert settled_level(ramp) is None
    assert settled_level(step) is None
    assert settled_level([1.0] * 7) is None  # too short to tell


@pytest.mark.parametrize("where", [0, 17, 59])
def test_one_sample_of_a_hand_in_the_window_is_not_settled(where):
    window = _noise(17_950.0, 4.0, seed=where)
    window[where] = 850.0  # the plate still empty for one sample (the hand just left)
    assert settled_level(window) is None
    window[where] = 17_950.0
    assert settled_level(window) is not None
