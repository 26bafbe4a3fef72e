"""Two different products taken (or put back) in one change, told by weight alone:
one of each when exactly one pair of products placed there fits clearly."""

from __future__ import annotations

import pytest

from devices.layout import Planogram, Product
from edge.checkout.inference import infer_pairs
from tests.edge.helpers import Bench, shopper_bench

A, B, D = "100", "200", "700"  # juice 400 g and dates 250 g share plate 0; bread 600 g plate 1
XYZ = [{"x": 0.0, "y": 0.0, "z": 1.0}, {"x": 0.5, "y": 0.0, "z": 1.0}]


def _planogram() -> Planogram:
    return Planogram.model_validate(
        {
            "products": [
                {"barcode": A, "name": "apple juice", "unit_weight_g": 400, "price_minor": 250},
                {"barcode": B, "name": "bread", "unit_weight_g": 600, "price_minor": 300},
                {"barcode": D, "name": "dates", "unit_weight_g": 250, "price_minor": 400},
            ],
            "shelves": [
                {
                    "device_id": "shelf-1",
                    "plates": [
                        {"plate": 0, "barcode": A, "also": [D], "stock": 5, **XYZ[0]},
                        {"plate": 1, "barcode": B, "stock": 5, **XYZ[1]},
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


def test_juice_and_dates_in_one_grab_are_one_of_each(bench):
    bench.change("shelf-1", 0, -650)
    assert bench.store.reviews() == []
    assert bench.store.cart("tok-1") == {A: 1, D: 1}
    changes = [e for e in bench.store.events("cart_change") if e["device_id"] == "shelf-1"]
    assert changes[0]["body"]["one_of_each"] == [A, D]
    assert changes[0]["body"]["pairs"][0]["barcodes"] == [A, D]


def test_both_put_back_together_leave_the_cart(bench):
    bench.change("shelf-1", 0, -650)
    bench.change("shelf-1", 0, +650)
    assert bench.store.cart("tok-1") == {}
    assert bench.store.reviews() == []


def test_a_weight_no_pair_explains_still_goes_to_review(bench):
    bench.change("shelf-1", 0, -720)
    [item] = bench.store.reviews()
    assert item["reason"] == "no product on or near these plates has this weight"
    assert bench.store.cart("tok-1") == {}


def test_with_another_hand_in_reach_it_may_be_two_grabs_and_goes_to_review(tmp_path):
    b = Bench(tmp_path, _planogram(), trackers=("tracker-1",))
    b.tick(1)
    b.gate("entry", "left-1")
    b.gate("entry", "right-1")
    rest = {"left-1": (0.0, -0.6, 0.0, -0.5, 0.9), "right-1": (0.3, -0.6, 0.3, -0.5, 0.9)}
    b.tick(1, where=rest)
    reach = {"left-1": (0.0, -0.6, 0.01, 0.0, 1.0), "right-1": (0.3, -0.6, 0.2, 0.0, 1.0)}
    b.loads[("shelf-1", 0)] -= 650
    b.tick(0.6, where=reach)
    b.tick(1.2, where=rest)
    assert b.store.cart("left-1") == b.store.cart("right-1") == {}
    [item] = b.store.reviews()
    assert item["body"]["shoppers"][0]["session_token"] == "left-1"
    b.store.close()


def test_pairs_need_products_placed_there_and_a_fitting_sum():
    juice = Product(barcode=A, name="juice", unit_weight_g=400, price_minor=1)
    dates = Product(barcode=D, name="dates", unit_weight_g=250, price_minor=1)
    bread = Product(barcode=B, name="bread", unit_weight_g=600, price_minor=1)
    [best, *_] = infer_pairs(-650, [(juice, 1.0), (dates, 1.0), (bread, 0.02)], 0.2)
    assert best.barcodes == (A, D)
    assert best.confidence == pytest.approx(1.0)
    assert infer_pairs(-1000, [(juice, 1.0), (bread, 0.02)], 0.2) == []  # bread is elsewhere
    assert infer_pairs(-900, [(juice, 1.0), (dates, 1.0)], 0.2) == []
