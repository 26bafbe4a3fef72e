"""Two shoppers reaching into one shelf at once: whose hand made which change.

Plates 10 cm apart, hands a few centimetres from both: each change alone looks like
"two hands on the shelf".  The engine works it out from the hand each other change
of that moment was put to (``edge.checkout.busy_hands``), or splits one merged change
by where each hand worked (``Associator.plates_by_hand``).
"""

from edge.checkout.association import Associator, Attribution
from edge.checkout.busy_hands import BusyHands, at_once
from edge.checkout.detector import ShelfEvent
from edge.checkout.positions import PositionBook
from edge.config import AssociationConfig
from tests.edge.two_shoppers import (
    BREAD,
    CIDER,
    HALF,
    JUICE,
    NARROW,
    TWIN,
    WIDE,
    Z,
    bench,
    hands,
    planogram,
    reach,
)


def test_two_changes_at_once_each_hand_near_both_go_to_the_hand_that_worked_there(tmp_path):
    """Juice (plate 0) and cider (plate 2, 12 cm away) at the same moment; each hand is
    within 10 cm of both plates, so each change alone has two hands at it."""
    b = bench(tmp_path, NARROW)
    b.loads[("shelf-1", 0)] -= 400
    b.loads[("shelf-1", 2)] -= 850
    reach(b, [hands(0.03, 0.09)] * 3)
    assert b.store.reviews() == []
    assert b.store.cart("left-1") == {JUICE: 1}
    assert b.store.cart("right-1") == {CIDER: 1}
    b.store.close()


def test_a_hand_put_to_another_change_of_that_moment_did_not_make_this_one(tmp_path):
    """The right hand was clearly alone at the cider; it also came near the juice, where
    the left hand was: the juice is the left shopper's, whichever change settles first."""
    b = bench(tmp_path, NARROW)
    b.loads[("shelf-1", 0)] -= 400
    b.loads[("shelf-1", 2)] -= 850
    reach(b, [hands(0.0, 0.09)] * 3)
    assert b.store.reviews() == []
    assert b.store.cart("left-1") == {JUICE: 1}
    assert b.store.cart("right-1") == {CIDER: 1}
    changes = [e for e in b.store.events("cart_change") if e["body"].get("barcode") == JUICE]
    [juice] = changes
    busy = [s for s in juice["body"]["shoppers"] if s.get("busy_elsewhere")]
    assert [s["session_token"] for s in busy] == ["right-1"]
    b.store.close()


def test_one_merged_change_no_product_explains_is_split_by_where_each_hand_worked(tmp_path):
    """Juice and bread from neighbouring plates at once merge into one 1000 g change.
    Association names the left hand (the right one hovered 15 cm above the bread), but
    the right hand reached in too: each plate goes to the hand that worked at it."""
    b = bench(tmp_path)
    b.loads[("shelf-1", 0)] -= 400
    b.loads[("shelf-1", 1)] -= 600
    hover = hands(0.0, 0.1, right_z=Z + 0.15)
    reach(b, [hover, hover, hover])
    assert b.store.reviews() == []
    assert b.store.cart("left-1") == {JUICE: 1}
    assert b.store.cart("right-1") == {BREAD: 1}
    b.store.close()


def test_two_hands_two_products_that_add_up_to_two_units_of_a_third(tmp_path):
    """A juice (400 g, plate 0) and a bread (600 g, plate 1) at once weigh as much as two
    500 g melons, which stand on plate 0 too: each hand worked on its own plate, and
    each plate's change is a clear product of its own, so that is what each took."""
    b = bench(tmp_path, also={0: [HALF]})
    b.loads[("shelf-1", 0)] -= 400
    b.loads[("shelf-1", 1)] -= 600
    hover = hands(0.0, 0.1, right_z=Z + 0.15)  # association names the left hand
    reach(b, [hover, hover, hover])
    assert b.store.reviews() == []
    assert b.store.cart("left-1") == {JUICE: 1}
    assert b.store.cart("right-1") == {BREAD: 1}
    b.store.close()


def test_plates_that_deny_two_units_of_a_third_split_it_even_when_one_part_is_unclear(
    tmp_path,
):
    """As above, but plate 0 also holds an apple juice of the juice's weight, so its part
    is no clear product.  The plates lost 400 g and 600 g, not 500 g each: no melons.
    The bread goes to the right hand; the left hand's juice-or-apple-juice to review."""
    b = bench(tmp_path, also={0: [HALF, TWIN]})
    b.loads[("shelf-1", 0)] -= 400
    b.loads[("shelf-1", 1)] -= 600
    hover = hands(0.0, 0.1, right_z=Z + 0.15)
    reach(b, [hover, hover, hover])
    assert b.store.cart("right-1") == {BREAD: 1}
    assert b.store.cart("left-1") == {}
    [item] = b.store.reviews()
    assert item["reason"] == "products of similar weight: cannot tell which"
    assert item["body"]["plates"] == [0]
    assert {c["barcode"] for c in item["body"]["candidates"][:2]} == {JUICE, TWIN}
    b.store.close()


