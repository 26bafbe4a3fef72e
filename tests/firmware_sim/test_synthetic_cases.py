"""The synthetic case generator: hard situations, and the rules every case keeps.

The checks recompute everything from the cases and the planogram (carts,
stock, concurrency, the hard situations), independently of the generator.
"""

from __future__ import annotations

import functools
from collections import Counter
from itertools import combinations
from pathlib import Path

import pytest

from devices.layout import Planogram, Plate, Product, Shelf
from firmware_sim.aifi.dataset import find_dataset
from firmware_sim.aifi.layout import load_store
from firmware_sim.replay.synthetic import MAX_CONCURRENT, generate_cases
from firmware_sim.scenario import Case, CaseEvent

HARD_KINDS = {
    "simultaneous",
    "equal_weight",
    "multi_unit",
    "long_hold",
    "across",
    "putback_home",
    "putback_wrong",
    "handoff",
}


def _product(barcode: str, weight: float) -> Product:
    return Product(barcode=barcode, name=f"p{barcode}", unit_weight_g=weight, price_minor=100)


def _built_planogram() -> Planogram:
    """Three shelves of six plates, with the awkward bits of a real store.

    * plates 1 and 2 of shelf-a hold different products 3 g apart (equal weight, side by side);
    * plate 4 of shelf-a holds a product of unknown (0 g) weight, which must never be used;
    * plate 0 of shelf-b holds only 2 units, plate 5 none; plate 3 shares its plate (``also``);
    * shelf-c holds two plates of the same product.
    """
    weights = {
        "a0": 535.0,
        "a1": 350.0,
        "a2": 353.0,
        "a3": 104.0,
        "a4": 0.0,
        "a5": 212.0,
        "b0": 512.0,
        "b1": 1015.0,
        "b2": 190.0,
        "b3": 27.0,
        "b4": 455.0,
        "b5": 58.0,
        "c0": 530.0,
        "c2": 1080.0,
        "c3": 250.0,
        "c4": 75.0,
        "c5": 640.0,
    }
    products = [_product(b, w) for b, w in weights.items()]
    shelf_a = Shelf(
        device_id="shelf-a",
        plates=[
            Plate(plate=i, barcode=f"a{i}", stock=6 + i, x=1.0 + 0.3 * i, y=1.0) for i in range(6)
        ],
    )
    b_plates = []
    for i in range(6):
        stock = {0: 2, 5: 0}.get(i, 8)
        also = ("b4",) if i == 3 else ()
        b_plates.append(
            Plate(plate=i, barcode=f"b{i}", also=also, stock=stock, x=1.0 + 0.3 * i, y=3.0)
        )
    c_plates = [
        Plate(plate=i, barcode="c0" if i == 1 else f"c{i}", stock=7, x=4.0, y=1.0 + 0.3 * i)
        for i in range(6)
    ]
    return Planogram(
        products=products,
        shelves=[
            shelf_a,
            Shelf(device_id="shelf-b", plates=b_plates),
            Shelf(device_id="shelf-c", plates=c_plates),
        ],
    )


BUILT = _built_planogram()


@functools.cache
def _aifi_planogram() -> Planogram | None:
    found = find_dataset()
    shared = Path("/work/shared/datasets/aifi-nanostore")
    if found is None and (shared / "planogram.json").is_file():
        found = shared
    return None if found is None else load_store(found).planogram


@pytest.fixture(scope="module", params=["built", "aifi"])
def planogram(request: pytest.FixtureRequest) -> Planogram:
    if request.param == "built":
        return BUILT
    aifi = _aifi_planogram()
    if aifi is None:
        pytest.skip("the AiFi Nanostore dataset is not here")
    return aifi


@pytest.fixture(scope="module")
def cases(planogram: Planogram) -> list[Case]:
    return generate_cases(planogram, shoppers=48, minutes=8, seed=11)


# --------------------------------------------------------------------------- helpers


def _plate(pg: Planogram, shelf_id: str, plate: int) -> Plate:
    for p in pg.shelf(shelf_id).plates:
        if p.plate == plate:
            return p
    raise KeyError((shelf_id, plate))


