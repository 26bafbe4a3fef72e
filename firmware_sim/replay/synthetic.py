"""Synthetic shopping cases that are harder than the labelled ones, on a given layout.

:func:`generate_cases` splits ``minutes`` of store time into cases of at most
3 minutes (2-3 for most lengths) and fills them with shoppers whose visits
overlap (at most :data:`MAX_CONCURRENT` at once, and that many at the opening
rush of a case with enough shoppers).  Each shopper makes 1-6 interactions
(fewer only where the store has run out of stock).  Every case asks
for each of the hard situations once (:data:`HARD_KINDS`) and fills the rest
at random, where they are possible on that planogram:

* ``simultaneous``: two shoppers pick from different plates of one shelf
  within the same second;
* ``equal_weight``: a pick from a plate whose neighbour (or, where no
  neighbours match, the closest plate of the shelf) holds a different product
  within :data:`EQUAL_WEIGHT_G` of its unit weight;
* ``multi_unit``: 2-3 units in one grab;
* ``long_hold``: the hand rests on the shelf 3-8 s before the change;
* ``across``: the item lies across its plate and a neighbouring one that does
  not carry that product (``plates`` names both);
* ``putback_home`` / ``putback_wrong``: units go back to the plate they came
  from, or to another plate of the same shelf that does not carry them;
* ``handoff``: units pass from one shopper to another without a weight change.

Rules every case keeps: a pick never takes more units than the plate still
holds at that moment (each case starts from the planogram's ``stock``, and a
put-back to the plate the units came from fills it up again; only the plate's
own ``barcode`` is ever taken, since ``stock`` counts only that), nobody puts back
or hands over more than they carry at that moment, products with a unit
weight of 0 are never used, and two interactions on one plate are at least
:data:`PLATE_GAP_MS` apart, counted from the edges of their holds (so the rule
holds whether ``t_ms`` is read as the start or the end of the hold).

Times: ``t_ms`` is when the change happens (the replay reads it as the moment
the plate settles), the hand rests ``hold_ms`` before it, and every interaction
with its hold lies at least :data:`ENTRY_MARGIN_MS`/:data:`EXIT_MARGIN_MS`
inside the shopper's visit.  A case lasts until its last shopper has left.

Deterministic by ``seed``; no wall clock, no hash-ordered iteration.
"""

from __future__ import annotations

import heapq
import math
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal, get_args

from devices.layout import Planogram, Plate
from firmware_sim.scenario import Case, CaseEvent

HardKind = Literal[
    "simultaneous",
    "equal_weight",
    "multi_unit",
    "long_hold",
    "across",
    "putback_home",
    "putback_wrong",
    "handoff",
]
HARD_KINDS: tuple[HardKind, ...] = get_args(HardKind)

#: Most shoppers in the store at once.
MAX_CONCURRENT = 8
MIN_INTERACTIONS = 1
MAX_INTERACTIONS = 6
#: Two interactions on one plate are at least this far apart (a real hand needs it).
PLATE_GAP_MS = 3000
#: The second of two simultaneous picks follows the first within this.
SAME_SECOND_MS = 900
#: Products this close in unit weight cannot be told apart by the plate.
EQUAL_WEIGHT_G = 5.0
LONG_HOLD_MS = (3000, 8000)
MULTI_UNIT = (2, 3)
#: Case length in minutes; ``minutes`` is split into cases of about this.
CASE_MINUTES = (2.0, 3.0)
#: The opening rush: the first shoppers of a case enter within this.
RUSH_MS = 12_000
WALK_M_PER_S = 1.0
#: A shopper's first interaction is this long after entry; the last this long before exit.
ENTRY_MARGIN_MS = 3000
EXIT_MARGIN_MS = 3000

#: Chances of the hard situations in the random fill (the rest are plain picks).
FILL_P: dict[HardKind, float] = {
    "simultaneous": 0.08,
    "equal_weight": 0.08,
    "multi_unit": 0.10,
    "long_hold": 0.08,
    "across": 0.06,
    "putback_home": 0.10,
    "putback_wrong": 0.04,
    "handoff": 0.05,
}

