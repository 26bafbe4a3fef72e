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

A view that no shelf event fits at all (the shelf weighed nothing there and then) is
an *orphan*.  The engine asks for orphans once :data:`ORPHAN_WAIT_MS` have passed
since they were seen (:meth:`Sightings.due_orphans`): a product too light for the shelf
to weigh is decided by its view alone; any other was touched, not taken.

The engine holds an unclear event back (``inference.vision_hold_ms``) only while
cameras are reporting (:meth:`Sightings.live`): a store without product cameras
never waits.  An event whose product is clear but whose shopper is not waits only
while cameras name shoppers (:meth:`Sightings.naming`); a view that names one in
the store settles it.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Mapping
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
#: A view no shelf event has fitted this long after it was seen is an orphan: the
#: weight event it could belong to would have started by now (BEFORE_MS) and settled.
ORPHAN_WAIT_MS = 4_000
#: At most this many orphans wait (the oldest go first).
MAX_ORPHANS = 64


@dataclass(frozen=True, slots=True)
class Sighting:
    camera: str
    shelf_id: str
    plates: tuple[int, ...] | None
    ts_ms: int
    scores: Mapping[str, float]
    session_token: str | None = None
    action: str | None = None  # "take" / "put_back" when the camera saw which way

    @property
    def top(self) -> tuple[str, float]:
        """The product the camera scores best, and its score."""
        return max(self.scores.items(), key=lambda kv: kv[1])


@dataclass
class SightingStats:
    received: int = 0
    used: int = 0  # fused into an event
    held: int = 0  # events that waited for a view
    held_then_seen: int = 0  # ... and got one in time
    changed: int = 0  # events whose best product vision changed
    orphans: int = 0  # views no weight event fitted


@dataclass
class Sightings:
    neighbour_plates: int = 1
    stats: SightingStats = field(default_factory=SightingStats)
    _by_shelf: dict[str, deque[Sighting]] = field(default_factory=dict)
    _live_until_ms: int = -1
    #: Until when cameras count as naming shoppers (a view with a session token).
    _naming_until_ms: int = -1
    #: Recent shelf events per shelf, for telling a view whether it had a weight change.
    _events: dict[str, deque[ShelfEvent]] = field(default_factory=dict)
    #: Views no shelf event has fitted yet, oldest first.
    _orphans: deque[Sighting] = field(default_factory=lambda: deque(maxlen=MAX_ORPHANS))

    def add(self, sighting: Sighting, now_ms: int) -> None:
        kept = self._by_shelf.setdefault(sighting.shelf_id, deque(maxlen=PER_SHELF))
        horizon = sighting.ts_ms - KEEP_MS
        while kept and kept[0].ts_ms < horizon:
            kept.popleft()
        kept.append(sighting)
        self.stats.received += 1
        self._live_until_ms = now_ms + LIVE_MS
        if sighting.session_token is not None:
            self._naming_until_ms = now_ms + LIVE_MS
        events = self._events.get(sighting.shelf_id, ())
        if not any(self._rank(sighting, event, None) is not None for event in events):
            self._orphans.append(sighting)

    def note_event(self, event: ShelfEvent) -> None:
        """A shelf event happened: views it fits are no orphans (whether or not one of
        them is fused into it)."""
        self._events.setdefault(event.device_id, deque(maxlen=PER_SHELF)).append(event)
        if self._orphans:
            for orphan in [s for s in self._orphans if self.fits(s, event, None)]:
                self._orphans.remove(orphan)

    @property
    def has_orphans(self) -> bool:
        return bool(self._orphans)

    def due_orphans(self, now_ms: int, still: Callable[[Sighting], bool]) -> list[Sighting]:
        """Orphans seen at least :data:`ORPHAN_WAIT_MS` ago whose plates are ``still``
        (no change there in progress that they may yet fit), removed, oldest first."""
        due = [s for s in self._orphans if s.ts_ms + ORPHAN_WAIT_MS <= now_ms and still(s)]
        for orphan in due:
            self._orphans.remove(orphan)
            self._forget(orphan)
        self.stats.orphans += len(due)
        return due

    def _forget(self, sighting: Sighting) -> None:
        kept = self._by_shelf.get(sighting.shelf_id)
        if kept and sighting in kept:
            kept.remove(sighting)

    def live(self, now_ms: int) -> bool:
        """Are product cameras reporting (so that an unclear event may wait for them)?"""
        return now_ms <= self._live_until_ms

    def naming(self, now_ms: int) -> bool:
        """Do product cameras say whose hand it was (so that an event whose shopper is
        unclear may wait for a view)?  A store whose cameras never do never waits."""
        return now_ms <= self._naming_until_ms

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

    def restore(self, sighting: Sighting) -> None:
        """Give back a view :meth:`take` returned (its event waits for more)."""
        self._by_shelf.setdefault(sighting.shelf_id, deque(maxlen=PER_SHELF)).append(sighting)
        self.stats.used -= 1

    def has_other(self, event: ShelfEvent, token: str | None, than: str) -> bool:
        """Is there a view of ``event`` whose best product is not ``than``?"""
        return bool(self._others(event, token, than))

    def take_other(self, event: ShelfEvent, token: str | None, than: str) -> Sighting | None:
        """Another view of ``event`` whose best product is not ``than`` (removed), if any:
        two products taken in one grab."""
        fitting = self._others(event, token, than)
        if not fitting:
            return None
        chosen = min(fitting, key=lambda item: item[0])[1]
        self._forget(chosen)
        self.stats.used += 1
        return chosen

    def _others(
        self, event: ShelfEvent, token: str | None, than: str
    ) -> list[tuple[tuple[int, int, int], Sighting]]:
        kept = self._by_shelf.get(event.device_id, ())
        return [
            (rank, s)
            for s in kept
            if s.top[0] != than and (rank := self._rank(s, event, token)) is not None
        ]

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
