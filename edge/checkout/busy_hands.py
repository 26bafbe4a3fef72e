"""Hands already explained by another change on the shelf at the same moment.

Two shoppers reaching into one shelf at once, a plate or two apart: each hand is
near both changes, so each change on its own looks like "two hands on the shelf".
A hand the engine already named for a change on *other* plates of that shelf, at
the same moment, did not also make this one.  When all the hands at the plates
but one are explained that way, the one left made this change.

The engine notes whom it named for each shelf event (:meth:`BusyHands.note`) and
asks before sending a two-hands event to review (:meth:`BusyHands.free_hand`).  A
two-hands event first waits until its shelf is still (the engine's ``Held`` with
``shelf_wait``, at most ``SHELF_WAIT_MS``), so the order in which changes of one
moment settle does not matter.  When two such changes each have the same two hands
at them, :func:`pair` gives each hand the change it worked nearest.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from edge.checkout.association import TWO_HANDS, Attribution
from edge.checkout.detector import ShelfEvent

#: Two changes this close in time (their windows, widened by this) were at once.
OVERLAP_SLACK_MS = 300
#: Changes older than this (before the newest one noted) are forgotten.
KEEP_MS = 30_000
#: At most this many changes are remembered.
KEEP_MAX = 256
#: How long a two-hands event waits for another change in progress on its shelf.
SHELF_WAIT_MS = 1500


@dataclass(frozen=True, slots=True)
class Made:
    """A shelf event and the shopper the engine named for it."""

    shelf_id: str
    plates: frozenset[int]
    start_ms: int
    end_ms: int
    token: str


def at_once(
    event: ShelfEvent, plates: frozenset[int] | tuple[int, ...], start_ms: int, end_ms: int
) -> bool:
    """Another change (on ``plates``, from ``start_ms`` to ``end_ms``) on other plates
    of the same shelf at the same moment as ``event``."""
    return (
        not set(plates) & set(event.plates)
        and start_ms <= event.settled_ms + OVERLAP_SLACK_MS
        and end_ms >= event.start_ms - OVERLAP_SLACK_MS
    )


def both(a: ShelfEvent, b: ShelfEvent) -> ShelfEvent:
    """Two changes of one shelf at once, as one (where the hands were: only the plates
    and the times count)."""
    plates = tuple(sorted(set(a.plates) | set(b.plates)))
    return ShelfEvent(
        a.device_id,
        plates,
        tuple(0.0 for _ in plates),
        min(a.start_ms, b.start_ms),
        max(a.end_ms, b.end_ms),
        max(a.settled_ms, b.settled_ms),
    )


class BusyHands:
    def __init__(self) -> None:
        self._made: deque[Made] = deque(maxlen=KEEP_MAX)

    def note(self, event: ShelfEvent, token: str) -> None:
        """``token``'s hand made ``event``."""
        made = Made(
            event.device_id, frozenset(event.plates), event.start_ms, event.settled_ms, token
        )
        if made in self._made:
            return  # decided again after a wait: noted already
        self._made.append(made)
        while self._made and self._made[0].end_ms < made.end_ms - KEEP_MS:
            self._made.popleft()

    def busy(self, event: ShelfEvent, tokens: list[str]) -> set[str]:
        """Those of ``tokens`` named for another change on other plates of this shelf
        at the same moment."""
        return {
            m.token
            for m in self._made
            if m.token in tokens
            and m.shelf_id == event.device_id
            and at_once(event, m.plates, m.start_ms, m.end_ms)
        }

    def free_hand(self, event: ShelfEvent, who: Attribution) -> Attribution | None:
        """The one hand at the plates not busy with another change, for a two-hands
        event; None when that does not leave exactly one."""
        if who.problem != TWO_HANDS:
            return None
        hands = who.touching
        busy = self.busy(event, hands)
        free = [t for t in hands if t not in busy]
        if not busy or len(free) != 1:
            return None
        shoppers = [
            {**s, "busy_elsewhere": True} if s["session_token"] in busy else s for s in who.shoppers
        ]
        return Attribution(free[0], shoppers, None)


def freed(who: Attribution, token: str, busy: set[str]) -> Attribution:
    """``who`` put to ``token``, the ``busy`` hands marked as busy elsewhere."""
    shoppers = [
        {**s, "busy_elsewhere": True} if s["session_token"] in busy else s for s in who.shoppers
    ]
    return Attribution(token, shoppers, None)


def pair(
    event: ShelfEvent,
    hands: list[str],
    waiting: list[ShelfEvent],
    plates_by_hand: Callable[[ShelfEvent, list[str]], dict[str, list[int]]],
) -> tuple[str, ShelfEvent, str] | None:
    """Two changes of one shelf at once with the same two hands at the plates of each,
    the other one ``waiting`` (for this one): each hand to the change it worked nearest,
    when that gives each change one hand.  (This event's hand, the other change, its
    hand), or None."""
    if len(hands) != 2:
        return None
    for other in waiting:
        if other.device_id != event.device_id or not at_once(
            event, other.plates, other.start_ms, other.settled_ms
        ):
            continue
        plates_of = plates_by_hand(both(event, other), hands)
        mine = [t for t, p in plates_of.items() if set(p) == set(event.plates)]
        theirs = [t for t, p in plates_of.items() if set(p) == set(other.plates)]
        if len(mine) == 1 and len(theirs) == 1:
            return mine[0], other, theirs[0]
    return None
