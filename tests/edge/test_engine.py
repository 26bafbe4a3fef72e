"""The checkout engine through the live dispatch path: association, inference, review."""

import pytest

from devices.layout import Planogram
from tests.edge.helpers import Bench

A, B, C = "100", "200", "300"


def _planogram(**plates_xy: bool) -> Planogram:
    xy = bool(plates_xy.get("xy"))
    return Planogram.model_validate(
        {
            "products": [
                {"barcode": A, "name": "apple juice", "unit_weight_g": 400, "price_minor": 250},
                {"barcode": B, "name": "bread", "unit_weight_g": 600, "price_minor": 300},
                {"barcode": C, "name": "cider", "unit_weight_g": 402, "price_minor": 280},
            ],
            "shelves": [
                {
                    "device_id": "shelf-1",
                    "plates": [
                        {
                            "plate": 0,
                            "barcode": A,
                            "stock": 5,
                            **({"x": 0.0, "y": 0.0, "z": 1.0} if xy else {}),
                        },
                        {
                            "plate": 1,
                            "barcode": B,
                            "stock": 5,
                            **({"x": 0.5, "y": 0.0, "z": 1.0} if xy else {}),
                        },
                        {
                            "plate": 3,
                            "barcode": C,
                            "stock": 5,
                            **({"x": 3.0, "y": 0.0, "z": 1.0} if xy else {}),
                        },
                    ],
                }
            ],
        }
    )


@pytest.fixture
def bench(tmp_path):
    b = Bench(tmp_path, _planogram())
    b.tick(1)
    yield b
    b.store.close()


def test_one_shopper_no_positions(bench):
    bench.gate("entry", "tok-1")
    bench.change("shelf-1", 0, -800)  # two juices in one grab
    bench.change("shelf-1", 1, -600)
    bench.change("shelf-1", 0, +400)
    bench.gate("exit", "tok-1")
    bench.tick(0.4)
    [receipt] = bench.receipts
    assert {ln.barcode: ln.quantity for ln in receipt.lines} == {A: 1, B: 1}
    assert receipt.total_minor == 550


def test_two_shoppers_without_positions_go_to_review(bench):
    bench.gate("entry", "tok-1")
    bench.gate("entry", "tok-2")
    bench.change("shelf-1", 1, -600)
    [item] = bench.store.reviews()
    assert item["reason"] == "several shoppers in the store and no positions"
    assert item["body"]["candidates"][0]["barcode"] == B
    assert bench.store.cart("tok-1") == {}
    assert bench.store.cart("tok-2") == {}


def test_equal_weights_on_one_plate_go_to_review(tmp_path):
    pg = _planogram().model_copy(deep=True)
    data = pg.model_dump()
    data["shelves"][0]["plates"][0]["also"] = [C]  # juice and cider share plate 0
    b = Bench(tmp_path, Planogram.model_validate(data))
    b.tick(1)
    b.gate("entry", "tok-1")
    b.change("shelf-1", 0, -401)
    [item] = b.store.reviews()
    assert item["reason"] == "products of similar weight: cannot tell which"
    assert {c["barcode"] for c in item["body"]["candidates"][:2]} == {A, C}
    b.store.close()


def test_nearest_tracked_shopper_gets_the_item(tmp_path):
    b = Bench(tmp_path, _planogram(xy=True), trackers=("tracker-1",))
    b.tick(1)
    b.gate("entry", "near-1")
    b.gate("entry", "far-1")
    where = {"near-1": (0.1, -0.6), "far-1": (3.0, -0.6)}
    b.tick(1, where=where)
    b.loads[("shelf-1", 0)] -= 400
    b.tick(1.2, where=where)
    assert b.store.cart("near-1") == {A: 1}
    assert b.store.cart("far-1") == {}
    # both standing at plate 1: review, with both shoppers ranked
    where = {"near-1": (0.5, -0.6), "far-1": (0.55, -0.6)}
    b.tick(1, where=where)
    b.loads[("shelf-1", 1)] -= 600
    b.tick(1.2, where=where)
    [item] = b.store.reviews()
    assert item["reason"] == "two shoppers equally near"
    assert {s["session_token"] for s in item["body"]["shoppers"]} == {"near-1", "far-1"}
    b.store.close()


