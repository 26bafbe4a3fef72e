"""Plate health: is a load cell stuck, saturated, too noisy or drifting?

Looks at every ``check_every``-th weight batch of a shelf (raw samples, before
calibration; the plate's span turns spreads into grams).  Each condition is
*present* or not at a check; it is *flagged* once present for its time
(``stuck_after_s`` ...) and unflagged only after it was absent for
``clear_after_s``, so a plate at the edge of a threshold does not flap.  Noise
and drift also clear at a lower level than they flag at.

Drift: a quiet batch (small spread) shows the plate's level; the small moves of
the level between quiet batches add up to the drift (the checkout detector
follows them without an event: that is the drift compensation); bigger moves
are picks and put-backs and do not count.  The rate over ``drift_window_s`` is
compared with ``max_drift_g_per_min``.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from devices.calibration import Calibration
from edge.config import PlateHealthConfig

#: Level moves between quiet batches larger than this are changes of load, not drift
#: (the detector's own line between drift and a minor change).
DRIFT_STEP_MAX_G = 3.0
#: A flagged noise or drift condition clears below this fraction of its threshold.
_CLEAR_FRACTION = 0.75
#: The drift rate is evaluated this many times per drift window.
_MARKS_PER_WINDOW = 12
CONDITIONS = ("stuck", "saturated", "noisy", "drift")


@dataclass(frozen=True, slots=True)
class HealthChange:
    """The set of flagged conditions of a plate changed (empty: healthy again)."""

    device_id: str
    plate: int
    conditions: tuple[str, ...]
    detail: dict[str, Any]


class _Flag:
    __slots__ = ("absent_since", "flagged", "present_since")

    def __init__(self, flagged: bool = False) -> None:
        self.flagged = flagged
        self.present_since: int | None = None
        self.absent_since: int | None = None

    def update(self, present: bool, now: int, raise_after_ms: int, clear_after_ms: int) -> bool:
        """Record one observation; True when the flag changed."""
        if present:
            self.absent_since = None
            if self.present_since is None:
                self.present_since = now
            if not self.flagged and now - self.present_since >= raise_after_ms:
                self.flagged = True
                return True
            return False
        self.present_since = None
        if self.absent_since is None:
            self.absent_since = now
        if self.flagged and now - self.absent_since >= clear_after_ms:
            self.flagged = False
            return True
        return False


class _Plate:
    __slots__ = (
        "calm",
        "cum_drift_g",
        "drift_g_per_min",
        "flags",
        "last_quiet_g",
        "marks",
        "muted",
        "next_mark_ms",
    )

    def __init__(self) -> None:
        self.flags = {name: _Flag() for name in CONDITIONS}
        self.muted = False
        self.calm = True  # nothing flagged, nothing on its way to a flag
        self.last_quiet_g: float | None = None
        self.cum_drift_g = 0.0
        self.marks: deque[tuple[int, float]] = deque()  # (ts, cumulative drift)
        self.next_mark_ms = 0
        self.drift_g_per_min: float | None = None

    def restart(self) -> None:
        """The plate was away (calibration) or its scale changed: measure afresh."""
        for flag in self.flags.values():
            flag.present_since = flag.absent_since = None
        self.calm = not any(f.flagged for f in self.flags.values())
        self.last_quiet_g = None
        self.marks.clear()
        self.next_mark_ms = 0
        self.drift_g_per_min = None

    def flagged(self) -> tuple[str, ...]:
        return tuple(name for name in CONDITIONS if self.flags[name].flagged)


class PlateHealth:
    def __init__(self, cfg: PlateHealthConfig) -> None:
        self.cfg = cfg
        self._every = cfg.check_every
        self._counts: dict[str, int] = {}
        self._plates: dict[str, list[_Plate]] = {}
        self._after_ms = {
            "stuck": round(cfg.stuck_after_s * 1000),
            "saturated": round(cfg.saturated_after_s * 1000),
            "noisy": round(cfg.noisy_after_s * 1000),
            "drift": 0,  # the drift window is its persistence
        }
        self._clear_ms = round(cfg.clear_after_s * 1000)
        self._window_ms = round(cfg.drift_window_s * 1000)
        self._mark_ms = max(1, self._window_ms // _MARKS_PER_WINDOW)
        self._plain_g = 2 * cfg.noisy_sd_g  # a smaller spread cannot be noisy

    def feed(
        self,
        device_id: str,
        samples: list[list[float]],
        ts_ms: int,
        factors: Mapping[int, Calibration] | None,
    ) -> list[HealthChange]:
        """One raw weight batch of a shelf; the plates whose flags changed."""
        count = self._counts.get(device_id, 0) + 1
        self._counts[device_id] = count
        if count % self._every:
            return []
        plates = self._shelf(device_id, len(samples))
        changes: list[HealthChange] = []
        for plate, raw in enumerate(samples):
            state = plates[plate]
            if state.muted or not raw:
                continue
            cal = factors.get(plate) if factors else None
            change = self._check(state, raw, ts_ms, cal)
            if change is not None:
                changes.append(HealthChange(device_id, plate, state.flagged(), change))
        return changes

    def _check(
        self, state: _Plate, raw: list[float], now: int, cal: Calibration | None
    ) -> dict[str, Any] | None:
        cfg = self.cfg
        lo, hi = min(raw), max(raw)
        span = abs(cal.span) if cal is not None else 1.0
        spread_g = (hi - lo) * span
        full = cfg.full_scale_raw
        if state.calm and lo != hi and -full < lo and hi < full and spread_g <= self._plain_g:
            # Plainly fine (not stuck, not saturated, too little spread to be noisy) and
            # nothing flagged or pending: only the drift needs looking at.
            if spread_g > cfg.quiet_range_g or not self._drift(state, raw, cal, now):
                return None
            state.calm = False
            return self._detail(state, lo, hi, spread_g, 0.0)
        saturated = lo >= full or hi <= -full
        stuck = hi == lo and not saturated
        flags = state.flags
        noisy_limit = cfg.noisy_sd_g * (_CLEAR_FRACTION if flags["noisy"].flagged else 1.0)
        sd_g = 0.0
        if spread_g > 2 * noisy_limit:  # the sd is at most half the spread: else not noisy
            n = len(raw)
            mean = math.fsum(raw) / n
            sd_g = math.sqrt(math.fsum((v - mean) ** 2 for v in raw) / n) * span
        noisy = sd_g > noisy_limit
        changed = False
        for name, present in (("stuck", stuck), ("saturated", saturated), ("noisy", noisy)):
            changed |= flags[name].update(present, now, self._after_ms[name], self._clear_ms)
        if spread_g <= cfg.quiet_range_g and not stuck and not saturated:
            changed |= self._drift(state, raw, cal, now)
        state.calm = not any(f.flagged or f.present_since is not None for f in flags.values())
        return self._detail(state, lo, hi, spread_g, sd_g) if changed else None

    @staticmethod
    def _detail(
        state: _Plate, lo: float, hi: float, spread_g: float, sd_g: float
    ) -> dict[str, Any]:
        return {
            "conditions": list(state.flagged()),
            "raw_min": lo,
            "raw_max": hi,
            "spread_g": round(spread_g, 2),
            "sd_g": round(sd_g, 2),
            "drift_g_per_min": state.drift_g_per_min,
        }

    def _drift(self, state: _Plate, raw: list[float], cal: Calibration | None, now: int) -> bool:
        """A quiet batch: follow the level; True when the drift flag changed."""
        level = sum(raw) / len(raw)
        level_g = cal.grams(level) if cal is not None else level
        last = state.last_quiet_g
        state.last_quiet_g = level_g
        if last is not None and abs(level_g - last) < DRIFT_STEP_MAX_G:
            state.cum_drift_g += level_g - last
        if now < state.next_mark_ms:
            return False
        state.next_mark_ms = now + self._mark_ms
        marks = state.marks
        marks.append((now, state.cum_drift_g))
        while marks[0][0] < now - self._window_ms:
            marks.popleft()
        elapsed = now - marks[0][0]
        if elapsed * 2 < self._window_ms:
            return False  # not enough quiet history yet
        rate = (state.cum_drift_g - marks[0][1]) * 60_000 / elapsed
        state.drift_g_per_min = round(rate, 2)
        flag = state.flags["drift"]
        limit = self.cfg.max_drift_g_per_min * (_CLEAR_FRACTION if flag.flagged else 1.0)
        return flag.update(abs(rate) > limit, now, 0, self._clear_ms)

    def _shelf(self, device_id: str, plates: int) -> list[_Plate]:
        states = self._plates.setdefault(device_id, [])
        while len(states) < plates:
            states.append(_Plate())
        return states

    # ------------------------------------------------------------------ control

    def mute(self, device_id: str, plate: int, muted: bool) -> None:
        """A plate under calibration is not judged; afterwards it is measured afresh."""
        state = self._shelf(device_id, plate + 1)[plate]
        state.muted = muted
        state.restart()

    def rescaled(self, device_id: str, plate: int) -> None:
        """The plate's factors changed: levels from before are in other units."""
        self._shelf(device_id, plate + 1)[plate].restart()

    def restore(self, device_id: str, plate: int, conditions: list[str]) -> None:
        """Flags of an alert still active from before a restart (they clear as usual)."""
        state = self._shelf(device_id, plate + 1)[plate]
        for name in conditions:
            if name in state.flags:
                state.flags[name].flagged = True
        state.calm = not any(f.flagged for f in state.flags.values())

    def status(self, device_id: str, plate: int) -> dict[str, Any]:
        states = self._plates.get(device_id, [])
        if plate >= len(states):
            return {"conditions": [], "drift_g_per_min": None, "muted": False}
        state = states[plate]
        return {
            "conditions": list(state.flagged()),
            "drift_g_per_min": state.drift_g_per_min,
            "muted": state.muted,
        }
