"""Duplicate suppression by (device, seq), with gap and duplicate counters."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum


class SeqVerdict(Enum):
    NEW = "new"  # next in order, or after a gap
    LATE = "late"  # older than the newest but not seen before (out of order)
    DUPLICATE = "duplicate"


@dataclass(slots=True)
class _DeviceSeq:
    high: int = -1
    seen: set[int] = field(default_factory=set)
    gaps: int = 0
    duplicates: int = 0
    last_seen_ms: int = 0


class SeqTracker:
    """Remembers the last ``window`` sequence numbers of every device.

    A number older than the window is treated as a duplicate: it is too late
    to be useful and may well have been delivered before.
    """

    def __init__(self, window: int = 2048) -> None:
        self._window = window
        self._devices: dict[str, _DeviceSeq] = {}

    def check(self, device_id: str, seq: int, ts_ms: int) -> SeqVerdict:
        state = self._devices.setdefault(device_id, _DeviceSeq())
        if seq > state.high:
            if state.high >= 0 and seq > state.high + 1:
                state.gaps += seq - state.high - 1
            state.high = seq
            state.seen.add(seq)
            state.last_seen_ms = ts_ms
            if len(state.seen) > 2 * self._window:
                floor = state.high - self._window
                state.seen = {s for s in state.seen if s > floor}
            return SeqVerdict.NEW
        if seq in state.seen or seq <= state.high - self._window:
            state.duplicates += 1
            return SeqVerdict.DUPLICATE
        state.seen.add(seq)
        state.gaps = max(0, state.gaps - 1)  # a late arrival fills a gap
        return SeqVerdict.LATE

    def restart(self, device_id: str) -> None:
        """A device was reborn (new birth_count): its numbering may start over."""
        old = self._devices.get(device_id)
        fresh = _DeviceSeq()
        if old is not None:
            fresh.gaps, fresh.duplicates = old.gaps, old.duplicates
        self._devices[device_id] = fresh

    def counters(self) -> list[tuple[str, int, int, int, int]]:
        """(device_id, last_seq, last_seen_ms, gaps, duplicates) per device."""
        return [
            (dev, s.high, s.last_seen_ms, s.gaps, s.duplicates) for dev, s in self._devices.items()
        ]

    def duplicates(self, device_id: str) -> int:
        state = self._devices.get(device_id)
        return state.duplicates if state else 0
