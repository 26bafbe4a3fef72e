"""The store simulator's bookkeeping and timing, without a broker and without waiting.

The devices are built but never started: shelves take changes offline and gates
queue their events.  ``time`` in the store module is replaced by a fake clock.
"""

from __future__ import annotations

import itertools
import random
import statistics
import threading
from collections import Counter
from dataclasses import dataclass, field

import pytest

import firmware_sim.store as store_mod
from devices.layout import Planogram
from firmware_sim.shopper import plan_shopper
from firmware_sim.store import (
    EXIT_SETTLE_S,
    SETTLE_S,
    ShopperTruth,
    StoreSimulator,
)


class FakeTime:
    """monotonic()/sleep() that only move when slept."""

    def __init__(self) -> None:
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        assert seconds >= 0
        self.now += seconds


@dataclass
class Timeline:
    changes: list[tuple[float, str, int, float, float]] = field(default_factory=list)
    gates: list[tuple[float, str, str]] = field(default_factory=list)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeTime:
    fake = FakeTime()
    monkeypatch.setattr(store_mod, "time", fake)
    return fake


def _simulator(planogram: Planogram, seed: int = 7, pace: float = 1.0) -> StoreSimulator:
    return StoreSimulator(
        planogram,
        "test-store",
        "127.0.0.1",
        1,  # never connected
        entry_gate="gate-entry",
        exit_gate="gate-exit",
        seed=seed,
        pace=pace,
    )


def _record(sim: StoreSimulator, clock: FakeTime) -> Timeline:
    timeline = Timeline()
    for shelf_id, shelf in sim.shelves.items():
        original = shelf.change

        def change(
            plate: int,
            delta_g: float,
            contact_s: float = 0.4,
            _id: str = shelf_id,
            _orig=original,  # type: ignore[no-untyped-def]
        ) -> None:
            timeline.changes.append((clock.now, _id, plate, delta_g, contact_s))
            _orig(plate, delta_g, contact_s)

        shelf.change = change  # type: ignore[method-assign]
    for gate in (sim.entry_gate, sim.exit_gate):
        original_pass = gate.pass_through

        def pass_through(token: str, _gate=gate, _orig=original_pass):  # type: ignore[no-untyped-def]
            timeline.gates.append((clock.now, _gate.direction, token))
            return _orig(token)

        gate.pass_through = pass_through  # type: ignore[method-assign]
    return timeline


def _units_by_barcode(sim: StoreSimulator) -> Counter[str]:
    counts: Counter[str] = Counter()
    for (shelf_id, plate), n in sim.stock_levels().items():
        counts[sim.barcode(shelf_id, plate)] += n
    return counts


# --------------------------------------------------------------------------- construction


def test_shelves_start_with_stock_plus_tare(planogram: Planogram) -> None:
    sim = _simulator(planogram)
    assert set(sim.shelves) == {s.device_id for s in planogram.shelves}
    for shelf in planogram.shelves:
        device = sim.shelves[shelf.device_id]
        assert device.plate_count == shelf.plate_count
        for plate in shelf.plates:
            product = planogram.product(plate.barcode)
            assert sim.stock(shelf.device_id, plate.plate) == plate.stock
            tare = device.load_g(plate.plate) - plate.stock * product.unit_weight_g
            # units vary by their weight_sd_g; the tray weighs 200..600 g
            slack = 4 * product.weight_sd_g * plate.stock**0.5
            assert 200 - slack <= tare <= 600 + slack
    assert sim.entry_gate.direction == "entry"
    assert sim.exit_gate.direction == "exit"


def test_same_seed_same_store(planogram: Planogram) -> None:
    a, b = _simulator(planogram, seed=3), _simulator(planogram, seed=3)
    c = _simulator(planogram, seed=4)
    loads = [a.shelves["shelf-1"].load_g(p) for p in range(4)]
    assert loads == [b.shelves["shelf-1"].load_g(p) for p in range(4)]
    assert loads != [c.shelves["shelf-1"].load_g(p) for p in range(4)]


