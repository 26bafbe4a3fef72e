"""Load-cell calibration math: raw readings to grams, and when a raw signal is settled.

A plate's load cell reports RAW readings, ``raw = offset + gain * grams`` (plus
noise); calibration finds the inverse: ``grams = (raw - tare_raw) * span``,
where ``tare_raw`` is the raw reading of the empty plate and ``span`` is grams
per raw unit, measured with a known weight.  No plate knows its factors: the
gateway stores them and applies them.  Pure functions, no I/O.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

#: Default raw full scale of a plate's ADC (with offset 0 and gain 1: 20 kg).
DEFAULT_FULL_SCALE_RAW = 20_000.0
#: The halves of a settled window may differ by at most this many standard errors.
_SETTLED_SE = 4.0
#: von Neumann ratio (mean squared successive difference / variance) of a settled
#: window: about 2 for white noise, far lower for a hand, a wobble or a ramp.
_MIN_VON_NEUMANN = 1.0
#: No sample of a settled window is farther than this many sds from its mean (one
#: sample of a hand still in the window passes the other two tests).
_MAX_Z = 4.5


@dataclass(frozen=True, slots=True)
class Calibration:
    """The factors of one plate: ``grams = (raw - tare_raw) * span``."""

    tare_raw: float = 0.0
    span: float = 1.0

    def __post_init__(self) -> None:
        if not (math.isfinite(self.tare_raw) and math.isfinite(self.span)) or self.span == 0:
            raise ValueError("tare_raw must be finite and span finite and non-zero")

    @property
    def is_identity(self) -> bool:
        return self.tare_raw == 0.0 and self.span == 1.0

    def grams(self, raw: float) -> float:
        return (raw - self.tare_raw) * self.span

    def raw(self, grams: float) -> float:
        """The inverse of :meth:`grams`."""
        return grams / self.span + self.tare_raw

    def apply(self, raw: list[float]) -> list[float]:
        tare, span = self.tare_raw, self.span
        return [(v - tare) * span for v in raw]


IDENTITY = Calibration()


def span_from(known_g: float, loaded_raw: float, tare_raw: float) -> float:
    """Grams per raw unit, from the settled raw reading with ``known_g`` on the plate."""
    if not known_g > 0:
        raise ValueError("the known weight must be positive")
    diff = loaded_raw - tare_raw
    if diff == 0:
        raise ValueError("the reading did not change with the known weight on the plate")
    return known_g / diff


@dataclass(frozen=True, slots=True)
class Level:
    """The level of a settled window and how well it is known."""

    mean: float
    sd: float  # spread of the samples
    se: float  # standard error of the mean


def settled_level(window: Sequence[float]) -> Level | None:
    """The window's level when the signal in it is settled, else ``None``.

    Scale-free (no threshold in grams: the factors are what is being measured):
    the two halves must agree within a few standard errors, the spread must be
    explained by sample-to-sample noise (no wobble or trend), and no sample may
    stand out (the last touch of a hand).  A frozen
    signal (zero spread) is settled; whether that is healthy is not asked here.
    """
    n = len(window)
    if n < 8:
        return None
    half = n // 2
    first, second = window[:half], window[half:]
    mean = math.fsum(window) / n
    var = math.fsum((v - mean) ** 2 for v in window) / n
    tolerance = 1e-9 * max(1.0, abs(mean))
    if var <= tolerance**2:
        return Level(mean, 0.0, 0.0)
    msd = math.fsum((window[i + 1] - window[i]) ** 2 for i in range(n - 1)) / (n - 1)
    if msd / var < _MIN_VON_NEUMANN:
        return None
    sd = math.sqrt(var)
    if max(abs(v - mean) for v in window) > _MAX_Z * sd:
        return None
    half_gap = abs(math.fsum(first) / len(first) - math.fsum(second) / len(second))
    if half_gap > _SETTLED_SE * sd * math.sqrt(1 / len(first) + 1 / len(second)) + tolerance:
        return None
    return Level(mean, sd, sd / math.sqrt(n))
