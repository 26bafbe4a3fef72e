"""Weight that went from some plates of a shelf to others, the total about the same.

An item moved between neighbouring plates used to cancel out and disappear; now it
is an event: with two hands in it, a put-back and a pick at once (each decided for
its shopper), else one shopper moved an item, which the live planogram learns.
"""

from edge.checkout.detector import ShelfEvent
from tests.edge.two_shoppers import JUICE, REST, TWIN, bench, hands, reach


def test_an_item_moved_between_plates_changes_no_cart_and_teaches_the_planogram(tmp_path):
    b = bench(tmp_path)
    b.gate("exit", "right-1")  # one shopper left in the store
    b.tick(1, where={"left-1": REST["left-1"]})
    b.loads[("shelf-1", 0)] -= 400  # the juice leaves plate 0 ...
    b.loads[("shelf-1", 1)] += 400  # ... and lies on plate 1 now
    b.tick(2.0, where={"left-1": (0.0, -0.6, 0.05, 0.0, 1.0)})
    assert b.store.cart("left-1") == {}
    assert b.store.reviews() == []
    [moved] = b.store.events("moved")
    assert moved["session_token"] == "left-1"
    assert moved["body"]["from"] == [0]
    assert moved["body"]["to"] == [1]
    assert moved["body"]["barcode"] == JUICE
    assert JUICE in b.gw.engine.live.plate_products[("shelf-1", 1)]
    learned = [e["body"] for e in b.store.events("planogram_learned")]
    assert {"plate": 1, "barcode": JUICE} in learned
    b.store.close()


def test_a_put_back_and_a_pick_at_once_by_two_shoppers_are_both_decided(tmp_path):
    """The right shopper puts a juice down on plate 1 while the left one takes a juice
    from plate 0: the shelf's total does not change, the two hands tell the two apart."""
    b = bench(tmp_path)
    b.loads[("shelf-1", 0)] -= 400  # the right shopper's juice, taken alone at plate 0
    reach(b, [{"left-1": REST["left-1"], "right-1": (0.2, -0.6, 0.0, 0.0, 1.0)}] * 3)
    assert b.store.cart("right-1") == {JUICE: 1}
    b.loads[("shelf-1", 0)] -= 400
    b.loads[("shelf-1", 1)] += 400
    reach(b, [hands(0.0, 0.1)] * 3)
    assert b.store.reviews() == []
    assert b.store.cart("left-1") == {JUICE: 1}
    assert b.store.cart("right-1") == {}
    assert b.store.events("moved") == []
    b.store.close()


def test_a_put_back_and_an_unclear_pick_at_once_the_pick_alone_goes_to_review(tmp_path):
    """Two juices of the same weight on plate 0: the pick cannot be told; the put-back
    is still decided, and only the pick, with its shopper, goes to review."""
    b = bench(tmp_path, also={0: [TWIN]})
    b.loads[("shelf-1", 0)] -= 400
    reach(b, [{"left-1": REST["left-1"], "right-1": (0.2, -0.6, 0.0, 0.0, 1.0)}] * 3)
    [earlier] = b.store.reviews()  # the right shopper's own pick: which juice?
    b.gw.resolve_review(
        earlier["review_id"], barcode=JUICE, quantity=1, session_token="right-1", by="staff-1"
    )
    assert b.store.cart("right-1") == {JUICE: 1}
    b.loads[("shelf-1", 0)] -= 400
    b.loads[("shelf-1", 1)] += 400
    reach(b, [hands(0.0, 0.1)] * 3)
    assert b.store.cart("right-1") == {}
    assert b.store.cart("left-1") == {}
    [item] = b.store.reviews(status="open")
    assert item["session_token"] == "left-1"
    assert item["body"]["plates"] == [0]
    assert item["reason"] == "products of similar weight: cannot tell which"
    b.store.close()


def test_moved_needs_both_sides_to_change_and_the_total_to_stay():
    event = ShelfEvent("shelf-1", (0, 1, 2), (-400.0, 396.0, 1.5), 0, 900, 900)
    moved = event.moved(8.0)
    assert moved is not None
    gone, came = moved
    assert (gone.plates, gone.deltas_g) == ((0,), (-400.0,))
    assert (came.plates, came.deltas_g) == ((1,), (396.0,))
    assert ShelfEvent("shelf-1", (0, 1), (-400.0, 300.0), 0, 900, 900).moved(8.0) is None
    assert ShelfEvent("shelf-1", (0, 1), (-5.0, 4.0), 0, 900, 900).moved(8.0) is None
