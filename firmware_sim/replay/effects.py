"""What each labelled event does to the plates: how much weight, where, and when.

A pick of ``q`` units lowers the event's plates by the weight of ``q`` items
(each item: the product's unit weight +/- ``item_spread * weight_sd_g``); a
put-back raises them, by the weight of items that shopper took earlier when
there are any (the same physical item goes back).  Several plates share the
weight in random proportions (an item lying across plates).  The hand touches
the plates from ``start_ms`` to ``end_ms`` (the event's ``t_ms``); from
``end_ms`` on the change has settled.  Plates beyond a shelf's physical plates
are moved to its last plate (a label error in the data) with a note.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from firmware_sim.replay.realism import Realism
from firmware_sim.replay.store import ReplayStore
from firmware_sim.scenario import Case, CaseEvent


@dataclass(frozen=True)
class PlateChange:
    """The settled change of one plate caused by one event (the weight ground truth)."""

    event: int  # index into case.events
    shelf_id: str
    plate: int
    delta_g: float
    start_ms: int  # hand contact begins
    end_ms: int  # settled from here on (the event's t_ms)


@dataclass(frozen=True)
class EventTiming:
    """When and where the hand of one weight event is on the shelf."""

    event: int
    shopper: str
    shelf_id: str
    plates: tuple[int, ...]
    start_ms: int
    end_ms: int


@dataclass(frozen=True)
class Effects:
    changes: list[PlateChange]
    timings: list[EventTiming]
    notes: list[str]


def _plates(case: Case, index: int, ev: CaseEvent, count: int, notes: list[str]) -> tuple[int, ...]:
    plates: list[int] = []
    for labelled in ev.plates or (0,):
        plate = min(max(labelled, 0), count - 1)
        if plate != labelled:
            notes.append(
                f"case {case.name} events[{index}]: {ev.shelf_id} has no plate {labelled} "
                f"({count} plates); used plate {plate}"
            )
        if plate not in plates:
            plates.append(plate)
    return tuple(plates)


def plan_effects(
    case: Case, store: ReplayStore, realism: Realism, rng: np.random.Generator
) -> Effects:
    """Weight changes and hand timings of every pick/put-back of ``case``."""
    changes: list[PlateChange] = []
    timings: list[EventTiming] = []
    notes: list[str] = []
    taken: dict[tuple[str, str], list[float]] = {}
    order = sorted(range(len(case.events)), key=lambda i: case.events[i].t_ms)
    for index in order:
        ev = case.events[index]
        if ev.kind == "handoff":
            continue
        if ev.shelf_id not in store.plate_counts:
            raise ValueError(f"case {case.name} events[{index}]: unknown shelf {ev.shelf_id!r}")
        product = store.planogram.product(ev.barcode)
        plates = _plates(case, index, ev, store.plate_counts[ev.shelf_id], notes)
        sd = realism.item_spread * product.weight_sd_g
        stack = taken.setdefault((ev.shopper, ev.barcode), [])
        items: list[float] = []
        for _ in range(ev.quantity):
            if ev.kind == "putback" and stack:
                items.append(stack.pop())
            else:
                items.append(
                    max(
                        0.0,
                        float(rng.normal(product.unit_weight_g, sd)),
                    )
                )
        if ev.kind == "pick":
            stack.extend(items)
        sign = -1.0 if ev.kind == "pick" else 1.0
        total = sign * sum(items)
        shares = rng.dirichlet(np.ones(len(plates))) if len(plates) > 1 else np.ones(1)
        contact_ms = round(float(rng.uniform(*realism.transient_s)) * 1000)
        start = max(0, ev.t_ms - ev.hold_ms - contact_ms)
        timings.append(EventTiming(index, ev.shopper, ev.shelf_id, plates, start, ev.t_ms))
        for plate, share in zip(plates, shares, strict=True):
            changes.append(
                PlateChange(index, ev.shelf_id, plate, total * float(share), start, ev.t_ms)
            )
    return Effects(changes, timings, notes)
