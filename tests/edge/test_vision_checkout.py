"""A product camera's view (``event/product``) in the live checkout path: weight ties
broken by it, nothing changed without it, only cameras may send it."""

from __future__ import annotations

from typing import Any

import pytest

from devices import protocol as p
from devices.layout import Planogram
from edge.checkout.detector import ShelfEvent
from edge.checkout.inference import Hypothesis, fuse_vision
from edge.checkout.sightings import Sighting, Sightings
from tests.edge.helpers import Bench

A, B, C = "100", "200", "300"  # juice 400 g and cider 402 g share plate 0; bread 600 g
CAMERA = "cam-1"


def _planogram() -> Planogram:
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
                        {"plate": 0, "barcode": A, "also": [C], "stock": 5},
                        {"plate": 1, "barcode": B, "stock": 5},
                    ],
                }
            ],
        }
    )


@pytest.fixture
def bench(tmp_path):
    b = Bench(tmp_path, _planogram(), trackers=(CAMERA,))
    b.tick(1)
    b.gate("entry", "tok-1")
    yield b
    b.store.close()


def _seen(b: Bench, scores: dict[str, float], *, device: str = CAMERA, **kw: Any) -> bool:
    body: dict[str, Any] = {"shelf_id": "shelf-1", "plates": [0], "scores": scores, **kw}
    return b.send(p.product_topic("s-1", device), body)


def _hold(b: Bench, ms: int) -> None:
    eng = b.gw.engine
    eng.reconfigure(
        b.gw.config.detector,
        b.gw.config.inference.model_copy(update={"vision_hold_ms": ms}),
        b.gw.config.association,
    )


def test_without_a_camera_a_weight_tie_goes_to_review_at_once(bench):
    bench.change("shelf-1", 0, -401)
    [item] = bench.store.reviews()
    assert item["reason"] == "products of similar weight: cannot tell which"
    assert "vision" not in item["body"]
    assert bench.gw.engine.sightings.stats.held == 0


def test_a_view_seen_before_the_weight_settled_breaks_the_tie(bench):
    assert _seen(bench, {C: 0.9, A: 0.05})
    bench.change("shelf-1", 0, -401)
    assert bench.store.reviews() == []
    assert bench.store.cart("tok-1") == {C: 1}
    [change] = [e for e in bench.store.events("cart_change") if e["device_id"] == "shelf-1"]
    vision = change["body"]["vision"]
    assert vision["camera"] == CAMERA
    assert vision["top"][C] == 0.9
    assert change["body"]["candidates"][0]["barcode"] == C


def test_an_unclear_event_waits_for_a_view_that_comes_after_it(bench):
    _hold(bench, 5_000)
    assert _seen(bench, {A: 0.5}, plates=[1])  # cameras are reporting (about bread)
    bench.tick(3)  # ... long ago: that view belongs to no later event
    bench.change("shelf-1", 0, -401)
    assert bench.store.reviews() == []
    assert bench.store.cart("tok-1") == {}  # held, not decided
    bench.gate("exit", "tok-1")
    bench.tick(0.4)
    assert bench.receipts == []  # the receipt waits for the held change
    assert _seen(bench, {A: 0.85, C: 0.1})
    bench.tick(0.4)
    [receipt] = bench.receipts
    assert {ln.barcode: ln.quantity for ln in receipt.lines} == {A: 1}
    stats = bench.gw.engine.sightings.stats
    assert (stats.held, stats.held_then_seen, stats.used) == (1, 1, 1)


def test_a_held_event_without_a_view_goes_to_review_when_the_hold_ends(bench):
    _hold(bench, 1_000)
    assert _seen(bench, {B: 0.9}, plates=[1])
    bench.tick(3)
    bench.change("shelf-1", 0, -401)
    bench.tick(1.2)
    [item] = bench.store.reviews()
    assert item["reason"] == "products of similar weight: cannot tell which"
    assert "vision" not in item["body"]
    assert bench.gw.engine.sightings.stats.held == 1


def test_a_clear_weight_is_not_held_and_not_overruled_by_a_listless_view(bench):
    _hold(bench, 5_000)
    assert _seen(bench, {A: 0.6}, plates=[1])  # a view at the bread plate, about juice
    bench.change("shelf-1", 1, -600)
    assert bench.store.cart("tok-1") == {B: 1}  # bread: 200 g from anything else
    assert bench.gw.engine.sightings.stats.held == 0