def _home(pg: Planogram, ev: CaseEvent) -> int | None:
    """The plate of the event that carries its product, if any does."""
    for plate in ev.plates:
        if ev.barcode in _plate(pg, ev.shelf_id, plate).barcodes:
            return plate
    return None


def _peak(case: Case) -> int:
    edges = sorted(
        [(a, 1) for a, _ in case.visits.values()] + [(b, -1) for _, b in case.visits.values()]
    )  # at equal times an exit (-1) sorts before an entry
    now = peak = 0
    for _, step in edges:
        now += step
        peak = max(peak, now)
    return peak


def _hard_kinds(pg: Planogram, case: Case) -> Counter[str]:
    weights = {p.barcode: p.unit_weight_g for p in pg.products}
    found: Counter[str] = Counter()
    picks = [e for e in case.events if e.kind == "pick"]
    for ev in case.events:
        if ev.kind == "handoff":
            found["handoff"] += 1
            continue
        if ev.kind == "putback":
            found["putback_home" if _home(pg, ev) is not None else "putback_wrong"] += 1
            continue
        if ev.quantity >= 2:
            found["multi_unit"] += 1
        if ev.hold_ms >= 3000:
            found["long_hold"] += 1
        if len(ev.plates) == 2:
            found["across"] += 1
        weight = weights[ev.barcode]
        for other in pg.shelf(ev.shelf_id).plates:
            if (
                other.plate not in ev.plates
                and other.barcode != ev.barcode
                and weights[other.barcode] > 0
                and abs(weights[other.barcode] - weight) <= 5.0
            ):
                found["equal_weight"] += 1
                break
    for a, b in combinations(picks, 2):
        if (
            a.shopper != b.shopper
            and a.shelf_id == b.shelf_id
            and not set(a.plates) & set(b.plates)
            and abs(a.t_ms - b.t_ms) < 1000
        ):
            found["simultaneous"] += 1
    return found


# --------------------------------------------------------------------------- tests


def test_concurrent_shoppers_reach_eight_and_never_more(cases: list[Case]) -> None:
    peaks = [_peak(c) for c in cases]
    assert max(peaks) == MAX_CONCURRENT == 8
    assert all(p <= MAX_CONCURRENT for p in peaks)
    for case in cases:
        assert set(case.visits) == set(case.shoppers)
        assert all(0 <= a < b for a, b in case.visits.values())


def test_few_shoppers_are_all_there_at_once() -> None:
    (case,) = generate_cases(BUILT, shoppers=3, minutes=2, seed=5)
    assert _peak(case) == 3


def test_every_hard_situation_appears(planogram: Planogram, cases: list[Case]) -> None:
    total: Counter[str] = Counter()
    for case in cases:
        total += _hard_kinds(planogram, case)
    assert set(total) == HARD_KINDS, HARD_KINDS - set(total)


def test_every_hard_situation_appears_in_each_case(planogram: Planogram, cases: list[Case]) -> None:
    for case in cases:  # 16 shoppers each: enough for every situation
        assert set(_hard_kinds(planogram, case)) == HARD_KINDS, (
            case.name,
            _hard_kinds(planogram, case),
        )


def test_equal_weight_picks_come_from_the_neighbours_that_weigh_the_same() -> None:
    picks = [
        e
        for case in generate_cases(BUILT, shoppers=24, minutes=3, seed=3)
        for e in case.events
        if e.kind == "pick" and e.barcode in {"a1", "a2"}
    ]
    assert picks
    assert all(e.shelf_id == "shelf-a" and set(e.plates) & {1, 2} for e in picks)


