"""A product camera that saw whose hand it was (``ProductSeen.session_token``) settles
a grab whose shopper the hands cannot: two hands at one plate, one view naming one."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from devices import protocol as p
from edge.checkout.association import TWO_HANDS
from tests.edge.helpers import Bench
from tests.edge.two_shoppers import CIDER, JUICE, REST, bench, hands

CAMERA = "cam-1"
BOTH_AT_JUICE = hands(0.0, 0.0)


def _view(b: Bench, plate: int, **kw: Any) -> None:
    body: dict[str, Any] = {"shelf_id": "shelf-1", "plates": [plate], "scores": {JUICE: 0.9}}
    assert b.send(p.product_topic("s-1", CAMERA), {**body, **kw})


def _grab_juice(b: Bench) -> None:
    """Both hands at the juice plate while one juice leaves it."""
    b.tick(0.4, where=BOTH_AT_JUICE)
    b.loads[("shelf-1", 0)] -= 400
    b.tick(0.6, where=BOTH_AT_JUICE)


def test_without_a_name_two_hands_at_one_plate_go_to_review(tmp_path: Path) -> None:
    b = bench(tmp_path, cameras=(CAMERA,))
    _view(b, 0)  # a camera reports, but does not say whose hand it saw
    _grab_juice(b)
    b.tick(1.6, where=REST)
    [item] = b.store.reviews()
    assert item["reason"] == TWO_HANDS
    assert b.gw.engine.sightings.stats.held == 0  # no camera names shoppers: no wait
    b.store.close()


def test_a_view_naming_the_shopper_settles_two_hands(tmp_path: Path) -> None:
    b = bench(tmp_path, cameras=(CAMERA,))
    _view(b, 0, session_token="right-1")
    _grab_juice(b)
    b.tick(1.6, where=REST)
    assert b.store.reviews() == []
    assert b.store.cart("right-1") == {JUICE: 1}
    assert b.store.cart("left-1") == {}
    [change] = b.store.events("cart_change")
    named = change["body"]["shoppers"][0]
    assert named == {"session_token": "right-1", "named_by": CAMERA}
    b.store.close()


def test_a_clear_product_with_an_unclear_shopper_waits_for_a_naming_view(tmp_path: Path) -> None:
    b = bench(tmp_path, cameras=(CAMERA,))
    _view(b, 2, session_token="left-1", scores={CIDER: 0.9})  # cameras name shoppers
    b.tick(3, where=REST)
    _grab_juice(b)  # juice is the only 400 g product there: the product is clear
    b.tick(0.4, where=REST)
    assert b.gw.engine.sightings.stats.held == 1  # decided but for whose hand: it waits
    assert b.store.reviews() == []
    assert b.store.cart("left-1") == {}
    _view(b, 0, session_token="left-1")
    b.tick(1.0, where=REST)
    assert b.store.reviews() == []
    assert b.store.cart("left-1") == {JUICE: 1}
    assert b.gw.engine.sightings.stats.held_then_seen == 1
    b.store.close()


def test_a_view_naming_someone_not_in_the_store_changes_nothing(tmp_path: Path) -> None:
    b = bench(tmp_path, cameras=(CAMERA,))
    _view(b, 0, session_token="gone-1")
    _grab_juice(b)
    b.tick(1.6, where=REST)
    [item] = b.store.reviews()
    assert item["reason"] == TWO_HANDS
    assert b.store.cart("right-1") == b.store.cart("left-1") == {}
    b.store.close()
