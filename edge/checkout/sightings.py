"""What product cameras saw taken or put back, kept briefly to meet the shelf events.

A product camera (``ProductSeen``) reports, per grab it saw, the shelf, the plates
when it can tell, when, and its classifier's probability per product.  The checkout
engine asks for the observation that belongs to a shelf event when it scores that
event: same shelf, seen from :data:`BEFORE_MS` before the plates started to move to
:data:`AFTER_MS` after they settled (a product is seen going back before it lands, and
leaving in the hand after it was lifted), on the same or a neighbouring plate when
the camera named plates, of the same shopper when both know who.  Where several fit,
one on the changed plates beats a neighbour's, the same shopper's beats an unknown
one's, then the nearest in time wins.  Each observation serves one event.  A view that
arrives after its event was decided (a clear weight answer does not wait for one) stays
unused until it ages out; until then it could serve another grab on the same plates
starting within :data:`BEFORE_MS` of it, most likely one of the same product.

Bounded: at most :data:`PER_SHELF` observations per shelf, none older than
:data:`KEEP_MS` (on the camera's clock, the ``ts`` of the newest observation).

The engine holds an unclear event back (``inference.vision_hold_ms``) only while
cameras are reporting (:meth:`Sightings.live`): a store without product cameras
never waits.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field

from edge.checkout.detector import ShelfEvent

#: An observation this long before the plates started to move still belongs to them
#: (a product seen in the hand on its way back to the shelf).
BEFORE_MS = 1_000
#: ... and this long after they settled.
AFTER_MS = 2_500
#: Observations older than this (behind the newest one) are dropped.
KEEP_MS = 30_000
#: At most this many observations are kept per shelf.
PER_SHELF = 16
#: Cameras count as reporting for this long after their last observation.
LIVE_MS = 600_000


@dataclass(frozen=True, slots=True)
class Sighting:
    camera: str
    shelf_id: str
    plates: tuple[int, ...] | None
    ts_ms: int
    scores: Mapping[str, float]
    session_token: str | None = None


@dataclass
class SightingStats:
    received: int = 0
    used: int = 0  # fused into an event
    held: int = 0  # events that waited for a view
    held_then_seen: int = 0  # ... and got one in time
    changed: int = 0  # events whose best product vision changed


@dataclass
class Sightings:
    neighbour_plates: int = 1
    stats: SightingStats = field(default_factory=SightingStats)
    _by_shelf: dict[str, deque[Sighting]] = field(default_factory=dict)
    _live_until_ms: int = -1

    def add(self, sighting: Sighting, now_ms: int) -> None:
        kept = self._by_shelf.setdefault(sighting.shelf_id, deque(maxlen=PER_SHELF))
        horizon = sighting.ts_ms - KEEP_MS
        while kept and kept[0].ts_ms < horizon:
            kept.popleft()
        kept.append(sighting)
        self.stats.received += 1
        self._live_until_ms = now_ms + LIVE_MS

    def live(self, now_ms: int) -> bool:
        """Are product cameras reporting (so that an unclear event may wait for them)?"""
        return now_ms <= self._live_until_ms

    def take(self, event: ShelfEvent, token: str | None) -> Sighting | None:
        """The observation of ``event`` (removed: it serves one event), if any."""
        kept = self._by_shelf.get(event.device_id)
        if not kept:
            return None
        best: tuple[int, int, int] | None = None
        chosen: Sighting | None = None
        for s in kept:
            rank = self._rank(s, event, token)
            if rank is not None and (best is None or rank < best):
                best, chosen = rank, s
        if chosen is not None:
            kept.remove(chosen)
            self.stats.used += 1
        return chosen

    def fits(self, sighting: Sighting, event: ShelfEvent, token: str | None) -> bool:
        """Could ``sighting`` be the observation of ``event``?"""
        return (
            sighting.shelf_id == event.device_id and self._rank(sighting, event, token) is not None
        )

    def _rank(
        self, s: Sighting, event: ShelfEvent, token: str | None
    ) -> tuple[int, int, int] | None:
        """Smaller is a better match; None: not this event's observation."""
        if not event.start_ms - BEFORE_MS <= s.ts_ms <= event.end_ms + AFTER_MS:
            return None
        if s.session_token is not None and token is not None and s.session_token != token:
            return None
        if s.plates:
            gap = min(abs(p - q) for p in s.plates for q in event.plates)
            if gap > self.neighbour_plates:
                return None
            place = 0 if gap == 0 else 1
        else:
            place = 2
        if s.ts_ms < event.start_ms:
            off = event.start_ms - s.ts_ms
        elif s.ts_ms > event.end_ms:
            off = s.ts_ms - event.end_ms
        else:
            off = 0
        same_hand = 0 if s.session_token is not None and s.session_token == token else 1
        return place, same_hand, off