PlateKey = tuple[str, int]
#: Later than any event: stock "at the end", an upper bound of what any pick may take.
_LAST = 2**62


def generate_cases(planogram: Planogram, *, shoppers: int, minutes: float, seed: int) -> list[Case]:
    """Cases of 2-3 minutes covering ``minutes`` with ``shoppers`` shoppers in all.

    The shoppers are spread evenly over the cases, except that the first case
    gets up to :data:`MAX_CONCURRENT` of them first, so that asking for at least
    ``MAX_CONCURRENT + cases - 1`` shoppers gives a case where that many are in
    the store at once.  A case with more shoppers than fit into its minutes at
    :data:`MAX_CONCURRENT` at a time runs longer.  Shopper names are unique
    over all cases.
    """
    if shoppers < 1:
        raise ValueError("shoppers must be at least 1")
    if minutes <= 0:
        raise ValueError("minutes must be positive")
    store = _Store.of(planogram)
    if not store.spots:
        raise ValueError("the planogram has no plate with stock of a product of known weight")
    n_cases = max(1, min(shoppers, math.ceil(minutes / CASE_MINUTES[1])))
    case_ms = round(minutes * 60_000 / n_cases)
    counts = _spread(shoppers, n_cases)
    rng = random.Random(seed)
    cases: list[Case] = []
    first = 0
    for index, count in enumerate(counts):
        names = [f"shopper-{first + i + 1:04d}" for i in range(count)]
        first += count
        builder = _CaseBuilder(store, random.Random(rng.getrandbits(64)), names, case_ms)
        cases.append(builder.build(f"synthetic-{seed}-{index + 1:02d}"))
    return cases


