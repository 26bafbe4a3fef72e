"""Weight-event detection that trusts only settled changes.

Each plate keeps a window of its latest samples.  The plate is *settled* when
the window's spread is small; a settled level that differs from the last
settled level (the baseline) by at least ``min_delta_g`` is one event.  Small
settled moves are absorbed into the baseline, so slow drift never becomes an
event, and a hand pressing on the plate (a transient) never settles.
"""

from __future__ import annotations

import math
import operator
from collections import deque
from collections.abc import Callable, Iterable
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
    minor: bool = False  # below min_delta: only counted as part of a neighbour's event


#: Smaller settled moves are drift; larger ones below ``min_delta_g`` are kept as minor.
MINOR_DELTA_G = 3.0
#: A disturbed plate resting this long a little off its baseline has a new baseline.
PLATEAU_MS = 2000


class PlateDetector:
    """One plate: a baseline (the last settled level) and the episode of a hand on it.

    While there is no hand (pure drift), small settled moves update the baseline.
    Once a hand disturbed the plate, the baseline stays where it was until the
    plate settles at least ``min_delta_g`` away (an event), or settles back
    within ``MINOR_DELTA_G`` of it, or rests for ``PLATEAU_MS`` at a small
    difference (a small item share or a touch) - so a hand that pauses half
    way is not mistaken for the new level.
    """

    __slots__ = (
        "_cfg",
        "_disturbed",
        "_episode",
        "_minor_open",
        "_plateau_since",
        "_still",
        "_unsettled_since",
        "_window",
        "baseline_g",
        "device_id",
        "muted",
        "plate",
        "touched_ms",
    )

    def __init__(self, device_id: str, plate: int, cfg: DetectorConfig) -> None:
        self.device_id = device_id
        self.plate = plate
        self._cfg = cfg
        self._window: deque[float] = deque(maxlen=cfg.settle_samples)
        self.baseline_g: float | None = None
        self._unsettled_since: int | None = None
        self._disturbed = False  # a hand is on it now (clearly more than noise)
        self._episode = False  # it moved since the baseline was set
        self._plateau_since: int | None = None
        self._still = True  # the latest window passed the settle test
        self.muted = False  # under calibration: its samples are not looked at
        #: When a hand last left this plate with (almost) no change: it was touched.
        self.touched_ms: int | None = None
        #: A small change was reported in this episode and is not the baseline yet.
        self._minor_open = False

    def reset(self, baseline_g: float | None = None) -> None:
        """Start from ``baseline_g``, or (None) take the next settled window as the
        baseline: either way what the plate held so far is not a change."""
        self._window.clear()
        self.baseline_g = baseline_g
        self._unsettled_since = None
        self._disturbed = False
        self._episode = False
        self._plateau_since = None
        self._minor_open = False
        self._still = True

    def rescale(self, convert: Callable[[float], float]) -> None:
        """The plate's readings change units (new calibration): convert what it holds."""
        if self.baseline_g is not None:
            self.baseline_g = convert(self.baseline_g)
        window = [convert(v) for v in self._window]
        self._window.clear()
        self._window.extend(window)

    @property
    def in_motion(self) -> bool:
        """True while a hand is on the plate or its level is away from the baseline.

        A window that is only a little noisier than ``settle_sd_g`` (sensor noise
        has tails) is not motion: it must not hold back receipts or neighbours.
        """
        return self._disturbed

    @property
    def unsettled(self) -> bool:
        """True while the plate's window is not settled, however little it moves."""
        return not self._still

    def feed(self, samples: list[float], first_ts_ms: int, period_ms: float) -> WeightEvent | None:
        self._window.extend(samples)
        end_ms = first_ts_ms + round(period_ms * (len(samples) - 1))
        if len(self._window) < self._window.maxlen:  # type: ignore[operator]
            return None
        sd = _spread(self._window)
        cfg = self._cfg
        self._still = sd <= cfg.settle_sd_g
        if not self._still:
            if self._unsettled_since is None:
                self._unsettled_since = first_ts_ms
            self._episode = True  # something moved: hold the baseline
            self._plateau_since = None
            if sd > 2 * cfg.settle_sd_g or (
                self.baseline_g is not None
                and abs(_level(self._window) - self.baseline_g) >= cfg.min_delta_g
            ):
                self._disturbed = True
            return None
        mean = _level(self._window)
        if self.baseline_g is None:
            self.baseline_g = mean
            return None
        delta = mean - self.baseline_g
        started = self._unsettled_since if self._unsettled_since is not None else first_ts_ms
        settled = end_ms - round(period_ms * (len(self._window) - 1))
        self._disturbed = False
        if abs(delta) >= cfg.min_delta_g:
            self._close_episode(mean)
            return WeightEvent(self.device_id, self.plate, delta, started, end_ms, settled)
        if abs(delta) < MINOR_DELTA_G:
            if self._episode:
                self.touched_ms = end_ms
            self._close_episode(mean)  # drift, or a touch that left everything as it was
            return None
        if not self._episode:
            self._close_episode(mean)  # slow drift: follow it
            return WeightEvent(
                self.device_id, self.plate, delta, started, end_ms, settled, minor=True
            )
        # A hand was here and the level rests a little off: a small share of an item
        # lying mostly on the next plate, or a pause.  Report it as minor once, keep the
        # baseline until the plate has rested long enough to call it the new level.
        if self._plateau_since is None:
            self._plateau_since = settled
            self._minor_open = True
            return WeightEvent(
                self.device_id, self.plate, delta, started, end_ms, settled, minor=True
            )
        if end_ms - self._plateau_since >= PLATEAU_MS:
            self._close_episode(mean)
        return None

    def absorb(self, delta_g: float) -> None:
        """A small settled change of this plate (reported while a hand's episode was
        open) was counted in a neighbour's event: its level is the new baseline, so the
        same change is never reported twice.  A change that already became the
        baseline (drift followed, or a plateau that ended) is left as it is."""
        if self._minor_open and self.baseline_g is not None:
            self._close_episode(self.baseline_g + delta_g)

    def _close_episode(self, level: float) -> None:
        self.baseline_g = level
        self._unsettled_since = None
        self._episode = False
        self._plateau_since = None
        self._minor_open = False