def test_putback_in_the_wrong_place_teaches_the_planogram(bench):
    bench.gate("entry", "tok-1")
    bench.change("shelf-1", 3, -402)  # cider from plate 3
    bench.change("shelf-1", 1, +402)  # ... put back on the bread plate
    assert bench.store.cart("tok-1") == {}
    assert C in bench.gw.engine.live.plate_products[("shelf-1", 1)]
    bench.change("shelf-1", 1, -402)  # the next shopper's pick there is a cider
    assert bench.store.cart("tok-1") == {C: 1}


def test_review_resolved_into_the_cart_and_after_exit_into_the_receipt(bench):
    bench.gate("entry", "tok-1")
    bench.gate("entry", "tok-2")
    bench.change("shelf-1", 1, -600)
    [item] = bench.store.reviews()
    out = bench.gw.resolve_review(
        item["review_id"], barcode=B, quantity=1, session_token="tok-2", by="alice"
    )
    assert out["applied_to"] == "cart"
    assert bench.store.cart("tok-2") == {B: 1}
    with pytest.raises(ValueError, match="already resolved"):
        bench.gw.resolve_review(
            item["review_id"], barcode=B, quantity=1, session_token="tok-2", by="alice"
        )
    bench.change("shelf-1", 0, -400)
    [second] = bench.store.reviews()
    bench.gate("exit", "tok-1")
    bench.tick(0.4)
    receipt = next(r for r in bench.receipts if r.session_token == "tok-1")
    assert receipt.lines == []
    out = bench.gw.resolve_review(
        second["review_id"], barcode=A, quantity=1, session_token="tok-1", by="alice"
    )
    assert out["applied_to"] == "extra charge"
    [stored] = bench.store.receipts(token="tok-1")
    assert stored["adjusted_total_minor"] == 250
    assert stored["adjustments"][0]["quantity"] == 1


def test_the_hand_on_the_plate_decides_between_shoppers_standing_together(tmp_path):
    b = Bench(tmp_path, _planogram(xy=True), trackers=("tracker-1",))
    b.tick(1)
    b.gate("entry", "taker")
    b.gate("entry", "watcher")
    rest = {"taker": (0.4, -0.6, 0.4, -0.5, 0.9), "watcher": (0.45, -0.6, 0.45, -0.5, 0.9)}
    b.tick(1, where=rest)
    reach = {**rest, "taker": (0.4, -0.6, 0.02, 0.01, 1.0)}  # hand on plate 0
    b.loads[("shelf-1", 0)] -= 400
    b.tick(0.6, where=reach)
    b.tick(1.2, where=rest)
    assert b.store.cart("taker") == {A: 1}
    assert b.store.cart("watcher") == {}
    assert b.store.reviews() == []
    b.store.close()


def test_two_hands_two_units_one_each(tmp_path):
    b = Bench(tmp_path, _planogram(xy=True), trackers=("tracker-1",))
    b.tick(1)
    b.gate("entry", "left-1")
    b.gate("entry", "right-1")
    rest = {"left-1": (0.3, -0.6, 0.3, -0.5, 0.9), "right-1": (0.7, -0.6, 0.7, -0.5, 0.9)}
    b.tick(1, where=rest)
    both = {"left-1": (0.3, -0.6, 0.48, 0.0, 1.0), "right-1": (0.7, -0.6, 0.52, 0.01, 1.0)}
    b.loads[("shelf-1", 1)] -= 1200  # two loaves at once
    b.tick(0.6, where=both)
    b.tick(1.2, where=rest)
    assert b.store.cart("left-1") == {B: 1}
    assert b.store.cart("right-1") == {B: 1}
    b.store.close()