def _spread(shoppers: int, n_cases: int) -> list[int]:
    """An even split, except that the first case gets up to MAX_CONCURRENT first."""
    counts = [shoppers // n_cases + (1 if i < shoppers % n_cases else 0) for i in range(n_cases)]
    want = min(MAX_CONCURRENT, shoppers - (n_cases - 1))
    donor = n_cases - 1
    while counts[0] < want:
        while counts[donor] <= 1:
            donor -= 1
        counts[donor] -= 1
        counts[0] += 1
    return counts


# --------------------------------------------------------------------------- the store


@dataclass(frozen=True, slots=True)
class _Spot:
    """A plate a product can be taken from: its own barcode, with stock and a weight."""

    shelf_id: str
    plate: int
    barcode: str
    weight_g: float
    stock: int
    xy: tuple[float, float] | None

    @property
    def key(self) -> PlateKey:
        return (self.shelf_id, self.plate)


@dataclass(frozen=True, slots=True)
class _Store:
    plates: dict[PlateKey, Plate]
    shelf_plates: dict[str, tuple[int, ...]]  # shelf -> its plate numbers, sorted
    spots: tuple[_Spot, ...]
    equal_weight: tuple[tuple[_Spot, _Spot], ...]  # both orders of each pair
    across: dict[PlateKey, tuple[int, ...]]  # spot -> neighbours an item may lie across to

    @classmethod
    def of(cls, planogram: Planogram) -> _Store:
        weights = {p.barcode: p.unit_weight_g for p in planogram.products}
        plates: dict[PlateKey, Plate] = {}
        shelf_plates: dict[str, tuple[int, ...]] = {}
        spots: list[_Spot] = []
        for shelf in planogram.shelves:
            numbers = sorted(p.plate for p in shelf.plates)
            shelf_plates[shelf.device_id] = tuple(numbers)
            for plate in sorted(shelf.plates, key=lambda p: p.plate):
                plates[(shelf.device_id, plate.plate)] = plate
                weight = weights.get(plate.barcode, 0.0)
                if weight > 0 and plate.stock > 0:
                    xy = (plate.x, plate.y) if plate.x is not None and plate.y is not None else None
                    spots.append(
                        _Spot(shelf.device_id, plate.plate, plate.barcode, weight, plate.stock, xy)
                    )
        across: dict[PlateKey, tuple[int, ...]] = {}
        for spot in spots:
            on_shelf = shelf_plates[spot.shelf_id]
            across[spot.key] = tuple(
                n
                for n in (spot.plate - 1, spot.plate + 1)
                if n in on_shelf and spot.barcode not in plates[(spot.shelf_id, n)].barcodes
            )
        return cls(plates, shelf_plates, tuple(spots), _equal_weight_pairs(spots), across)


def _equal_weight_pairs(spots: list[_Spot]) -> tuple[tuple[_Spot, _Spot], ...]:
    """Pairs of plates of one shelf whose products differ but weigh within EQUAL_WEIGHT_G.

    Neighbouring pairs where there are any; otherwise those the fewest plates apart.
    """
    pairs: list[tuple[int, _Spot, _Spot]] = []
    for i, a in enumerate(spots):
        for b in spots[i + 1 :]:
            if (
                a.shelf_id == b.shelf_id
                and a.barcode != b.barcode
                and abs(a.weight_g - b.weight_g) <= EQUAL_WEIGHT_G
            ):
                pairs.append((abs(a.plate - b.plate), a, b))
    if not pairs:
        return ()
    nearest = min(d for d, _, _ in pairs)
    chosen = [(a, b) for d, a, b in pairs if d == nearest]
    return tuple(pair for a, b in chosen for pair in ((a, b), (b, a)))


# --------------------------------------------------------------------------- one case


@dataclass(slots=True)
class _Lot:
    """Units a shopper carries, and where they came from."""

    barcode: str
    shelf_id: str
    home: int  # the plate it was taken from (its own product is this barcode)
    plates: tuple[int, ...]  # the plates of the pick (home, and one more if lying across)
    quantity: int
    since_ms: int  # usable only after this (picked or received then)


@dataclass(slots=True)
class _Shopper:
    name: str
    entry_ms: int
    exit_ms: int
    budget: int
    next_ms: int
    lots: list[_Lot] = field(default_factory=list)
    times: list[int] = field(default_factory=list)  # own interactions
    xy: tuple[float, float] | None = None

    def lots_at(self, t_ms: int) -> list[_Lot]:
        return [lot for lot in self.lots if lot.quantity > 0 and lot.since_ms < t_ms]

    def present(self, t_ms: int, *, margin_ms: int = EXIT_MARGIN_MS) -> bool:
        return self.entry_ms + ENTRY_MARGIN_MS <= t_ms <= self.exit_ms - margin_ms

    def free_at(self, t_ms: int, gap_ms: int = 2000) -> bool:
        return all(abs(t_ms - t) >= gap_ms for t in self.times)


class _CaseBuilder:
    def __init__(self, store: _Store, rng: random.Random, names: list[str], case_ms: int) -> None:
        self.store = store
        self.rng = rng
        self.case_ms = case_ms
        # Stock of each spot's own product: the start, and the changes in time (ms, units).
        self.initial: dict[PlateKey, int] = {s.key: s.stock for s in store.spots}
        self.changes: dict[PlateKey, list[tuple[int, int]]] = {}
        self.busy: dict[PlateKey, list[tuple[int, int]]] = {}
        self.events: list[CaseEvent] = []
        self._moved: list[_Shopper] = []  # shoppers whose next_ms changed: to (re)schedule
        self.shoppers = self._visits(names)
        self.by_name = {s.name: s for s in self.shoppers}

    # ----------------------------------------------------------------- visits

    def _visits(self, names: list[str]) -> list[_Shopper]:
        """Entry and exit of every shopper: MAX_CONCURRENT lanes of visits one after another.

        The first shopper of every lane enters in the opening rush (within
        RUSH_MS, and all stay longer than that), so all lanes are in the store at
        once; the later ones of a lane follow each other with gaps that spread
        the lane over the case's length where it is long enough.
        """
        rng = self.rng
        lanes = min(MAX_CONCURRENT, len(names))
        budgets = [rng.randint(MIN_INTERACTIONS, MAX_INTERACTIONS) for _ in names]
        # Time to walk in, make every interaction (with a long hold or two) and leave.
        lengths = [
            14_000 + budget * rng.randint(9_000, 15_000) + rng.randint(0, 10_000)
            for budget in budgets
        ]
        lane_members: list[list[int]] = [[i] for i in range(lanes)]
        for i in range(lanes, len(names)):  # the next shopper joins the least busy lane
            lane = min(range(lanes), key=lambda k: (sum(lengths[m] for m in lane_members[k]), k))
            lane_members[lane].append(i)
        entries = [0] * len(names)
        for members in lane_members:
            t = rng.randint(0, RUSH_MS)
            spare = max(0, self.case_ms - t - sum(lengths[i] for i in members))
            weights = [rng.random() for _ in members]  # the last one: slack at the end
            total = sum(weights) or 1.0
            for j, i in enumerate(members):
                if j > 0:
                    t += lengths[members[j - 1]] + 1_000 + round(spare * weights[j - 1] / total)
                entries[i] = t
        return [
            _Shopper(name, entry, entry + length, budget, entry + ENTRY_MARGIN_MS)
            for name, entry, length, budget in zip(names, entries, lengths, budgets, strict=True)
        ]

    # ----------------------------------------------------------------- the plan

    def build(self, name: str) -> Case:
        wishes: list[HardKind] = list(HARD_KINDS)
        self.rng.shuffle(wishes)
        heap: list[tuple[int, int, str]] = []
        order = 0
        for s in self.shoppers:
            heapq.heappush(heap, (s.next_ms, order, s.name))
            order += 1
        while heap:
            t0, _, who = heapq.heappop(heap)
            shopper = self.by_name[who]
            if t0 != shopper.next_ms:
                continue  # stale: rescheduled by a simultaneous pick
            if shopper.budget <= 0 or t0 > shopper.exit_ms - EXIT_MARGIN_MS:
                continue
            if not self._act(shopper, wishes):
                shopper.next_ms += self.rng.randint(2_000, 4_000)  # browse a little longer
                self._moved.append(shopper)
            for moved in self._moved:  # the actor, and a partner in a simultaneous pick
                heapq.heappush(heap, (moved.next_ms, order, moved.name))
                order += 1
            self._moved.clear()
        events = tuple(sorted(self.events, key=lambda e: e.t_ms))
        visits = {s.name: (s.entry_ms, s.exit_ms) for s in self.shoppers}
        return Case(name, tuple(s.name for s in self.shoppers), events, visits)

    def _act(self, shopper: _Shopper, wishes: list[HardKind]) -> bool:
        for kind in list(wishes):
            if self._attempt(kind, shopper):
                wishes.remove(kind)
                return True
        roll = self.rng.random()
        for kind in HARD_KINDS:
            roll -= FILL_P[kind]
            if roll < 0:
                if self._attempt(kind, shopper):
                    return True
                break
        return self._pick(shopper) or (
            bool(shopper.lots_at(shopper.next_ms)) and self._putback(shopper, wrong=False)
        )

    def _attempt(self, kind: HardKind, shopper: _Shopper) -> bool:
        actions: dict[HardKind, Callable[[], bool]] = {
            "simultaneous": lambda: self._simultaneous(shopper),
            "equal_weight": lambda: self._pick(shopper, equal_weight=True),
            "multi_unit": lambda: self._pick(shopper, multi=True),
            "long_hold": lambda: self._pick(shopper, long_hold=True),
            "across": lambda: self._pick(shopper, across=True),
            "putback_home": lambda: self._putback(shopper, wrong=False),
            "putback_wrong": lambda: self._putback(shopper, wrong=True),
            "handoff": lambda: self._handoff(shopper),
        }
        return actions[kind]()

    # ----------------------------------------------------------------- plates and time

    def _earliest(self, keys: list[PlateKey], t_ms: int, hold_ms: int) -> int:
        """The first time from ``t_ms`` when a hand may rest ``hold_ms`` on all ``keys``."""
        moved = True
        while moved:
            moved = False
            for key in keys:
                for a, b in self.busy.get(key, ()):
                    if t_ms + hold_ms + PLATE_GAP_MS > a and b + PLATE_GAP_MS > t_ms - hold_ms:
                        t_ms = b + PLATE_GAP_MS + hold_ms
                        moved = True
        return t_ms

    def _walk_ms(self, shopper: _Shopper, xy: tuple[float, float] | None) -> int:
        if shopper.xy is None or xy is None:
            return 0
        return round(math.dist(shopper.xy, xy) / WALK_M_PER_S * 1000)

    def _fits(self, shopper: _Shopper, t_ms: int, hold_ms: int) -> bool:
        return t_ms + hold_ms <= shopper.exit_ms - EXIT_MARGIN_MS and shopper.free_at(t_ms)

    def _record(self, shopper: _Shopper, event: CaseEvent, xy: tuple[float, float] | None) -> None:
        self.events.append(event)
        for plate in event.plates:
            interval = (event.t_ms - event.hold_ms, event.t_ms + event.hold_ms)
            self.busy.setdefault((event.shelf_id, plate), []).append(interval)
        shopper.budget -= 1
        shopper.times.append(event.t_ms)
        shopper.next_ms = event.t_ms + event.hold_ms + self.rng.randint(2_500, 6_000)
        self._moved.append(shopper)
        if xy is not None:
            shopper.xy = xy

    # ----------------------------------------------------------------- stock

    def _available(self, key: PlateKey, t_ms: int) -> int:
        """Units a pick at ``t_ms`` may take so that the plate never runs below zero.

        Picks and put-backs are placed out of time order (each shopper in turn), so
        a pick must leave enough for every later pick already planned; a put-back
        helps only picks after it.
        """
        level = self.initial[key]
        lowest: int | None = None
        for at, units in sorted(self.changes.get(key, ())):  # at a tie, takes come first
            if at >= t_ms and lowest is None:
                lowest = level
            level += units
            if lowest is not None:
                lowest = min(lowest, level)
        return level if lowest is None else lowest

    def _stock_change(self, key: PlateKey, t_ms: int, units: int) -> None:
        self.changes.setdefault(key, []).append((t_ms, units))

    # ----------------------------------------------------------------- picks

    def _candidates(self, *, equal_weight: bool, quantity: int) -> list[_Spot]:
        pool = [a for a, _ in self.store.equal_weight] if equal_weight else self.store.spots
        spots = [s for s in pool if self._available(s.key, _LAST) >= quantity]
        self.rng.shuffle(spots)
        return spots[:12]

    def _pick(
        self,
        shopper: _Shopper,
        *,
        equal_weight: bool = False,
        multi: bool = False,
        long_hold: bool = False,
        across: bool = False,
    ) -> bool:
        rng = self.rng
        quantity = rng.randint(*MULTI_UNIT) if multi else 1
        hold = rng.randint(*LONG_HOLD_MS) if long_hold else 0
        need = MULTI_UNIT[0] if multi else 1
        for spot in self._candidates(equal_weight=equal_weight, quantity=need):
            plates: tuple[int, ...] = (spot.plate,)
            if across:
                options = self.store.across[spot.key]
                if not options:
                    continue
                plates = tuple(sorted((spot.plate, rng.choice(options))))
            keys = [(spot.shelf_id, p) for p in plates]
            start = shopper.next_ms + self._walk_ms(shopper, spot.xy) + hold
            t = self._earliest(keys, start, hold)
            if t - start > 15_000 or not self._fits(shopper, t, hold):
                continue
            quantity = min(quantity, self._available(spot.key, t))
            if quantity < need:
                continue
            self._take(shopper, spot, plates, quantity, t, hold)
            return True
        return False

    def _take(
        self,
        shopper: _Shopper,
        spot: _Spot,
        plates: tuple[int, ...],
        quantity: int,
        t_ms: int,
        hold_ms: int,
    ) -> None:
        self._stock_change(spot.key, t_ms, -quantity)
        shopper.lots.append(_Lot(spot.barcode, spot.shelf_id, spot.plate, plates, quantity, t_ms))
        event = CaseEvent(
            t_ms=t_ms,
            shopper=shopper.name,
            kind="pick",
            barcode=spot.barcode,
            quantity=quantity,
            shelf_id=spot.shelf_id,
            plates=plates,
            hold_ms=hold_ms,
        )
        self._record(shopper, event, spot.xy)

    def _simultaneous(self, first: _Shopper) -> bool:
        """``first`` and another shopper pick from two plates of one shelf in one second."""
        rng = self.rng
        by_shelf: dict[str, list[_Spot]] = {}
        for spot in self.store.spots:
            if self._available(spot.key, _LAST) > 0:
                by_shelf.setdefault(spot.shelf_id, []).append(spot)
        shelves = [shelf for shelf, spots in by_shelf.items() if len(spots) >= 2]
        others = [s for s in self.shoppers if s is not first and s.budget > 0]
        rng.shuffle(shelves)
        rng.shuffle(others)
        for shelf in shelves[:6]:
            a, b = rng.sample(by_shelf[shelf], 2)
            for second in others:
                start = max(
                    first.next_ms + self._walk_ms(first, a.xy),
                    second.next_ms + self._walk_ms(second, b.xy),
                )
                t = self._earliest([a.key], start, 0)
                lag = rng.randint(0, SAME_SECOND_MS)
                if (
                    t - start > 15_000
                    or self._earliest([b.key], t + lag, 0) != t + lag
                    or self._available(a.key, t) < 1
                    or self._available(b.key, t + lag) < 1
                    or not (self._fits(first, t, 0) and first.present(t))
                    or not (self._fits(second, t + lag, 0) and second.present(t + lag))
                ):
                    continue
                self._take(first, a, (a.plate,), 1, t, 0)
                self._take(second, b, (b.plate,), 1, t + lag, 0)
                return True
        return False

    # ----------------------------------------------------------------- put-backs, hand-offs

    def _putback(self, shopper: _Shopper, *, wrong: bool) -> bool:
        rng = self.rng
        lots = shopper.lots_at(shopper.next_ms)
        rng.shuffle(lots)
        for lot in lots:
            if wrong:
                options = [
                    n
                    for n in self.store.shelf_plates[lot.shelf_id]
                    if n not in lot.plates
                    and lot.barcode not in self.store.plates[(lot.shelf_id, n)].barcodes
                ]
                if not options:
                    continue
                near = [n for n in options if min(abs(n - p) for p in lot.plates) <= 2]
                plates: tuple[int, ...] = (
                    rng.choice(near if near and rng.random() < 0.7 else options),
                )
            else:
                plates = lot.plates
            home = self.store.plates[(lot.shelf_id, lot.home)]
            xy = (home.x, home.y) if home.x is not None and home.y is not None else None
            start = shopper.next_ms + self._walk_ms(shopper, xy)
            t = self._earliest([(lot.shelf_id, p) for p in plates], start, 0)
            if t - start > 15_000 or not self._fits(shopper, t, 0):
                continue
            quantity = 1 if rng.random() < 0.7 else rng.randint(1, lot.quantity)
            lot.quantity -= quantity
            if not wrong:
                self._stock_change((lot.shelf_id, lot.home), t, quantity)
            event = CaseEvent(
                t_ms=t,
                shopper=shopper.name,
                kind="putback",
                barcode=lot.barcode,
                quantity=quantity,
                shelf_id=lot.shelf_id,
                plates=plates,
            )
            self._record(shopper, event, xy)
            return True
        return False

    def _handoff(self, giver: _Shopper) -> bool:
        rng = self.rng
        t = giver.next_ms
        lots = giver.lots_at(t)
        if not lots or not self._fits(giver, t, 0):
            return False
        takers = [
            s
            for s in self.shoppers
            if s is not giver and s.present(t, margin_ms=EXIT_MARGIN_MS + 1000) and s.free_at(t)
        ]
        if not takers:
            return False
        lot = rng.choice(lots)
        taker = rng.choice(takers)
        quantity = rng.randint(1, lot.quantity)
        lot.quantity -= quantity
        taker.lots.append(_Lot(lot.barcode, lot.shelf_id, lot.home, lot.plates, quantity, t))
        taker.times.append(t)
        event = CaseEvent(
            t_ms=t,
            shopper=giver.name,
            kind="handoff",
            barcode=lot.barcode,
            quantity=quantity,
            to_shopper=taker.name,
        )
        self._record(giver, event, None)
        return True