def test_pace_must_be_positive(planogram: Planogram) -> None:
    with pytest.raises(ValueError, match="pace"):
        _simulator(planogram, pace=0)


# --------------------------------------------------------------------------- the plan


def test_plans_never_take_more_than_a_plate_holds() -> None:
    rng = random.Random(0)
    for index in range(500):
        stock = {("s", p): rng.randint(0, 3) for p in range(4)}
        actions = plan_shopper(rng, stock, index)
        taken: Counter[tuple[str, int]] = Counter()
        for kind, shelf_id, plate, qty in actions:
            assert qty in (1, 2)
            taken[(shelf_id, plate)] += qty if kind == "pick" else -qty
            assert 0 <= taken[(shelf_id, plate)] <= stock[(shelf_id, plate)]


def test_plans_have_two_to_four_picks_and_putbacks_in_half_the_shoppers() -> None:
    rng = random.Random(1)
    stock = {("s", p): 50 for p in range(4)}
    with_putback = 0
    for index in range(200):
        actions = plan_shopper(rng, stock, index)
        picks = [a for a in actions if a[0] == "pick"]
        putbacks = [a for a in actions if a[0] == "putback"]
        assert 2 <= len(picks) <= 4
        assert len(putbacks) <= 1
        if index % 2 == 0:
            assert putbacks
        if putbacks:
            with_putback += 1
            position = actions.index(putbacks[0])
            earlier = {(a[1], a[2]) for a in actions[:position] if a[0] == "pick"}
            assert (putbacks[0][1], putbacks[0][2]) in earlier
    assert with_putback >= 100


def test_plans_with_empty_shelves_are_empty() -> None:
    assert plan_shopper(random.Random(0), {("s", 0): 0}, 0) == []


# --------------------------------------------------------------------------- truth


def test_random_shoppers_truth_matches_stock(planogram: Planogram, clock: FakeTime) -> None:
    sim = _simulator(planogram, seed=11)
    initial = _units_by_barcode(sim)
    initial_loads = {(s, p): sim.shelves[s].load_g(p) for s, p in sim.stock_levels()}
    truths = []
    saw_double = False
    for index in range(40):
        before = sim.stock_levels()
        truth = sim.run_shopper(index)
        truths.append(truth)
        assert truth.token == f"shopper-11-{index:04d}"
        assert all(n >= 0 for n in sim.stock_levels().values())
        assert all(q > 0 for q in truth.lines.values())  # zero lines omitted
        assert truth.total_minor == sum(
            planogram.product(b).price_minor * q for b, q in truth.lines.items()
        )
        taken = sum(before.values()) - sum(sim.stock_levels().values())
        assert taken == truth.item_count
        saw_double = saw_double or any(q >= 2 for q in truth.lines.values())
    assert sim.truths() == truths == sim.ground_truth
    # Everything that left the shelves is in some shopper's truth, and nothing else.
    bought: Counter[str] = Counter()
    for truth in truths:
        bought.update(truth.lines)
    assert initial - _units_by_barcode(sim) == bought
    # The shelves' true loads moved by exactly what was taken (with real unit weights).
    for (shelf_id, plate), load in initial_loads.items():
        product = planogram.product(sim.barcode(shelf_id, plate))
        units_gone = planogram.shelf(shelf_id).plates[plate].stock - sim.stock(shelf_id, plate)
        grams_gone = load - sim.shelves[shelf_id].load_g(plate)
        slack = 5 * product.weight_sd_g * max(1, units_gone) ** 0.5
        assert grams_gone == pytest.approx(units_gone * product.unit_weight_g, abs=slack)
    assert saw_double


