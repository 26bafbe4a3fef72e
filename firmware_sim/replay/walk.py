"""Where each shopper is: gate times and a walking path through the store.

* Visit: ``case.visits`` when given; otherwise entry = max(0, first event - 5 s)
  and exit = last event + 2.5..4 s.  A shopper without events enters with the
  case (first event - 5 s, or 1 s into an empty case), browses one stand point
  and leaves with the case (last event + 2.5..4 s, or after 6..10 s).
* Path: from the entrance to the stand point of each event (the mean of its
  plates' stand points) in time order, arriving by 1 s before the hand touches
  the shelf and staying until 1 s after the event, then back to the entrance,
  reached at the exit.  The walk is :data:`WALK_M_S`, faster (up to
  :data:`RUN_M_S`) where the labels leave too little time; consecutive events at
  (nearly) the same spot are one stop.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from firmware_sim.replay.effects import EventTiming
from firmware_sim.replay.store import XY, ReplayStore

WALK_M_S = 1.0
RUN_M_S = 2.0
ARRIVE_BEFORE_MS = 1000
STAY_AFTER_MS = 1000
ENTRY_BEFORE_MS = 5000
EXIT_AFTER_MS = (2500, 4000)
EMPTY_VISIT_MS = (6000, 10000)
EMPTY_CASE_ENTRY_MS = 1000
SAME_SPOT_M = 0.25


@dataclass(frozen=True)
class Stop:
    xy: XY
    arrive_by_ms: int
    first_ms: int  # the stop's first event (must be there by then at the latest)
    last_ms: int  # its last event (must stay through it)


@dataclass(frozen=True)
class Path:
    """A piecewise-linear floor path: ``points`` are (t_ms, x, y), times non-decreasing."""

    points: tuple[tuple[float, float, float], ...]

    def at(self, t_ms: float) -> XY:
        times = [p[0] for p in self.points]
        i = bisect_right(times, t_ms)
        if i == 0:
            return self.points[0][1], self.points[0][2]
        if i == len(self.points):
            return self.points[-1][1], self.points[-1][2]
        (t0, x0, y0), (t1, x1, y1) = self.points[i - 1], self.points[i]
        f = 0.0 if t1 <= t0 else (t_ms - t0) / (t1 - t0)
        return x0 + (x1 - x0) * f, y0 + (y1 - y0) * f


def _dist(a: XY, b: XY) -> float:
    return float(np.hypot(a[0] - b[0], a[1] - b[1]))


def plates_stand(store: ReplayStore, shelf_id: str, plates: Sequence[int]) -> XY:
    """Where a shopper stands to reach ``plates`` of ``shelf_id``: the mean of theirs."""
    points = [store.stand_xy(shelf_id, p) for p in plates]
    return (
        sum(p[0] for p in points) / len(points),
        sum(p[1] for p in points) / len(points),
    )


def event_stand(store: ReplayStore, timing: EventTiming) -> XY:
    return plates_stand(store, timing.shelf_id, timing.plates)


def stops(store: ReplayStore, timings: Sequence[EventTiming]) -> list[Stop]:
    """One shopper's stops in time order, merging consecutive events at the same spot."""
    result: list[Stop] = []
    for timing in sorted(timings, key=lambda t: (t.end_ms, t.start_ms)):
        xy = event_stand(store, timing)
        arrive_by = timing.start_ms - ARRIVE_BEFORE_MS
        if result and _dist(result[-1].xy, xy) < SAME_SPOT_M:
            prev = result[-1]
            result[-1] = Stop(
                prev.xy,
                min(prev.arrive_by_ms, arrive_by),
                prev.first_ms,
                max(prev.last_ms, timing.end_ms),
            )
        else:
            result.append(Stop(xy, arrive_by, timing.end_ms, timing.end_ms))
    return result


def _walk_ms(dist: float, available_ms: float) -> float:
    """Walking time: at WALK_M_S if there is time, faster (up to RUN_M_S) if not."""
    walk = dist / WALK_M_S * 1000.0
    if walk <= available_ms:
        return walk
    return max(dist / RUN_M_S * 1000.0, available_ms)


def plan_path(entrance: XY, entry_ms: int, exit_ms: int, route: Sequence[Stop]) -> Path:
    points: list[tuple[float, float, float]] = [(float(entry_ms), *entrance)]
    here, stay_until, must_stay = entrance, float(entry_ms), float(entry_ms)
    for stop in route:
        dist = _dist(here, stop.xy)
        ideal_leave = min(stay_until, stop.arrive_by_ms - dist / WALK_M_S * 1000.0)
        leave = max(must_stay, ideal_leave, points[-1][0])
        arrive = leave + _walk_ms(dist, stop.arrive_by_ms - leave)
        points += [(leave, *here), (arrive, *stop.xy)]
        here = stop.xy
        must_stay = max(float(stop.last_ms), arrive)
        stay_until = float(stop.last_ms + STAY_AFTER_MS)
    dist = _dist(here, entrance)
    leave = max(points[-1][0], min(stay_until, exit_ms - dist / WALK_M_S * 1000.0), must_stay)
    leave = min(leave, float(exit_ms))
    arrive = min(leave + _walk_ms(dist, exit_ms - leave), float(exit_ms))
    points += [(leave, *here), (max(arrive, leave), *entrance), (float(exit_ms), *entrance)]
    return Path(tuple(points))


@dataclass(frozen=True)
class Visit:
    shopper: str
    entry_ms: int
    exit_ms: int
    path: Path


def plan_visits(
    shoppers: Sequence[str],
    timings: Sequence[EventTiming],
    given: dict[str, tuple[int, int]],
    store: ReplayStore,
    rng: np.random.Generator,
) -> list[Visit]:
    """A visit (gate times and path) for every shopper, in ``shoppers`` order."""
    names = list(shoppers) + sorted({t.shopper for t in timings} - set(shoppers))
    case_first = min((t.end_ms for t in timings), default=None)
    case_last = max((t.end_ms for t in timings), default=None)
    visits: list[Visit] = []
    for name in names:
        own = [t for t in timings if t.shopper == name]
        exit_gap = int(rng.integers(EXIT_AFTER_MS[0], EXIT_AFTER_MS[1] + 1))
        if own:
            route = stops(store, own)
            entry = max(0, min(t.end_ms for t in own) - ENTRY_BEFORE_MS)
            leave = max(t.end_ms for t in own) + exit_gap
        else:
            spots = list(store.plate_counts.items())
            shelf_id, count = spots[int(rng.integers(len(spots)))]
            xy = store.stand_xy(shelf_id, int(rng.integers(count)))
            if case_first is None or case_last is None:
                entry = EMPTY_CASE_ENTRY_MS
                leave = entry + int(rng.integers(EMPTY_VISIT_MS[0], EMPTY_VISIT_MS[1] + 1))
            else:
                entry = max(0, case_first - ENTRY_BEFORE_MS)
                leave = case_last + exit_gap
            middle = (entry + leave) // 2
            route = [Stop(xy, middle, middle, middle)]
        entry, leave = given.get(name, (entry, leave))
        visits.append(Visit(name, entry, leave, plan_path(store.entrance_xy, entry, leave, route)))
    return visits
