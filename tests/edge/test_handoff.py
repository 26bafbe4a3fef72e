"""A camera sees a product pass between shoppers (``event/handoff``): the one who leaves
with it pays for it; an unclear hand-off changes no cart and says why."""

from __future__ import annotations

from typing import Any

import pytest

from devices import protocol as p
from edge.checkout.handoff import decide_handoff
from tests.edge.helpers import Bench
from tests.edge.test_vision_checkout import CAMERA, A, B, _planogram


@pytest.fixture
def bench(tmp_path):
    b = Bench(tmp_path, _planogram(), trackers=(CAMERA,))
    b.tick(1)
    b.gate("entry", "giver-1")
    b.change("shelf-1", 1, -600)  # bread, while the giver is alone in the store
    b.gate("entry", "taker-1")
    assert b.store.cart("giver-1") == {B: 1}
    yield b
    b.store.close()


def _handoff(b: Bench, device: str = CAMERA, **body: Any) -> bool:
    sent = {"from_token": "giver-1", "to_token": "taker-1", "scores": {B: 0.85, A: 0.1}, **body}
    return b.send(p.handoff_topic("s-1", device), sent)


def _receipt(b: Bench, token: str) -> dict[str, int]:
    b.gate("exit", token)
    b.tick(2)
    [r] = [r for r in b.receipts if r.session_token == token]
    return {ln.barcode: ln.quantity for ln in r.lines}


def test_the_shopper_who_leaves_with_the_item_pays_for_it(bench):
    assert _handoff(bench)
    assert bench.store.cart("giver-1") == {}
    assert bench.store.cart("taker-1") == {B: 1}
    [moved] = bench.store.events("cart_handoff")
    assert (moved["body"]["from"], moved["body"]["to"], moved["body"]["barcode"]) == (
        "giver-1",
        "taker-1",
        B,
    )
    assert _receipt(bench, "giver-1") == {}
    assert _receipt(bench, "taker-1") == {B: 1}


def test_a_view_that_matches_nothing_the_giver_holds_moves_nothing(bench):
    assert _handoff(bench, scores={A: 0.9})  # juice: the giver holds only bread
    assert bench.store.cart("giver-1") == {B: 1}
    assert bench.store.cart("taker-1") == {}
    [unclear] = bench.store.events("handoff_unclear")
    assert unclear["body"]["reason"] == "no product of the giver's cart clearly matches the view"


def test_more_units_than_the_giver_holds_move_nothing(bench):
    assert _handoff(bench, quantity=2)
    assert bench.store.cart("taker-1") == {}
    [unclear] = bench.store.events("handoff_unclear")
    assert unclear["body"]["reason"] == "the giver holds no 2 units of anything"


@pytest.mark.parametrize(
    ("device", "body", "reason"),
    [
        ("shelf-1", {}, "shelf-1 is not a camera"),
        (CAMERA, {"to_token": "giver-1"}, "name the same shopper"),
        (CAMERA, {"scores": {A: 0.7, B: 0.7}}, "add up to at most 1"),
    ],
)
def test_only_cameras_report_hand_offs_between_two_shoppers(bench, device, body, reason):
    assert not _handoff(bench, device, **body)
    [dead] = bench.store.dead_letters()
    assert reason in dead["reason"]
    assert bench.store.cart("giver-1") == {B: 1}


@pytest.mark.parametrize(
    ("cart", "quantity", "scores", "moved", "problem"),
    [
        ({A: 1, B: 1}, 1, {B: 0.7, A: 0.2}, B, None),
        ({A: 1, B: 1}, 1, {B: 0.4, A: 0.35}, None, "clearly matches"),  # 53 % share
        ({A: 1}, 1, {B: 0.95}, None, "clearly matches"),  # scored 0: not held
        ({A: 1, B: 2}, 2, {A: 0.9, B: 0.05}, None, "clearly matches"),  # only B has 2 units
        ({A: 1}, 2, {A: 0.9}, None, "holds no 2 units"),
        ({}, 1, {A: 0.9}, None, "holds no 1 units"),
    ],
)
def test_the_product_passed_is_one_the_giver_holds_and_the_camera_names_clearly(
    cart, quantity, scores, moved, problem
):
    decision = decide_handoff(cart, quantity, scores, min_share=0.6)
    assert decision.barcode == moved
    assert (decision.problem is None) == (problem is None)
    if problem is not None:
        assert problem in decision.problem