def test_putbacks_reduce_truth(planogram: Planogram, clock: FakeTime) -> None:
    sim = _simulator(planogram)
    cola = planogram.shelf("shelf-1").plates[1].barcode
    water = planogram.shelf("shelf-1").plates[0].barcode
    load = sim.shelves["shelf-1"].load_g(1)
    truth = sim.run_script(
        "scripted-1",
        [
            ("pick", "shelf-1", 1, 2),
            ("pick", "shelf-1", 0, 1),
            ("putback", "shelf-1", 1, 1),
            ("putback", "shelf-1", 0, 1),
        ],
    )
    assert truth == ShopperTruth("scripted-1", {cola: 1}, planogram.product(cola).price_minor)
    assert water not in truth.lines
    assert sim.stock("shelf-1", 1) == 17
    assert sim.stock("shelf-1", 0) == 12
    # The unit put back is the one taken: the plate is lighter by exactly one unit.
    assert load - sim.shelves["shelf-1"].load_g(1) == pytest.approx(350, abs=4 * 3)


def test_putting_everything_back_is_an_empty_truth(planogram: Planogram, clock: FakeTime) -> None:
    sim = _simulator(planogram)
    load = sim.shelves["shelf-2"].load_g(3)
    truth = sim.run_script("undecided", [("pick", "shelf-2", 3, 2), ("putback", "shelf-2", 3, 2)])
    assert truth.lines == {}
    assert truth.total_minor == 0
    assert sim.shelves["shelf-2"].load_g(3) == pytest.approx(load)


@pytest.mark.parametrize(
    ("actions", "match"),
    [
        ([("pick", "shelf-3", 3, 9)], "8 left"),
        ([("putback", "shelf-1", 0, 1)], "took 0"),
        ([("pick", "shelf-1", 0, 1), ("putback", "shelf-1", 0, 2)], "took 1"),
        ([("pick", "shelf-9", 0, 1)], "no product"),
        ([("pick", "shelf-1", 7, 1)], "no product"),
        ([("steal", "shelf-1", 0, 1)], "unknown action"),
        ([("pick", "shelf-1", 0, 0)], ">= 1"),
    ],
)
def test_bad_scripts_are_refused_before_entering(
    planogram: Planogram, clock: FakeTime, actions: list[tuple[str, str, int, int]], match: str
) -> None:
    sim = _simulator(planogram)
    timeline = _record(sim, clock)
    with pytest.raises(ValueError, match=match):
        sim.run_script("bad", actions)
    assert timeline.gates == []
    assert sim.ground_truth == []
    assert sim.stock_levels() == _simulator(planogram).stock_levels()


def test_stock_runs_out_without_going_negative(planogram: Planogram, clock: FakeTime) -> None:
    sim = _simulator(planogram)
    sim.run_script("hoarder", [("pick", "shelf-3", 3, 8)])
    assert sim.stock("shelf-3", 3) == 0
    with pytest.raises(ValueError, match="0 left"):
        sim.run_script("late", [("pick", "shelf-3", 3, 1)])


# --------------------------------------------------------------------------- timing


def _check_timeline(timeline: Timeline) -> list[float]:
    """Assert the settle floors; return each shopper's duration."""
    durations = []
    entries = [g for g in timeline.gates if g[1] == "entry"]
    exits = [g for g in timeline.gates if g[1] == "exit"]
    assert [e[2] for e in entries] == [x[2] for x in exits]
    for (t_in, _, _), (t_out, _, _) in zip(entries, exits, strict=True):
        durations.append(t_out - t_in)
        mine = [c for c in timeline.changes if t_in <= c[0] <= t_out]
        for earlier, later in itertools.pairwise(mine):
            assert later[0] - earlier[0] >= earlier[4] - 1e-9  # one hand
            assert later[0] > t_in
        for i, later in enumerate(mine):
            same_shelf = [c for c in mine[:i] if c[1] == later[1]]
            if same_shelf:
                prev = same_shelf[-1]
                assert later[0] - prev[0] >= prev[4] + SETTLE_S - 1e-9
        if mine:
            last = mine[-1]
            assert t_out - (last[0] + last[4]) >= EXIT_SETTLE_S - 1e-9
    return durations


