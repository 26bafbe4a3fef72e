"""Views the weight cannot back: a product too light for the shelf to weigh is decided by
its view alone; a heavy product seen without a weight change was only touched; two
views of one two-unit grab naming two products put one of each in the cart."""

from __future__ import annotations

from typing import Any

import pytest

from devices import protocol as p
from devices.layout import Planogram
from edge.checkout.detector import ShelfEvent
from edge.checkout.sightings import ORPHAN_WAIT_MS, Sighting, Sightings
from edge.checkout.view_alone import decide_view_alone
from tests.edge.helpers import Bench, shopper_bench

A, C, G, D = "100", "300", "500", "700"  # juice 400 g, cider 402 g, dates 250 g on plate 0;
# gum 4 g on plate 2
CAMERA = "cam-1"


def _planogram() -> Planogram:
    return Planogram.model_validate(
        {
            "products": [
                {"barcode": A, "name": "apple juice", "unit_weight_g": 400, "price_minor": 250},
                {"barcode": C, "name": "cider", "unit_weight_g": 402, "price_minor": 280},
                {"barcode": G, "name": "gum", "unit_weight_g": 4, "price_minor": 90},
                {"barcode": D, "name": "dates", "unit_weight_g": 250, "price_minor": 400},
            ],
            "shelves": [
                {
                    "device_id": "shelf-1",
                    "plates": [
                        {"plate": 0, "barcode": A, "also": [C, D], "stock": 5},
                        {"plate": 1, "barcode": A, "stock": 5},
                        {"plate": 2, "barcode": G, "stock": 20},
                    ],
                }
            ],
        }
    )


@pytest.fixture
def bench(tmp_path):
    b = shopper_bench(tmp_path, _planogram(), trackers=(CAMERA,))
    yield b
    b.store.close()


def _seen(b: Bench, scores: dict[str, float], **kw: Any) -> bool:
    body: dict[str, Any] = {"shelf_id": "shelf-1", "plates": [2], "scores": scores, **kw}
    return b.send(p.product_topic("s-1", CAMERA), body)


def _wait_out(b: Bench) -> None:
    b.tick(ORPHAN_WAIT_MS / 1000 + 0.6)


def test_gum_seen_taken_goes_into_the_cart_though_the_shelf_weighed_nothing(bench):
    assert _seen(bench, {G: 0.92, A: 0.03}, action="take")
    bench.tick(2)
    assert bench.store.cart("tok-1") == {}  # a weight change may still come
    _wait_out(bench)
    assert bench.store.cart("tok-1") == {G: 1}
    [change] = [e for e in bench.store.events("cart_change") if e["device_id"] == "shelf-1"]
    assert change["body"]["vision_only"] is True
    assert change["body"]["action"] == "take"
    assert bench.gw.engine.sightings.stats.orphans == 1
    bench.gate("exit", "tok-1")
    bench.tick(0.4)
    [receipt] = bench.receipts
    assert {ln.barcode: ln.quantity for ln in receipt.lines} == {G: 1}


def test_gum_put_back_leaves_the_cart(bench):
    assert _seen(bench, {G: 0.9}, action="take")
    _wait_out(bench)
    assert _seen(bench, {G: 0.9}, action="put_back")
    _wait_out(bench)
    assert bench.store.cart("tok-1") == {}
    assert bench.store.reviews() == []


def test_gum_put_back_by_someone_who_took_none_goes_to_review(bench):
    assert _seen(bench, {G: 0.9}, action="put_back")
    _wait_out(bench)
    [item] = bench.store.reviews()
    assert item["reason"] == "put back an item this shopper did not take"
    assert item["body"]["vision_only"] is True


def test_gum_seen_without_which_way_goes_to_review_and_staff_charge_it(bench):
    assert _seen(bench, {G: 0.9})
    _wait_out(bench)
    assert bench.store.cart("tok-1") == {}
    [item] = bench.store.reviews()
    assert "without whether it was taken" in item["reason"]
    out = bench.gw.engine.resolve_review(
        item["review_id"], barcode=G, quantity=1, session_token="tok-1", by="staff-1"
    )
    assert out["applied_to"] == "cart"
    assert bench.store.cart("tok-1") == {G: 1}