def test_a_merged_change_is_not_split_into_parts_that_are_not_placed_there(tmp_path):
    """No split when a part would be a product from elsewhere on the shelf: a share of
    an item lying across two plates can weigh like anything."""
    b = bench(tmp_path)
    b.loads[("shelf-1", 0)] -= 850  # weighs like the cider, which stands on plate 2
    b.loads[("shelf-1", 1)] -= 600
    hover = hands(0.0, 0.1, right_z=Z + 0.15)
    reach(b, [hover, hover, hover])
    assert b.store.cart("right-1") == {}
    assert CIDER not in b.store.cart("left-1")
    [item] = b.store.reviews()
    assert item["body"]["plates"] == [0, 1]
    b.store.close()


def _event(plates: tuple[int, ...], start: int, settled: int) -> ShelfEvent:
    return ShelfEvent("shelf-1", plates, tuple(-1.0 for _ in plates), start, settled, settled)


def test_busy_means_another_change_on_other_plates_of_the_shelf_at_the_same_moment():
    busy = BusyHands()
    busy.note(_event((2,), 1_000, 2_000), "right-1")
    busy.note(_event((0,), 1_000, 2_000), "left-1")  # the same plates: not elsewhere
    busy.note(_event((5,), 9_000, 9_500), "late-1")  # long after
    assert busy.busy(_event((0,), 1_500, 2_500), ["right-1", "left-1", "late-1"]) == {"right-1"}
    assert not at_once(_event((0,), 3_000, 4_000), (2,), 1_000, 2_000)
    assert at_once(_event((0,), 2_200, 4_000), (2,), 1_000, 2_000)  # within the slack


def test_free_hand_only_when_exactly_one_hand_is_left():
    busy = BusyHands()
    event = _event((0,), 1_000, 2_000)
    shoppers = [
        {"session_token": t, "hand_m": 0.05, "touching": True} for t in ("a-1", "b-1", "c-1")
    ]
    who = Attribution(None, shoppers, "two hands on the shelf")
    assert busy.free_hand(event, who) is None
    busy.note(_event((2,), 1_000, 2_000), "b-1")
    assert busy.free_hand(event, who) is None  # a-1 and c-1 are both left
    busy.note(_event((3,), 1_000, 2_000), "c-1")
    freed = busy.free_hand(event, who)
    assert freed is not None
    assert freed.token == "a-1"
    assert freed.problem is None
    unclear = Attribution(None, shoppers, "two shoppers equally near")
    assert busy.free_hand(event, unclear) is None  # only for hands at the plates


def _associator(hands: dict[str, list[tuple[float, float]]]) -> Associator:
    """An associator over the wide shelf, fed hand frames (x, z) at 10 Hz from t=0."""
    book = PositionBook()
    for token, frames in hands.items():
        for i, (x, z) in enumerate(frames):
            book.add(token, i * 100, x, -0.6)
            book.add_hand(token, i * 100, x, 0.0, z)
    return Associator(planogram(WIDE), book, AssociationConfig())


def test_a_brief_reach_beside_a_long_one_counts_as_a_hand_in_the_change():
    """Two loaves gone; one hand on the plate the whole 2 s, the other only for 3 of 20
    tracker frames (its mean stays far): both reached in, so each took one."""
    long = [(0.1, Z)] * 20
    brief = [(0.1, Z + 1.0)] * 8 + [(0.1, Z)] * 3 + [(0.1, Z + 1.0)] * 9
    assoc = _associator({"long-1": long, "brief-1": brief, "away-1": [(0.1, Z + 1.0)] * 20})
    event = ShelfEvent("shelf-1", (1,), (-1200.0,), 300, 1_700, 1_700)
    who = assoc.attribute(event, ["away-1", "brief-1", "long-1"])
    assert who.token == "long-1"
    assert who.touching == ["long-1"]
    assert sorted(assoc.reached(event, who)) == ["brief-1", "long-1"]


def test_plates_go_one_to_each_hand_the_nearest_way_round():
    """Hands at 9 and 12 cm over plates at 0 and 10 cm: each plate's nearest hand is the
    first one, but both hands reached in, so each gets the plate it is nearer overall."""
    assoc = _associator({"a-1": [(0.09, Z)] * 10, "b-1": [(0.12, Z)] * 10})
    event = ShelfEvent("shelf-1", (0, 1), (-400.0, -600.0), 100, 900, 900)
    assert assoc.plates_by_hand(event, ["a-1", "b-1"]) == {"a-1": [0], "b-1": [1]}