def test_two_hands_on_a_put_back_it_was_the_one_holding_such_an_item(tmp_path):
    b = Bench(tmp_path, _planogram(xy=True), trackers=("tracker-1",))
    b.tick(1)
    b.gate("entry", "holder")
    b.change("shelf-1", 0, -400)  # alone in the store: the juice is theirs
    b.gate("entry", "empty-handed")
    rest = {"holder": (0.0, -0.6, 0.0, -0.5, 0.9), "empty-handed": (0.1, -0.6, 0.1, -0.5, 0.9)}
    b.tick(1, where=rest)
    both = {"holder": (0.0, -0.6, 0.01, 0.0, 1.0), "empty-handed": (0.1, -0.6, 0.02, 0.01, 1.0)}
    b.loads[("shelf-1", 0)] += 400
    b.tick(0.6, where=both)
    b.tick(1.2, where=rest)
    assert b.store.reviews() == []
    assert b.store.cart("holder") == {}
    assert b.store.cart("empty-handed") == {}
    b.store.close()


def test_two_shoppers_picking_from_neighbouring_plates_at_once_each_get_their_own(tmp_path):
    """The two changes settle together and merge into one shelf event; each plate goes
    to the hand that was on it."""
    b = Bench(tmp_path, _planogram(xy=True), trackers=("tracker-1",))
    b.tick(1)
    b.gate("entry", "left-1")
    b.gate("entry", "right-1")
    rest = {"left-1": (0.0, -0.6, 0.0, -0.5, 0.9), "right-1": (0.5, -0.6, 0.5, -0.5, 0.9)}
    b.tick(1, where=rest)
    both = {"left-1": (0.0, -0.6, 0.01, 0.0, 1.0), "right-1": (0.5, -0.6, 0.49, 0.01, 1.0)}
    b.loads[("shelf-1", 0)] -= 400  # juice from plate 0 ...
    b.loads[("shelf-1", 1)] -= 600  # ... and bread from plate 1, in the same moment
    b.tick(0.6, where=both)
    b.tick(1.2, where=rest)
    assert b.store.reviews() == []
    assert b.store.cart("left-1") == {A: 1}
    assert b.store.cart("right-1") == {B: 1}
    changes = [e for e in b.store.events("cart_change") if e["device_id"] == "shelf-1"]
    assert sorted(c["body"]["plates"] for c in changes) == [[0], [1]]
    b.store.close()


def test_a_body_near_the_shelf_whose_hand_is_on_another_shelf_did_not_take_it(tmp_path):
    """Nobody's hand at plate 0: the shopper standing nearest has a hand on plate 3
    the whole time, so the change is the other (body-only tracked) shopper's."""
    b = Bench(tmp_path, _planogram(xy=True), trackers=("tracker-1",))
    b.tick(1)
    b.gate("entry", "busy-1")
    b.gate("entry", "other-1")
    where = {"busy-1": (0.2, -0.5, 3.0, 0.0, 1.0), "other-1": (0.0, -1.1)}
    b.tick(1, where=where)
    b.loads[("shelf-1", 0)] -= 400
    b.tick(1.8, where=where)
    assert b.store.cart("busy-1") == {}
    assert b.store.cart("other-1") == {A: 1}
    b.store.close()


def test_when_every_hand_was_elsewhere_the_change_goes_to_review(tmp_path):
    b = Bench(tmp_path, _planogram(xy=True), trackers=("tracker-1",))
    b.tick(1)
    b.gate("entry", "busy-1")
    b.gate("entry", "busy-2")
    where = {"busy-1": (0.2, -0.5, 3.0, 0.0, 1.0), "busy-2": (1.5, -0.5, 3.0, 0.1, 1.0)}
    b.tick(1, where=where)
    b.loads[("shelf-1", 0)] -= 400
    b.tick(1.8, where=where)
    [item] = b.store.reviews()
    assert item["reason"] == "every shopper's hand was elsewhere"
    assert b.store.cart("busy-1") == {}
    assert b.store.cart("busy-2") == {}
    b.store.close()