def test_a_heavy_product_seen_without_a_weight_change_was_only_touched(bench):
    assert _seen(bench, {A: 0.95}, plates=[1], action="take")
    _wait_out(bench)
    assert bench.store.cart("tok-1") == {}
    assert bench.store.reviews() == []
    [touched] = bench.store.events("view_without_change")
    assert touched["body"]["top"] == {A: 0.95}


def test_a_view_of_a_weighed_grab_is_not_decided_again(bench):
    assert _seen(bench, {A: 0.9, C: 0.05}, plates=[0], action="take")
    bench.change("shelf-1", 0, -401)
    _wait_out(bench)
    assert bench.store.cart("tok-1") == {A: 1}
    assert bench.store.events("view_without_change") == []
    assert bench.gw.engine.sightings.stats.orphans == 0


def test_gum_with_two_shoppers_and_no_positions_goes_to_review(bench):
    bench.gate("entry", "tok-2")
    assert _seen(bench, {G: 0.9}, action="take")
    _wait_out(bench)
    [item] = bench.store.reviews()
    assert item["reason"] == "several shoppers in the store and no positions"
    assert bench.store.cart("tok-1") == bench.store.cart("tok-2") == {}


def test_two_views_of_one_two_unit_grab_put_one_of_each_in_the_cart(bench):
    assert _seen(bench, {A: 0.9, C: 0.05}, plates=[0], action="take")
    assert _seen(bench, {C: 0.85, A: 0.1}, plates=[0], action="take")
    bench.change("shelf-1", 0, -802)
    assert bench.store.cart("tok-1") == {A: 1, C: 1}
    changes = [e for e in bench.store.events("cart_change") if e["device_id"] == "shelf-1"]
    assert {c["body"]["barcode"] for c in changes} == {A, C}
    assert changes[0]["body"]["one_of_each"] == [A, C]


def test_orphans_wait_and_leave_when_a_weight_event_fits_them():
    seen = Sightings(neighbour_plates=1)
    gum = Sighting(CAMERA, "shelf-1", (2,), 10_000, {G: 0.9}, action="take")
    juice = Sighting(CAMERA, "shelf-1", (0,), 10_000, {A: 0.9}, action="take")
    seen.add(gum, 0)
    seen.add(juice, 0)
    seen.note_event(ShelfEvent("shelf-1", (0,), (-400.0,), 9_000, 10_500, 10_800))
    assert seen.due_orphans(10_000 + ORPHAN_WAIT_MS - 1, lambda s: True) == []
    assert seen.due_orphans(10_000 + ORPHAN_WAIT_MS, lambda s: False) == []  # plates busy
    assert seen.due_orphans(10_000 + ORPHAN_WAIT_MS, lambda s: True) == [gum]
    assert not seen.has_orphans
    late = Sighting(CAMERA, "shelf-1", (1,), 11_000, {A: 0.8})  # after its event was decided
    seen.add(late, 0)
    assert not seen.has_orphans


@pytest.mark.parametrize(
    ("scores", "action", "cart", "quantity", "problem"),
    [
        ({G: 0.9}, "take", {}, 1, None),
        ({G: 0.9}, "put_back", {G: 2}, -1, None),
        ({G: 0.9}, "put_back", {}, 0, "did not take"),
        ({G: 0.4, A: 0.3}, "take", {}, 0, "camera is unsure"),
        ({G: 0.9}, None, {}, 0, "without whether"),
    ],
)
def test_decide_view_alone(scores, action, cart, quantity, problem):
    view = Sighting(CAMERA, "shelf-1", (2,), 0, scores, action=action)
    decision = decide_view_alone(view, 0.6, cart)
    assert decision.quantity == quantity
    assert (decision.problem is None) == (problem is None)
    if problem:
        assert problem in (decision.problem or "")