def test_a_view_from_another_place_or_time_is_not_used(bench):
    assert _seen(bench, {C: 0.95}, plates=[5])  # not a neighbour of plate 0
    bench.tick(0.2)
    assert _seen(bench, {C: 0.95}, ts=bench.now - 60_000)  # a minute ago
    bench.change("shelf-1", 0, -401)
    bench.tick(2)  # cameras report: the event waited for its view (default 1.5 s)
    [item] = bench.store.reviews()
    assert "vision" not in item["body"]


@pytest.mark.parametrize(
    ("device", "body", "reason"),
    [
        ("shelf-1", {"shelf_id": "shelf-1", "scores": {A: 0.9}}, "shelf-1 is not a camera"),
        ("gate-in", {"shelf_id": "shelf-1", "scores": {A: 0.9}}, "gate-in is not a camera"),
        (CAMERA, {"shelf_id": "shelf-9", "scores": {A: 0.9}}, "shelf-9 is not a shelf"),
        (CAMERA, {"shelf_id": "shelf-1", "scores": {A: 0.9, C: 0.9}}, "add up to at most 1"),
    ],
)
def test_only_cameras_send_views_of_known_shelves(bench, device, body, reason):
    assert not bench.send(p.product_topic("s-1", device), body)
    [dead] = bench.store.dead_letters()
    assert reason in dead["reason"]
    assert bench.gw.engine.sightings.stats.received == 0


def test_fusion_keeps_likelihoods_and_scores_unlisted_products_low():
    hyps = [Hypothesis(A, 1, 0.9, 0.5), Hypothesis(C, 1, 0.8, 0.45), Hypothesis(B, 2, 0.1, 0.05)]
    fused = fuse_vision(hyps, {C: 0.7, B: 0.2})  # A unlisted: at most 0.2
    assert [h.barcode for h in fused] == [C, A, B]
    assert fused[0].likelihood == 0.8
    assert fused[0].confidence > 0.6
    assert sum(h.confidence for h in fused) == pytest.approx(1.0)
    assert fuse_vision(hyps, {C: 0.7}, weight=0.0) == hyps


def _event(plates: tuple[int, ...], start: int, end: int) -> ShelfEvent:
    return ShelfEvent("shelf-1", plates, tuple(-100.0 for _ in plates), start, end, end)


def test_sightings_match_by_shelf_plates_time_and_shopper():
    seen = Sightings(neighbour_plates=1)
    far = Sighting(CAMERA, "shelf-1", (6,), 10_500, {A: 0.9})
    near = Sighting(CAMERA, "shelf-1", (3,), 10_500, {B: 0.9})
    exact = Sighting(CAMERA, "shelf-1", (2,), 11_900, {C: 0.9})
    other = Sighting(CAMERA, "shelf-1", (2,), 10_400, {A: 0.9}, session_token="tok-2")
    for s in (far, near, exact, other):
        seen.add(s, 0)
    event = _event((2,), 10_000, 11_000)
    assert seen.take(event, "tok-1") is exact  # same plate beats the neighbour
    assert seen.take(event, "tok-1") is near  # ... each serves one event
    assert seen.take(event, "tok-1") is None  # far plate; another shopper's hand
    assert seen.take(event, "tok-2") is other
    assert seen.take(_event((6,), 20_000, 21_000), None) is None  # too long after
    assert seen.live(600_000)
    assert not seen.live(600_001)


def test_without_cameras_a_likely_weight_answer_goes_straight_to_the_cart(bench):
    bench.change("shelf-1", 0, -394)  # juice (400 g) likelier than cider (402 g), not sure
    assert bench.store.cart("tok-1") == {A: 1}
    assert bench.gw.engine.sightings.stats.held == 0


def test_a_likely_but_unsure_weight_answer_waits_for_a_view_while_cameras_report(bench):
    _hold(bench, 5_000)
    assert _seen(bench, {A: 0.5}, plates=[1])  # cameras are reporting (about bread)
    bench.tick(3)
    bench.change("shelf-1", 0, -394)
    assert bench.store.cart("tok-1") == {}  # held for the view: short of vision_confirm_below
    assert _seen(bench, {C: 0.9, A: 0.05})
    bench.tick(0.4)
    assert bench.store.cart("tok-1") == {C: 1}
    assert bench.gw.engine.sightings.stats.changed == 1
