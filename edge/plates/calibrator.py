"""Calibration factors per plate, applied to every weight batch, and the guided flow.

The guided flow of one plate, driven by staff (each step a call on the worker):

    start  -> empty_plate     take everything off the plate
    tare   -> measuring_tare  -> place_weight   (the next settled raw window is the tare)
    span   -> measuring_span  -> restock        (span = known_g / (raw - tare), saved)
    finish -> measuring_level -> idle           (products back; checkout sees it again)
    cancel -> idle            (at any step; the factors stay as they were)

From ``start`` until ``finish``/``cancel`` the plate is muted: the checkout
detector does not look at it, so emptying and loading it makes no cart events.
``finish`` waits for the restocked plate to settle and hands that level to the
detector as its baseline, so a pick right after it is seen; after ``cancel``
the detector takes its next settled window.  Sessions live in memory: a
gateway restart cancels them (the saved factors stay).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, Protocol

from devices.calibration import IDENTITY, Calibration, Level, settled_level, span_from
from edge.config import CalibrationConfig
from edge.store.repo import Store

#: A loaded level must differ from the tare by this many standard errors (or more).
_MIN_LOAD_SE = 20.0

INSTRUCTIONS = {
    "idle": "Not under calibration. POST .../start to calibrate this plate.",
    "empty_plate": "Take everything off the plate and keep hands off it, then POST .../tare.",
    "measuring_tare": "Measuring the empty plate: keep hands off it.",
    "place_weight": "Put a known weight in the middle of the plate, let go, then POST "
    ".../span with known_g.",
    "measuring_span": "Measuring the known weight: keep hands off the plate.",
    "restock": "Take the test weight off, put the products back, then POST .../finish.",
    "measuring_level": "Measuring the restocked plate: keep hands off it.",
}
#: Each measurement: the step while it runs, and the step it falls back to.
_MEASURING = {
    "tare": ("measuring_tare", "empty_plate"),
    "span": ("measuring_span", "place_weight"),
    "finish": ("measuring_level", "restock"),
}


class PlateHooks(Protocol):
    """What the rest of the gateway must hear about a plate (detector, health)."""

    def mute(self, device_id: str, plate: int) -> None: ...

    def unmute(self, device_id: str, plate: int, baseline_g: float | None) -> None: ...

    def rescale(self, device_id: str, plate: int, old: Calibration, new: Calibration) -> None: ...


@dataclass
class _Session:
    device_id: str
    plate: int
    started_ms: int
    step: str = "empty_plate"
    tare: Level | None = None
    known_g: float | None = None
    result: Calibration | None = None
    window: deque[float] = field(default_factory=deque)
    waiter: Future[dict[str, Any]] | None = None


class Calibrator:
    """Runs on the gateway's worker thread; ``hooks`` hear when a plate leaves the
    checkout, comes back, or changes scale."""

    def __init__(
        self,
        store: Store,
        cfg: CalibrationConfig,
        full_scale_raw: float,
        clock_ms: Callable[[], int],
        plate_count: Callable[[str], int | None],
        hooks: PlateHooks,
    ) -> None:
        self._store = store
        self._cfg = cfg
        self._full_scale = full_scale_raw
        self._clock_ms = clock_ms
        self._plate_count = plate_count
        self._hooks = hooks
        self.factors: dict[str, dict[int, Calibration]] = {}
        for row in store.calibrations():
            cal = Calibration(row["tare_raw"], row["span"])
            self.factors.setdefault(row["device_id"], {})[row["plate"]] = cal
        self._sessions: dict[tuple[str, int], _Session] = {}
        #: device -> sessions measuring now; empty (falsy) nearly always.
        self.capturing: dict[str, list[_Session]] = {}

    # ------------------------------------------------------------------ every batch

    def apply(self, device_id: str, samples: list[list[float]]) -> list[list[float]]:
        """Raw samples to grams (plates without factors pass through unchanged)."""
        factors = self.factors.get(device_id)
        if factors is None:
            return samples
        out = list(samples)
        for plate, cal in factors.items():
            if plate < len(out):
                out[plate] = cal.apply(out[plate])
        return out

    def feed(self, device_id: str, samples: list[list[float]]) -> None:
        """Raw samples for the plates being measured."""
        for session in list(self.capturing.get(device_id, ())):
            if session.plate < len(samples):
                session.window.extend(samples[session.plate])
                if len(session.window) == session.window.maxlen:
                    self._try_measure(session)

    # ------------------------------------------------------------------ the guided flow

    def status(self, device_id: str, plate: int) -> dict[str, Any]:
        self._check_plate(device_id, plate)
        session = self._sessions.get((device_id, plate))
        step = session.step if session else "idle"
        out: dict[str, Any] = {
            "device_id": device_id,
            "plate": plate,
            "step": step,
            "instructions": INSTRUCTIONS[step],
            "factors": self._store.calibration(device_id, plate),
            "session": None,
        }
        if session is not None:
            out["session"] = {
                "started_ms": session.started_ms,
                "tare_raw": session.tare.mean if session.tare else None,
                "known_g": session.known_g,
                "span": session.result.span if session.result else None,
            }
        return out

    def start(self, device_id: str, plate: int) -> dict[str, Any]:
        self._check_plate(device_id, plate)
        if (device_id, plate) in self._sessions:
            raise ValueError(f"plate {plate} of {device_id} is already under calibration")
        now = self._clock_ms()
        self._sessions[(device_id, plate)] = _Session(device_id, plate, now)
        self._hooks.mute(device_id, plate)
        self._store.record_event("calibration_started", now, device_id, None, {"plate": plate})
        return self.status(device_id, plate)

    def measure(
        self, device_id: str, plate: int, what: str, known_g: float | None = None
    ) -> Future[dict[str, Any]]:
        """Begin measuring the tare, the span or the restocked level (``finish``);
        the future holds the new status once the plate has settled."""
        session = self._session(device_id, plate)
        if what == "tare":
            self._expect(session, "empty_plate", "place_weight")
        elif what == "span":
            self._expect(session, "place_weight")
            if known_g is None or not known_g > 0:
                raise ValueError("give the known weight in grams (known_g > 0)")
            session.known_g = known_g
        elif what == "finish":
            self._expect(session, "restock")
        else:
            raise ValueError(f"unknown measurement {what!r}")
        session.step = _MEASURING[what][0]
        session.window = deque(maxlen=self._cfg.settle_samples)
        session.waiter = Future()
        self.capturing.setdefault(device_id, []).append(session)
        return session.waiter

    def abandon(self, device_id: str, plate: int, waiter: Future[dict[str, Any]]) -> bool:
        """Stop a measurement that took too long; False when it finished meanwhile."""
        session = self._sessions.get((device_id, plate))
        if session is None or session.waiter is not waiter or waiter.done():
            return False
        self._stop_measuring(session)
        waiter.cancel()
        return True

    def cancel(self, device_id: str, plate: int) -> dict[str, Any]:
        return self._end(self._session(device_id, plate), "calibration_cancelled", None)

    # ------------------------------------------------------------------ by command

    def set_factors(
        self, device_id: str, plate: int, cal: Calibration | None, by: str
    ) -> dict[str, Any]:
        """Store factors directly (``None``: forget them and read raw as grams)."""
        self._check_plate(device_id, plate)
        if (device_id, plate) in self._sessions:
            raise ValueError(f"plate {plate} of {device_id} is under calibration")
        old = self.factors.get(device_id, {}).get(plate, IDENTITY)
        if cal is None:
            self._store.delete_calibration(device_id, plate, self._clock_ms(), by)
            self.factors.get(device_id, {}).pop(plate, None)
        else:
            self._save(device_id, plate, cal, {"by": by})
        self._hooks.rescale(device_id, plate, old, cal or IDENTITY)
        return self.status(device_id, plate)

    # ------------------------------------------------------------------ internals

    def _try_measure(self, session: _Session) -> None:
        level = settled_level(list(session.window))
        if level is None:
            return  # still moving: keep waiting (the API call times out)
        waiter = session.waiter
        assert waiter is not None
        if abs(level.mean) >= self._full_scale:
            self._stop_measuring(session)
            waiter.set_exception(ValueError("the plate reads full scale: overloaded or saturated"))
            return
        if session.step == "measuring_level":
            cal = self.factors.get(session.device_id, {}).get(session.plate, IDENTITY)
            session.waiter = None  # answered here, not cancelled by _end
            waiter.set_result(self._end(session, "calibration_finished", cal.grams(level.mean)))
            return
        if session.step == "measuring_tare":
            session.tare = level
            session.step = "place_weight"
            self._store.record_event(
                "calibration_tare",
                self._clock_ms(),
                session.device_id,
                None,
                {"plate": session.plate, "tare_raw": level.mean, "sd_raw": level.sd},
            )
        else:
            tare = session.tare
            assert tare is not None
            assert session.known_g is not None
            noise = _MIN_LOAD_SE * max(tare.se, level.se) + 1e-9 * max(1.0, abs(tare.mean))
            if abs(level.mean - tare.mean) <= noise:
                session.window.clear()
                return  # the weight is not on the plate yet: wait for it
            cal = Calibration(tare.mean, span_from(session.known_g, level.mean, tare.mean))
            session.result = cal
            session.step = "restock"
            self._save(
                session.device_id,
                session.plate,
                cal,
                {"by": "guided", "known_g": session.known_g, "loaded_raw": level.mean},
            )
        self._stop_measuring(session)
        waiter.set_result(self.status(session.device_id, session.plate))

    def _save(self, device_id: str, plate: int, cal: Calibration, body: dict[str, Any]) -> None:
        self._store.save_calibration(
            device_id, plate, cal.tare_raw, cal.span, self._clock_ms(), body
        )
        self.factors.setdefault(device_id, {})[plate] = cal

    def _stop_measuring(self, session: _Session) -> None:
        """No longer measuring: a step still 'measuring' falls back to where it began."""
        measuring = self.capturing.get(session.device_id, [])
        if session in measuring:
            measuring.remove(session)
        if not measuring:
            self.capturing.pop(session.device_id, None)
        session.waiter = None
        for step, back in _MEASURING.values():
            if session.step == step:
                session.step = back

    def _end(self, session: _Session, event: str, baseline_g: float | None) -> dict[str, Any]:
        waiter = session.waiter
        self._stop_measuring(session)
        if waiter is not None and not waiter.done():
            waiter.cancel()
        del self._sessions[(session.device_id, session.plate)]
        self._hooks.unmute(session.device_id, session.plate, baseline_g)
        self._store.record_event(
            event, self._clock_ms(), session.device_id, None, {"plate": session.plate}
        )
        return self.status(session.device_id, session.plate)

    def _session(self, device_id: str, plate: int) -> _Session:
        self._check_plate(device_id, plate)
        session = self._sessions.get((device_id, plate))
        if session is None:
            raise ValueError(f"plate {plate} of {device_id} is not under calibration")
        return session

    @staticmethod
    def _expect(session: _Session, *steps: str) -> None:
        if session.step not in steps:
            raise ValueError(
                f"plate {session.plate} of {session.device_id} is at step {session.step!r}, "
                f"not {' or '.join(repr(s) for s in steps)}"
            )

    def _check_plate(self, device_id: str, plate: int) -> None:
        count = self._plate_count(device_id)
        if count is None:
            raise LookupError(f"{device_id!r} is not a shelf")
        if not 0 <= plate < count:
            raise LookupError(f"shelf {device_id} has no plate {plate}")