def test_a_two_unit_grab_waits_for_a_second_view_that_names_another_product(bench):
    assert _seen(bench, {A: 0.9, C: 0.05}, plates=[0], action="take")
    bench.change("shelf-1", 0, -802)
    assert bench.store.cart("tok-1") == {}  # held: a second view may name another product
    assert _seen(bench, {C: 0.85, A: 0.1}, plates=[0], action="take")
    bench.tick(0.2)
    assert bench.store.cart("tok-1") == {A: 1, C: 1}


def test_a_two_unit_grab_with_one_view_is_decided_when_the_hold_ends(bench):
    assert _seen(bench, {C: 0.9, A: 0.05}, plates=[0], action="take")
    bench.change("shelf-1", 0, -802)
    bench.tick(2)
    assert bench.store.cart("tok-1") == {C: 2}


def test_gum_taken_just_before_leaving_is_on_the_receipt(bench):
    assert _seen(bench, {G: 0.92}, action="take")
    bench.tick(0.6)
    bench.gate("exit", "tok-1")
    bench.tick(0.4)
    [receipt] = bench.receipts
    assert {ln.barcode: ln.quantity for ln in receipt.lines} == {G: 1}


def test_a_heavy_product_seen_just_before_leaving_waits_for_its_weight(bench):
    assert _seen(bench, {A: 0.92, C: 0.05}, plates=[0], action="take")
    bench.gate("exit", "tok-1")
    bench.tick(0.4)
    assert bench.store.events("view_without_change") == []  # not decided early
    assert bench.gw.engine.sightings.has_orphans


def test_a_weight_no_one_product_explains_is_two_products_when_two_views_say_so(bench):
    bench.change("shelf-1", 0, -650)  # juice and dates in one grab: no single product weighs it
    [item] = bench.store.reviews()  # no camera has reported: review at once
    assert item["reason"] == "no product on or near these plates has this weight"
    assert _seen(bench, {A: 0.9, D: 0.05}, plates=[0], action="take")
    assert _seen(bench, {D: 0.8, A: 0.1}, plates=[0], action="take")
    bench.change("shelf-1", 0, -650)
    assert bench.store.cart("tok-1") == {A: 1, D: 1}


def test_a_weight_no_one_product_explains_waits_for_its_views(bench):
    assert _seen(bench, {G: 0.9}, plates=[2], action="take")  # cameras are reporting
    bench.tick(5)
    bench.change("shelf-1", 0, -650)
    assert bench.store.cart("tok-1") == {G: 1}  # held: nothing for the -650 g yet
    assert _seen(bench, {D: 0.8, A: 0.1}, plates=[0], action="take")
    bench.tick(0.4)
    assert bench.store.cart("tok-1") == {G: 1}  # one view: one product cannot weigh 650 g
    assert _seen(bench, {A: 0.9, D: 0.05}, plates=[0], action="take")
    bench.tick(0.4)
    assert bench.store.cart("tok-1") == {G: 1, A: 1, D: 1}
    assert bench.store.reviews() == []


def test_gum_seen_with_nobody_in_the_store_is_recorded_not_reviewed(tmp_path):
    b = Bench(tmp_path, _planogram(), trackers=(CAMERA,))
    b.tick(1)
    assert _seen(b, {G: 0.9}, action="put_back")  # staff restocking
    _wait_out(b)
    assert b.store.reviews() == []
    [event] = b.store.events("unattributed_change")
    assert event["body"]["top"] == {G: 0.9}
    assert event["body"]["action"] == "put_back"
    b.store.close()


def test_one_grab_never_waits_longer_than_the_hold_for_its_views(bench):
    assert _seen(bench, {G: 0.9}, plates=[2], action="take")  # cameras are reporting
    bench.tick(5)
    bench.change("shelf-1", 0, -650)  # held for views from when it settled
    assert _seen(bench, {D: 0.8, A: 0.1}, plates=[0], action="take")
    bench.tick(0.2)
    assert bench.store.reviews() == []  # one view: waits on for a second ...
    bench.tick(0.8)  # ... but only until the first hold would have ended
    [item] = bench.store.reviews()
    assert item["reason"] == "no product on or near these plates has this weight"
    assert item["body"]["vision"]["top"] == {D: 0.8, A: 0.1}