def test_carts_and_receipts_are_never_negative(cases: list[Case]) -> None:
    for case in cases:
        carts: dict[str, Counter[str]] = {s: Counter() for s in case.shoppers}
        for ev in sorted(case.events, key=lambda e: e.t_ms):
            assert ev.quantity >= 1
            if ev.kind == "pick":
                carts[ev.shopper][ev.barcode] += ev.quantity
                continue
            assert carts[ev.shopper][ev.barcode] >= ev.quantity, (case.name, ev)
            carts[ev.shopper][ev.barcode] -= ev.quantity
            if ev.kind == "handoff":
                assert ev.to_shopper in carts
                assert ev.to_shopper != ev.shopper
                carts[ev.to_shopper][ev.barcode] += ev.quantity
        receipts = case.receipts()
        assert set(receipts) == set(case.shoppers)
        for shopper, lines in receipts.items():
            assert all(q > 0 for q in lines.values())
            assert lines == {b: q for b, q in sorted(carts[shopper].items()) if q > 0}


def test_stock_never_goes_negative(planogram: Planogram, cases: list[Case]) -> None:
    for case in cases:  # each case starts from the planogram's stock
        stock: Counter[tuple[str, int, str]] = Counter()
        for shelf in planogram.shelves:
            for plate in shelf.plates:
                stock[(shelf.device_id, plate.plate, plate.barcode)] = plate.stock
        for ev in sorted(case.events, key=lambda e: e.t_ms):
            if ev.kind == "handoff":
                continue
            home = _home(planogram, ev)
            if ev.kind == "pick":
                assert home is not None, ev
                key = (ev.shelf_id, home, ev.barcode)
                stock[key] -= ev.quantity
                assert stock[key] >= 0, (case.name, ev)
            else:
                stock[(ev.shelf_id, ev.plates[0] if home is None else home, ev.barcode)] += (
                    ev.quantity
                )


def test_the_rules_of_a_real_store_hold(planogram: Planogram, cases: list[Case]) -> None:
    weights = {p.barcode: p.unit_weight_g for p in planogram.products}
    names = [s for c in cases for s in c.shoppers]
    assert len(names) == len(set(names)) == 48
    for case in cases:
        acts = Counter(e.shopper for e in case.events)
        assert all(1 <= acts[s] <= 6 for s in case.shoppers), acts
        by_plate: dict[tuple[str, int], list[CaseEvent]] = {}
        for ev in case.events:
            entry, exit_ = case.visits[ev.shopper]
            assert entry < ev.t_ms - ev.hold_ms, (case.name, ev)
            assert ev.t_ms + ev.hold_ms < exit_, (case.name, ev)
            assert weights[ev.barcode] > 0
            assert ev.hold_ms == 0 or 3000 <= ev.hold_ms <= 8000
            if ev.kind == "handoff":
                assert ev.shelf_id == ""
                assert ev.plates == ()
                t_entry, t_exit = case.visits[ev.to_shopper]
                assert t_entry < ev.t_ms < t_exit
                continue
            numbers = {p.plate for p in planogram.shelf(ev.shelf_id).plates}
            assert set(ev.plates) <= numbers
            assert len(ev.plates) == 1 or (
                len(ev.plates) == 2 and ev.plates[1] - ev.plates[0] == 1
            ), ev
            if ev.kind == "putback" and _home(planogram, ev) is None:
                assert len(ev.plates) == 1  # a wrong plate of the same shelf
            for plate in ev.plates:
                by_plate.setdefault((ev.shelf_id, plate), []).append(ev)
        for evs in by_plate.values():
            for a, b in combinations(evs, 2):
                first, second = sorted((a, b), key=lambda e: e.t_ms)
                gap = (second.t_ms - second.hold_ms) - (first.t_ms + first.hold_ms)
                assert gap >= 3000, (case.name, first, second)


def test_the_same_seed_gives_the_same_cases(planogram: Planogram) -> None:
    one = generate_cases(planogram, shoppers=20, minutes=5, seed=42)
    two = generate_cases(planogram, shoppers=20, minutes=5, seed=42)
    other = generate_cases(planogram, shoppers=20, minutes=5, seed=43)
    assert one == two
    assert one != other


def test_cases_are_two_to_three_minutes() -> None:
    cases = generate_cases(BUILT, shoppers=30, minutes=9, seed=2)
    assert len(cases) == 3
    for case in cases:
        end = max(b for _, b in case.visits.values())
        assert 60_000 < end <= 4 * 60_000  # busy cases may run a little over
