"""Shopper floor positions by session, from camera trackers, kept for a short while."""

from __future__ import annotations

import math
from bisect import bisect_left, bisect_right
from collections import deque

#: How much position history is kept per shopper.
HISTORY_MS = 120_000


class PositionBook:
    def __init__(self) -> None:
        self._tracks: dict[str, deque[tuple[int, float, float]]] = {}
        self._hands: dict[str, deque[tuple[int, float, float, float]]] = {}
        self.untagged = 0  # positions whose track is not bound to a session

    def add(self, token: str | None, ts_ms: int, x: float, y: float) -> None:
        if token is None:
            self.untagged += 1
            return
        track = self._tracks.setdefault(token, deque())
        if track and ts_ms < track[-1][0]:
            return  # late position: the history is kept in time order
        track.append((ts_ms, x, y))
        while track and track[0][0] < ts_ms - HISTORY_MS:
            track.popleft()

    def add_hand(self, token: str, ts_ms: int, x: float, y: float, z: float) -> None:
        hands = self._hands.setdefault(token, deque())
        if hands and ts_ms < hands[-1][0]:
            return
        hands.append((ts_ms, x, y, z))
        while hands and hands[0][0] < ts_ms - HISTORY_MS:
            hands.popleft()

    def hand_distance(
        self, token: str, start_ms: int, end_ms: int, spot: tuple[float, float, float]
    ) -> tuple[float, float] | None:
        """How far the shopper's hand was from ``spot`` (3-D) between start and end:
        (typical distance while nearest, the nearest single frame's distance).

        The typical distance is that of the mean position of the third of the frames
        nearest the spot: a hand that touched the plates for only part of the window
        is still seen there, and the tracker's noise averages out over those frames.
        """
        hands = self._hands.get(token)
        if not hands:
            return None
        inside = [(x, y, z) for t, x, y, z in hands if start_ms <= t <= end_ms]
        if not inside:
            return None
        inside.sort(key=lambda p: math.dist(p, spot))
        mean = _mean(inside[: max(1, len(inside) // 3)])
        return math.dist(mean, spot), math.dist(inside[0], spot)

    def hand_contact(
        self,
        token: str,
        start_ms: int,
        end_ms: int,
        spot: tuple[float, float, float],
        reach_m: float,
    ) -> tuple[tuple[float, float, float], int] | None:
        """Where the shopper's hand was while it was at ``spot`` between start and end,
        and for how many frames: the mean of its frames within ``reach_m`` of it; None
        when none came that near.

        Unlike :meth:`hand_distance`, which says *how near* a hand came, this says
        *where along the shelf* it worked: the mean of the frames near the shelf
        averages the tracker's noise out, so that hands a plate apart stay apart.
        """
        hands = self._hands.get(token)
        if not hands:
            return None
        near = [
            (x, y, z)
            for t, x, y, z in hands
            if start_ms <= t <= end_ms and math.dist((x, y, z), spot) <= reach_m
        ]
        if not near:
            return None
        return _mean(near), len(near)

    @property
    def tracking_hands(self) -> bool:
        return bool(self._hands)

    def forget(self, token: str) -> None:
        self._tracks.pop(token, None)
        self._hands.pop(token, None)

    @property
    def tracking(self) -> bool:
        return bool(self._tracks)

    def last(self, token: str) -> tuple[int, float, float] | None:
        track = self._tracks.get(token)
        return track[-1] if track else None

    def recent(self, token: str, since_ms: int, most: int = 30) -> list[tuple[float, float]]:
        """Up to ``most`` positions since ``since_ms``, evenly spread."""
        track = self._tracks.get(token)
        if not track:
            return []
        points = [(x, y) for t, x, y in track if t >= since_ms]
        step = max(1, len(points) // most)
        return points[::step]

    def mean_position(self, token: str, start_ms: int, end_ms: int) -> tuple[float, float] | None:
        """Mean position within [start, end]; the nearest sample when none falls inside."""
        track = self._tracks.get(token)
        if not track:
            return None
        times = [t for t, _, _ in track]
        lo, hi = bisect_left(times, start_ms), bisect_right(times, end_ms)
        if hi > lo:
            xs = [track[i][1] for i in range(lo, hi)]
            ys = [track[i][2] for i in range(lo, hi)]
            return sum(xs) / len(xs), sum(ys) / len(ys)
        nearest = min(track, key=lambda p: min(abs(p[0] - start_ms), abs(p[0] - end_ms)))
        if min(abs(nearest[0] - start_ms), abs(nearest[0] - end_ms)) > 5_000:
            return None  # too old to say where they were
        return nearest[1], nearest[2]


def distance(a: tuple[float, float], b: tuple[float, float]) -> float:
    return math.hypot(a[0] - b[0], a[1] - b[1])


def _mean(points: list[tuple[float, float, float]]) -> tuple[float, float, float]:
    n = len(points)
    return (
        sum(p[0] for p in points) / n,
        sum(p[1] for p in points) / n,
        sum(p[2] for p in points) / n,
    )
