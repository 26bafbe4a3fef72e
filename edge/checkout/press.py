"""A hand resting on a plate: a level it held for a moment is not the plate's level.

A hand that rests on a shelf before it takes something can press the plate steadily
enough for the reading to look settled, a few to a few hundred grams off.  The
detector then reports that pressed level as a change of its own (no product is that
light: a ``small_change``), and measures the item from the pressed level when the
hand lifts it.  The engine keeps such unexplained changes for a while
(:class:`Presses`), and so are changes no product explains that wait for a camera's
view; when a change on the same plates starts moving again within
:data:`PRESS_GAP_MS` of one settling (:func:`precedes`), the two together
(:func:`combined`) are what left the plate, and the engine takes them together when
that fits a product better.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from edge.checkout.detector import ShelfEvent

#: A change that starts this soon after an unexplained one settled may be its hand's.
PRESS_GAP_MS = 1_500
#: Unexplained changes older than this (behind the newest event) are forgotten.
KEEP_MS = 20_000
#: At most this many are kept per shelf.
PER_SHELF = 8


@dataclass
class Presses:
    _by_shelf: dict[str, deque[ShelfEvent]] = field(default_factory=dict)

    def note(self, event: ShelfEvent) -> None:
        """``event`` settled and no product explains it (a ``small_change``)."""
        kept = self._by_shelf.setdefault(event.device_id, deque(maxlen=PER_SHELF))
        while kept and kept[0].end_ms < event.end_ms - KEEP_MS:
            kept.popleft()
        kept.append(event)

    def before(self, event: ShelfEvent) -> ShelfEvent | None:
        """The unexplained change on ``event``'s plates that settled just before
        ``event`` began to move, if any (the latest)."""
        for small in reversed(self._by_shelf.get(event.device_id, ())):
            if precedes(small, event):
                return small
        return None

    def remove(self, small: ShelfEvent) -> None:
        kept = self._by_shelf.get(small.device_id)
        if kept and small in kept:
            kept.remove(small)


def precedes(small: ShelfEvent, event: ShelfEvent) -> bool:
    """Could ``small`` be a hand's pressed level just before ``event`` (same shelf, its
    plates among ``event``'s, settled at most :data:`PRESS_GAP_MS` before it moved)?"""
    return (
        small.device_id == event.device_id
        and small is not event
        and set(small.plates) <= set(event.plates)
        and small.settled_ms <= event.end_ms
        and event.start_ms - small.settled_ms <= PRESS_GAP_MS
    )


def combined(event: ShelfEvent, small: ShelfEvent) -> ShelfEvent:
    """``event`` measured from before ``small`` (whose plates are among ``event``'s)."""
    pressed = dict(zip(small.plates, small.deltas_g, strict=True))
    return ShelfEvent(
        event.device_id,
        event.plates,
        tuple(d + pressed.get(p, 0.0) for p, d in zip(event.plates, event.deltas_g, strict=True)),
        min(event.start_ms, small.start_ms),
        event.end_ms,
        event.settled_ms,
    )