def test_typical_shopper_takes_five_to_eight_seconds(planogram: Planogram, clock: FakeTime) -> None:
    sim = _simulator(planogram, seed=5)
    timeline = _record(sim, clock)
    for index in range(60):
        sim.run_shopper(index)
    durations = _check_timeline(timeline)
    assert len(durations) == 60
    assert 5.0 <= statistics.fmean(durations) <= 8.0
    assert min(durations) >= 2.5
    assert max(durations) <= 11.0


def test_fast_pace_keeps_the_settle_floors(planogram: Planogram, clock: FakeTime) -> None:
    sim = _simulator(planogram, seed=6, pace=0.01)
    timeline = _record(sim, clock)
    for index in range(40):
        sim.run_shopper(index)
    durations = _check_timeline(timeline)
    assert statistics.fmean(durations) < 5.0


def test_run_stops_after_max_shoppers_and_reports_each(
    planogram: Planogram, clock: FakeTime
) -> None:
    sim = _simulator(planogram, pace=0.01)
    done: list[ShopperTruth] = []
    sim.run(threading.Event(), max_shoppers=3, on_done=done.append)
    assert [t.token for t in done] == [f"shopper-7-{i:04d}" for i in range(3)]
    assert sim.truths() == done
    # A second run continues the numbering.
    sim.run(threading.Event(), max_shoppers=1)
    assert sim.truths()[-1].token == "shopper-7-0003"


def test_run_finishes_the_current_shopper_when_stopped(
    planogram: Planogram, clock: FakeTime
) -> None:
    sim = _simulator(planogram, pace=0.01)
    stop = threading.Event()

    def on_done(truth: ShopperTruth) -> None:
        stop.set()

    sim.run(stop, on_done=on_done)
    assert len(sim.truths()) == 1


@pytest.mark.allow_error_logs
def test_run_survives_a_failing_callback(
    planogram: Planogram, clock: FakeTime, caplog: pytest.LogCaptureFixture
) -> None:
    sim = _simulator(planogram, pace=0.01)

    def boom(truth: ShopperTruth) -> None:
        raise RuntimeError("callback broke")

    sim.run(threading.Event(), max_shoppers=2, on_done=boom)
    assert len(sim.truths()) == 2
    failures = [r for r in caplog.records if "on_done failed" in r.getMessage()]
    assert len(failures) == 2


# --------------------------------------------------------------------------- restocking


def test_restock_adds_units_outside_any_truth(planogram: Planogram, clock: FakeTime) -> None:
    sim = _simulator(planogram)
    sim.run_script("hoarder", [("pick", "shelf-3", 3, 8)])
    load = sim.shelves["shelf-3"].load_g(3)
    started = clock.now
    sim.restock("shelf-3", 3, 5)
    assert clock.now - started >= EXIT_SETTLE_S
    assert sim.stock("shelf-3", 3) == 5
    assert sim.shelves["shelf-3"].load_g(3) - load == pytest.approx(5 * 1080, abs=5 * 8 * 3)
    assert sim.restocks == [("shelf-3", 3, 5)]
    assert [t.token for t in sim.truths()] == ["hoarder"]
    with pytest.raises(ValueError, match="no product"):
        sim.restock("shelf-3", 9, 1)


def test_run_restocks_low_plates_when_asked(planogram: Planogram, clock: FakeTime) -> None:
    sim = StoreSimulator(
        planogram,
        "test-store",
        "127.0.0.1",
        1,
        entry_gate="gate-entry",
        exit_gate="gate-exit",
        seed=2,
        pace=0.01,
        restock_below=100,  # every plate a shopper touched is refilled
    )
    sim.run(threading.Event(), max_shoppers=3)
    assert len(sim.restocks) >= 2  # after shoppers 1 and 2, not after the last one
    # Refilled to the planogram's stock, except what the last shopper took.
    last = sim.truths()[-1]
    short = sum(p.stock for s in planogram.shelves for p in s.plates) - sum(
        sim.stock_levels().values()
    )
    assert short == last.item_count
