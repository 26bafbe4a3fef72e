"""A pure model of one load cell (one shelf plate): true load, noise, drift, hand contact.

No MQTT, no clock of its own: the caller asks for the reading at a sample time ``t``
(seconds on the caller's sample clock).  Sample times must not go backwards.

A change of load (a pick or a put-back) is not a clean step: while the hand
touches the plate the reading shows the *old* load plus an irregular pressure
bump (tens to a few hundred grams, wobbling), and only when the hand leaves does
it settle at the new load.  That is what a weight-event detector has to cope with.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from typing import Literal

from devices.calibration import DEFAULT_FULL_SCALE_RAW

Fault = Literal["stuck", "noisy", "drift", "saturate"]

#: Range of the peak hand pressure added to the reading during contact, in grams.
BUMP_MIN_G = 30.0
BUMP_MAX_G = 250.0
#: Fraction of the contact spent pressing in (and letting go) at each end.
_RAMP_FRACTION = 0.15


@dataclass(frozen=True, slots=True)
class _Transient:
    """One scheduled change of load with its hand-contact bump."""

    start_s: float
    contact_s: float
    old_g: float
    new_g: float
    peak_g: float
    wobble: tuple[tuple[float, float, float], ...]  # (amplitude fraction, Hz, phase)

    @property
    def end_s(self) -> float:
        return self.start_s + self.contact_s

    def bump(self, t: float) -> float:
        """Hand pressure at time ``t`` (``start_s <= t < end_s``), in grams."""
        u = (t - self.start_s) / self.contact_s
        envelope = min(1.0, u / _RAMP_FRACTION, (1.0 - u) / _RAMP_FRACTION)
        shape = 1.0 + sum(a * math.sin(2.0 * math.pi * f * t + p) for a, f, p in self.wobble)
        return min(BUMP_MAX_G, max(BUMP_MIN_G, self.peak_g * envelope * shape))


class LoadCell:
    """Readings of one plate: ``true load + hand bump + drift + gaussian noise``, as raw.

    Deterministic for a given ``rng`` seed and call sequence.
    """

    def __init__(
        self,
        true_load_g: float,
        *,
        rng: random.Random,
        noise_sd_g: float = 1.5,
        drift_g_per_s: float = 0.0,
        offset_raw: float = 0.0,
        gain: float = 1.0,
        full_scale_raw: float = DEFAULT_FULL_SCALE_RAW,
    ) -> None:
        if noise_sd_g < 0:
            raise ValueError("noise_sd_g must be >= 0")
        if not full_scale_raw > 0:
            raise ValueError("full_scale_raw must be > 0")
        self.full_scale_raw = float(full_scale_raw)
        self.offset_raw, self.gain = 0.0, 1.0
        self.set_raw_transfer(offset_raw, gain)
        self._last_raw: float | None = None
        self._stuck = False
        self._stuck_at: float | None = None
        self._saturated = False
        self._noisy_sd_g: float | None = None
        self._fault_drift: tuple[float, float] | None = None  # (since t, grams per s)
        self._rng = rng
        self._noise_sd_g = noise_sd_g
        self._drift_g_per_s = drift_g_per_s
        self._true_load_g = float(true_load_g)
        self._settled_g = float(true_load_g)  # load before the first pending transient
        self._pending: list[_Transient] = []
        self._last_t = 0.0

    @property
    def true_load_g(self) -> float:
        """The load once every scheduled change has settled (the ground truth)."""
        return self._true_load_g

    @property
    def noise_sd_g(self) -> float:
        return self._noise_sd_g

    def change(self, delta_g: float, contact_s: float, at: float | None = None) -> None:
        """Schedule a change of ``delta_g`` grams with ``contact_s`` seconds of hand contact.

        The change starts at sample time ``at`` (default: the latest sample time,
        or the end of the previous contact if that is later: one hand at a time).
        """
        if contact_s < 0:
            raise ValueError("contact_s must be >= 0")
        start = self._last_t if at is None else at
        if self._pending:
            start = max(start, self._pending[-1].end_s)
        old = self._true_load_g
        new = old + delta_g
        self._true_load_g = new
        if contact_s == 0:
            self._pending.append(_Transient(start, 0.0, old, new, BUMP_MIN_G, ()))
            return
        peak = self._rng.uniform(BUMP_MIN_G * 2, BUMP_MAX_G * 0.8)
        wobble = tuple(
            (self._rng.uniform(0.05, 0.2), self._rng.uniform(2.0, 9.0), self._rng.uniform(0, 6.3))
            for _ in range(3)
        )
        self._pending.append(_Transient(start, contact_s, old, new, peak, wobble))

    def level(self, t: float) -> float:
        """The noise-free reading (load plus any hand bump) at time ``t``."""
        # Fold transients that have settled by t into the settled level.
        while self._pending and t >= self._pending[0].end_s:
            self._settled_g = self._pending.pop(0).new_g
        if self._pending and t >= self._pending[0].start_s:
            current = self._pending[0]
            return current.old_g + current.bump(t)
        return self._settled_g

    def set_raw_transfer(self, offset_raw: float, gain: float) -> None:
        """How grams become raw readings: ``raw = offset_raw + gain * grams``."""
        if not (math.isfinite(offset_raw) and math.isfinite(gain)) or gain == 0:
            raise ValueError("offset_raw must be finite and gain finite and non-zero")
        self.offset_raw, self.gain = float(offset_raw), float(gain)

    def inject(self, fault: Fault, value: float, t: float) -> None:
        """Start a fault at sample time ``t`` (see :meth:`SimShelf.inject`)."""
        if fault == "stuck":
            self._stuck, self._stuck_at = True, self._last_raw
        elif fault == "noisy":
            if value < 0:
                raise ValueError("noise sd must be >= 0")
            self._noisy_sd_g = value
        elif fault == "drift":
            self._fault_drift = (t, value / 60.0)
        elif fault == "saturate":
            self._saturated = True
        else:
            raise ValueError(f"unknown fault {fault!r}")

    def clear_faults(self) -> None:
        self._stuck, self._stuck_at, self._saturated = False, None, False
        self._noisy_sd_g = None
        self._fault_drift = None

    def sample(self, t: float) -> float:
        """The raw reading at sample time ``t`` (seconds); grams with the default transfer."""
        self._last_t = max(self._last_t, t)
        sd = self._noise_sd_g if self._noisy_sd_g is None else self._noisy_sd_g
        noise = self._rng.gauss(0.0, sd) if sd > 0 else 0.0
        grams = self.level(t) + self._drift_g_per_s * t + noise
        if self._fault_drift is not None:
            since, rate = self._fault_drift
            grams += rate * (t - since)
        full = self.full_scale_raw
        raw = max(-full, min(full, self.offset_raw + self.gain * grams))
        if self._saturated:
            raw = full
        if self._stuck:
            if self._stuck_at is None:
                self._stuck_at = raw
            raw = self._stuck_at
        self._last_raw = raw
        return raw
