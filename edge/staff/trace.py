"""A short in-memory weight trace per shelf, for the dashboard.

For every weight batch the worker keeps the mean of each plate (in grams, after
calibration), ``trace_s`` seconds of them per shelf; the API thread reads a
copy.  One tuple per batch: 30 shelves x 300 batches x 10 plates is about 3 MB.
"""

from __future__ import annotations

import threading
from collections import deque

#: Batches per second the trace is sized for (12 samples at 60 Hz).
BATCHES_PER_S = 5

Point = tuple[int, tuple[float, ...]]
#: What is kept per batch: its time, samples per plate, and each plate's sum.
_Kept = tuple[int, int, tuple[float, ...]]


class WeightTrace:
    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._maxlen = max(10, round(seconds * BATCHES_PER_S))
        self._traces: dict[str, deque[_Kept]] = {}
        self._lock = threading.Lock()
        #: Weight samples seen (for the ingest metrics).
        self.samples = 0

    def feed(self, device_id: str, grams: list[list[float]], ts_ms: int) -> None:
        n = len(grams[0]) if grams else 0
        sums = tuple(map(sum, grams))  # the means are taken when read: cheaper here
        self.samples += len(grams) * n
        with self._lock:
            trace = self._traces.get(device_id)
            if trace is None:
                trace = self._traces[device_id] = deque(maxlen=self._maxlen)
            trace.append((ts_ms, n, sums))

    def points(self, device_id: str, since_ms: int | None = None) -> list[Point]:
        """A copy of one shelf's trace, oldest first (newer than ``since_ms``)."""
        with self._lock:
            trace = self._traces.get(device_id)
            kept = [] if trace is None else list(trace)
        return [
            (ts, tuple(round(total / n, 1) for total in sums))
            for ts, n, sums in kept
            if n and (since_ms is None or ts > since_ms)
        ]

    def shelves(self) -> list[str]:
        with self._lock:
            return sorted(self._traces)
