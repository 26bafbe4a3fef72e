"""A hand resting on a plate long enough for its pressed level to look settled: the item
is measured from before the press (edge.checkout.press)."""

from __future__ import annotations

import pytest

from devices import protocol as p
from devices.layout import Planogram
from edge.checkout.detector import ShelfEvent
from edge.checkout.press import PRESS_GAP_MS, Presses, combined
from tests.edge.helpers import shopper_bench

A, B = "100", "200"  # juice 400 g on plate 0, bread 600 g on plate 1


def _planogram() -> Planogram:
    return Planogram.model_validate(
        {
            "products": [
                {"barcode": A, "name": "apple juice", "unit_weight_g": 400, "price_minor": 250},
                {"barcode": B, "name": "bread", "unit_weight_g": 600, "price_minor": 300},
            ],
            "shelves": [
                {
                    "device_id": "shelf-1",
                    "plates": [
                        {"plate": 0, "barcode": A, "stock": 5},
                        {"plate": 1, "barcode": B, "stock": 5},
                    ],
                }
            ],
        }
    )


@pytest.fixture
def bench(tmp_path):
    b = shopper_bench(tmp_path, _planogram())
    yield b
    b.store.close()


def test_a_pressed_level_that_looked_settled_does_not_skew_the_pick(bench):
    bench.change("shelf-1", 0, +60)  # the hand rests on the plate: looks settled, 60 g up
    [small] = bench.store.events("small_change")
    assert small["body"]["delta_g"] == pytest.approx(60, abs=3)
    bench.change("shelf-1", 0, -460)  # ... then lifts a juice with it: -460 from the pressed level
    assert bench.store.reviews() == []
    assert bench.store.cart("tok-1") == {A: 1}
    [press] = bench.store.events("hand_press")
    assert press["body"]["delta_g"] == pytest.approx(-400, abs=3)
    assert press["body"]["pressed_g"] == pytest.approx(60, abs=3)


def test_a_change_that_fits_as_measured_is_kept_as_measured(bench):
    bench.change("shelf-1", 0, +20)  # a nudge ...
    bench.change("shelf-1", 0, -400)  # ... then a juice: -400 fits, -380 would not
    assert bench.store.cart("tok-1") == {A: 1}
    assert bench.store.events("hand_press") == []


def test_a_nudge_long_before_a_pick_is_not_a_press(bench):
    bench.change("shelf-1", 0, +60)
    bench.tick(3)
    bench.change("shelf-1", 0, -460)
    assert bench.store.cart("tok-1") == {}
    [item] = bench.store.reviews()
    assert item["reason"] == "no product on or near these plates has this weight"


def _event(plates: tuple[int, ...], deltas: tuple[float, ...], start: int, settled: int):
    return ShelfEvent("shelf-1", plates, deltas, start, settled - 100, settled)


def test_presses_match_only_the_same_plates_soon_after():
    presses = Presses()
    small = _event((2,), (40.0,), 1_000, 2_000)
    presses.note(small)
    assert presses.before(_event((2, 3), (-400.0, -60.0), 2_000 + PRESS_GAP_MS, 5_000)) == small
    assert presses.before(_event((2,), (-400.0,), 2_001 + PRESS_GAP_MS, 5_000)) is None
    assert presses.before(_event((3,), (-400.0,), 2_500, 5_000)) is None
    whole = combined(_event((2, 3), (-400.0, -60.0), 2_500, 5_000), small)
    assert whole.deltas_g == (-360.0, -60.0)
    assert whole.start_ms == 1_000
    presses.remove(small)
    assert presses.before(_event((2,), (-400.0,), 2_500, 5_000)) is None


def test_a_pressed_level_waiting_for_a_view_is_taken_with_the_pick(tmp_path):
    """While cameras report, an unexplained pressed level waits for a view instead of
    being noted at once; the pick that follows still takes it in."""
    b = shopper_bench(tmp_path, _planogram(), trackers=("cam-1",))
    view = {"shelf_id": "shelf-1", "plates": [1], "scores": {B: 0.9}, "action": "take"}
    assert b.send(p.product_topic("s-1", "cam-1"), view)  # cameras are reporting
    b.change("shelf-1", 1, -600)
    b.change("shelf-1", 0, +320)  # pressed hard: no product, yet not a mere nudge
    assert len(b.gw.engine._held) == 1  # ... so it waits for a view
    b.change("shelf-1", 0, -720)
    b.tick(2)
    assert b.store.reviews() == []
    assert b.store.cart("tok-1") == {A: 1, B: 1}
    [press] = b.store.events("hand_press")
    assert press["body"]["delta_g"] == pytest.approx(-400, abs=3)
    b.store.close()
