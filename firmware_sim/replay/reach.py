"""One shopper, one place at a time: label times a shopper could not have kept.

The AiFi labels give event times to the second, typed by hand, and a few are
copies: ``cps-test-12`` puts each of its two shoppers at two gondolas in the
same second ("10:03" four times), one of them 1.7 m apart.  Replayed as
labelled, a shelf changes while the shopper who took the item is still on the
way, and the other shopper stands next to it: a sensor stream no store
produces.

:func:`reachable` keeps every label time a shopper can keep and moves only the
others: walking through a shopper's events in label order, an event whose
stand point is more than :data:`REACH_M` from the previous one's happens no
earlier than running there (:data:`~firmware_sim.replay.walk.RUN_M_S`), the
event's hold and the longest hand contact allow, so the hand cannot touch the
shelf before the shopper is there; and a shopper's events keep their label
order.  Different shoppers' events that are simultaneous stay simultaneous, and
so do one shopper's events at one spot (a grab with both hands).  Each move is
reported in a note.
"""

from __future__ import annotations

from dataclasses import replace

from firmware_sim.replay.store import XY, ReplayStore
from firmware_sim.replay.walk import EXIT_AFTER_MS, RUN_M_S, plates_stand
from firmware_sim.scenario import Case, CaseEvent

#: Events whose stand points are this close can be done from one spot, at once.
REACH_M = 1.0


def _stand(store: ReplayStore, ev: CaseEvent) -> XY | None:
    count = store.plate_counts.get(ev.shelf_id)
    if ev.kind == "handoff" or not count:
        return None
    # out-of-range plates as the effects clamp them (a label error in the data)
    return plates_stand(store, ev.shelf_id, [min(max(p, 0), count - 1) for p in ev.plates or (0,)])


def _own_times(events: tuple[CaseEvent, ...], shopper: str) -> list[int]:
    return [ev.t_ms for ev in events if shopper in (ev.shopper, ev.to_shopper)]


def reachable(case: Case, store: ReplayStore, contact_ms: int) -> tuple[Case, list[str]]:
    """``case`` with each shopper's impossible event times moved later, and a note per move.

    ``contact_ms``: the longest time a hand touches a shelf before its weight settles.
    """
    times = [ev.t_ms for ev in case.events]
    notes: list[str] = []
    for shopper in dict.fromkeys(ev.shopper for ev in case.events):
        last: tuple[XY, int] | None = None
        floor = 0
        own = [i for i, ev in enumerate(case.events) if ev.shopper == shopper]
        for i in sorted(own, key=lambda i: case.events[i].t_ms):
            ev = case.events[i]
            at = max(times[i], floor)
            spot = _stand(store, ev)
            if spot is not None and last is not None:
                (x, y), then = last
                dist = ((spot[0] - x) ** 2 + (spot[1] - y) ** 2) ** 0.5
                if dist > REACH_M:
                    need = dist / RUN_M_S * 1000 + ev.hold_ms + contact_ms
                    at = max(at, then + round(need))
            if at != times[i]:
                notes.append(
                    f"case {case.name}: {shopper}'s {ev.kind} of {ev.barcode} at {ev.shelf_id} "
                    f"moved from {times[i]} ms to {at} ms (they were elsewhere until then)"
                )
                times[i] = at
            floor = at
            if spot is not None:
                last = (spot, at)
    if not notes:
        return case, notes
    events = tuple(replace(ev, t_ms=t) for ev, t in zip(case.events, times, strict=True))
    order = sorted(range(len(events)), key=lambda i: events[i].t_ms)
    visits = {
        name: (entry, max([exit_ms, *(t + EXIT_AFTER_MS[0] for t in _own_times(events, name))]))
        for name, (entry, exit_ms) in case.visits.items()
    }
    return replace(case, events=tuple(events[i] for i in order), visits=visits), notes