def _spread(values: deque[float]) -> float:
    """The window's standard deviation (sums in C: this runs for every plate and batch)."""
    n = len(values)
    mean = sum(values) / n
    var = sum(map(operator.mul, values, values)) / n - mean * mean
    return math.sqrt(var) if var > 0 else 0.0


def _level(values: deque[float]) -> float:
    """The window's level: the median, not the mean.

    A window that just passed the settle test may still hold a few samples of the
    hand coming or going, and those must not pull the level (and so the reported
    change) towards the old one.
    """
    n = len(values)
    ordered = sorted(values)
    return (ordered[(n - 1) // 2] + ordered[n // 2]) / 2


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

    def part(self, plates: Iterable[int]) -> ShelfEvent:
        """The changes of some of its plates, as an event of their own."""
        keep = [i for i, p in enumerate(self.plates) if p in set(plates)]
        return ShelfEvent(
            self.device_id,
            tuple(self.plates[i] for i in keep),
            tuple(self.deltas_g[i] for i in keep),
            self.start_ms,
            self.end_ms,
            self.settled_ms,
        )

    def moved(self, min_delta_g: float) -> tuple[ShelfEvent, ShelfEvent] | None:
        """(where weight went from, where it came to) when the shelf's total stayed
        within ``min_delta_g`` while plates on both sides changed by at least that
        much: an item moved between plates, or a put-back and a pick at once."""
        gone = [p for p, d in zip(self.plates, self.deltas_g, strict=True) if d <= -min_delta_g]
        came = [p for p, d in zip(self.plates, self.deltas_g, strict=True) if d >= min_delta_g]
        if abs(self.delta_g) >= min_delta_g or not gone or not came:
            return None
        return self.part(gone), self.part(came)


#: Plate changes that settle this close together belong to one item.
GROUP_WINDOW_MS = 700


class ShelfDetector:
    """The plates of one shelf, and the grouping of their changes into shelf events.

    A plate change waits until its neighbouring plates are still, then it is
    merged with the changes of neighbouring plates that settled at about the
    same time (an item lying across plates); changes that cancel out disappear,
    unless plates on both sides changed by ``min_delta_g`` (an item moved between
    neighbouring plates: :meth:`ShelfEvent.moved`).
    """

    def __init__(self, device_id: str, plates: int, cfg: DetectorConfig) -> None:
        self.device_id = device_id
        self.plates = [PlateDetector(device_id, i, cfg) for i in range(plates)]
        self._neighbours = cfg.neighbour_plates
        self._min_delta = cfg.min_delta_g
        self._pending: list[WeightEvent] = []
        self._minor: list[WeightEvent] = []  # recent small settled moves, by plate

    @property
    def in_motion(self) -> bool:
        return bool(self._pending) or any(p.in_motion for p in self.plates)

    def plate_in_motion(self, plate: int) -> bool:
        return self.plates[plate].in_motion or any(e.plate == plate for e in self._pending)

    def feed(self, samples: list[list[float]], ts_ms: int, rate_hz: int) -> list[ShelfEvent]:
        period_ms = 1000.0 / rate_hz
        for detector, plate_samples in zip(self.plates, samples, strict=False):
            if detector.muted:
                continue
            event = detector.feed(plate_samples, ts_ms, period_ms)
            if event is not None:
                (self._minor if event.minor else self._pending).append(event)
        if self._minor:
            horizon = ts_ms - 4 * GROUP_WINDOW_MS
            self._minor = [e for e in self._minor if e.end_ms >= horizon]
        return self._flush() if self._pending else []

    def reset_plate(self, plate: int, *, muted: bool, baseline_g: float | None = None) -> None:
        """Start ``plate`` afresh (see :meth:`PlateDetector.reset`); ``muted``: ignore its
        samples from now on (under calibration: emptying and loading it is no event)."""
        detector = self.plates[plate]
        detector.reset(baseline_g)
        detector.muted = muted
        self._forget(plate)

    def resized(self, plates: int, cfg: DetectorConfig) -> ShelfDetector:
        """This shelf with ``plates`` plates (a new planogram): the plates it keeps keep
        their detectors (levels, hands, changes in progress); new plates take their first
        settled window as their baseline, so they report no change for what they hold."""
        new = ShelfDetector(self.device_id, plates, cfg)
        kept = min(plates, len(self.plates))
        new.plates[:kept] = self.plates[:kept]
        new._pending = [e for e in self._pending if e.plate < plates]
        new._minor = [e for e in self._minor if e.plate < plates]
        return new

    def reconfigured(self, cfg: DetectorConfig) -> ShelfDetector:
        """This shelf under new settings: each plate keeps its settled level and
        calibration state, and changes waiting for their neighbours stay."""
        new = ShelfDetector(self.device_id, len(self.plates), cfg)
        for i, plate in enumerate(self.plates):
            new.reset_plate(i, muted=plate.muted, baseline_g=plate.baseline_g)
        new._pending, new._minor = self._pending, self._minor
        return new

    def rescale_plate(self, plate: int, convert: Callable[[float], float]) -> None:
        """The plate's readings change units: its level carries over, no event."""
        self.plates[plate].rescale(convert)
        self._forget(plate)

    def _forget(self, plate: int) -> None:
        self._pending = [e for e in self._pending if e.plate != plate]
        self._minor = [e for e in self._minor if e.plate != plate]

    def _moving_near(self, plate: int) -> bool:
        lo, hi = (
            max(0, plate - self._neighbours),
            min(len(self.plates), plate + self._neighbours + 1),
        )
        return any(self.plates[i].unsettled for i in range(lo, hi))

    def _linked(self, a: WeightEvent, b: WeightEvent) -> bool:
        """Changes of neighbouring plates that settled together (the same item); a small
        move joins only a change of its own sign.  Two changes one plate further apart
        belong together when a hand was on every plate between them at that time (an
        item across three plates whose middle plate took too little of it to count)."""
        if abs(a.end_ms - b.end_ms) > GROUP_WINDOW_MS:
            return False
        gap = abs(a.plate - b.plate)
        if gap > self._neighbours and not (
            gap == self._neighbours + 1 > 1 and self._touched_between(a, b)
        ):
            return False
        return not (a.minor or b.minor) or math.copysign(1.0, a.delta_g) == math.copysign(
            1.0, b.delta_g
        )

    def _touched_between(self, a: WeightEvent, b: WeightEvent) -> bool:
        lo, hi = sorted((a.plate, b.plate))
        for plate in range(lo + 1, hi):
            touched = self.plates[plate].touched_ms
            if (
                touched is None
                or max(abs(touched - a.end_ms), abs(touched - b.end_ms)) > GROUP_WINDOW_MS
            ):
                return False
        return True

    def _groups(self) -> list[tuple[list[WeightEvent], list[WeightEvent]]]:
        """The waiting changes in groups (changes, small moves that belong to them): plates
        linked directly or through a neighbour's small move (an item across three plates
        whose middle plate took little of it)."""
        nodes = sorted(self._pending, key=lambda e: (e.end_ms, e.plate)) + self._minor
        parent = list(range(len(nodes)))

        def root(i: int) -> int:
            while parent[i] != i:
                parent[i] = parent[parent[i]]
                i = parent[i]
            return i

        for i, a in enumerate(nodes):
            for j in range(i):
                if self._linked(a, nodes[j]):
                    parent[root(i)] = root(j)
        members: dict[int, list[WeightEvent]] = {}
        for i, node in enumerate(nodes):
            members.setdefault(root(i), []).append(node)
        groups = []
        for group in members.values():
            major = [e for e in group if not e.minor]
            if major:
                groups.append((major, [e for e in group if e.minor]))
        groups.sort(key=lambda g: min((e.end_ms, e.plate) for e in g[0]))
        return groups

    def _flush(self) -> list[ShelfEvent]:
        groups = self._groups()
        out: list[ShelfEvent] = []
        for group, small in groups:
            if any(self._moving_near(e.plate) for e in group + small):
                continue
            for e in group:
                self._pending.remove(e)
            for m in small:
                self._minor.remove(m)
                self.plates[m.plate].absorb(m.delta_g)
            merged = group + small
            per_plate: dict[int, float] = {}
            for e in merged:
                per_plate[e.plate] = per_plate.get(e.plate, 0.0) + e.delta_g
            plates = tuple(sorted(per_plate))
            event = ShelfEvent(
                self.device_id,
                plates,
                tuple(per_plate[p] for p in plates),
                min(e.start_ms for e in merged),
                max(e.end_ms for e in merged),
                max(e.settled_ms for e in merged),
            )
            if abs(event.delta_g) < self._min_delta and event.moved(self._min_delta) is None:
                continue  # a touch that came back (a move between plates is an event)
            out.append(event)
        return out
