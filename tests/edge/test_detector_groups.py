"""Grouping of plate changes into shelf events: shares of one item, and items apart."""

import random

from edge.checkout.detector import ShelfDetector
from edge.config import DetectorConfig

CFG = DetectorConfig(settle_samples=18, settle_sd_g=4.0, min_delta_g=12.0, neighbour_plates=1)


def _hand(level: float, n: int, amplitude: float = 120.0) -> list[tuple[float, int]]:
    """``n`` batches of a hand pressing on a plate resting at ``level``."""
    return [(level + amplitude * ((i % 5) - 2) / 2, 12) for i in range(n)]


def _run(shelf: ShelfDetector, plate_levels, seed: int):
    """plate_levels: per plate a list of (level, samples) segments of equal total length."""
    rng = random.Random(seed)
    streams = [
        [lvl + rng.gauss(0, 1.5) for lvl, n in levels for _ in range(n)] for levels in plate_levels
    ]
    assert len({len(s) for s in streams}) == 1
    events = []
    for i in range(0, len(streams[0]) - 11, 12):
        events += shelf.feed([s[i : i + 12] for s in streams], i * 1000 // 60, 60)
    return events


def test_a_small_share_on_a_neighbour_is_counted_once_even_if_it_creeps_on():
    """A share below min_delta (reported as a small move and counted in the item's
    event) is the plate's new level: a later creep past min_delta is no second event."""
    hand = 10  # batches (2 s) of a hand on both plates
    events = _run(
        ShelfDetector("shelf", 3, CFG),
        [
            [(1000, 240), *_hand(1000, hand), (988.6, 30), (987.0, 930)],
            [(2000, 240), *_hand(2000, hand), (1910.0, 960)],
            [(500, 240 + hand * 12 + 960)],
        ],
        seed=11,
    )
    assert len(events) == 1, events
    assert events[0].plates == (0, 1)
    assert abs(events[0].delta_g - (-101.4)) < 4


def test_an_item_across_three_plates_whose_middle_plate_took_almost_nothing():
    """The middle plate moved less than a small move, but the hand was on it: the two
    outer changes are one item."""
    hand = 8
    events = _run(
        ShelfDetector("shelf", 4, CFG),
        [
            [(1000, 240), *_hand(1000, hand), (970.0, 600)],
            [(800, 240), *_hand(800, hand, 60.0), (799.0, 600)],
            [(1200, 240), *_hand(1200, hand), (1160.0, 600)],
            [(300, 240 + hand * 12 + 600)],
        ],
        seed=12,
    )
    assert len(events) == 1, events
    assert events[0].plates == (0, 2)
    assert abs(events[0].delta_g - (-70)) < 4


def test_changes_two_plates_apart_with_nobody_between_stay_apart():
    """Two grabs at the same time from plates 0 and 2 with plate 1 untouched: two items."""
    hand = 8
    events = _run(
        ShelfDetector("shelf", 3, CFG),
        [
            [(1000, 240), *_hand(1000, hand), (970.0, 600)],
            [(800, 240 + hand * 12 + 600)],
            [(1200, 240), *_hand(1200, hand), (1160.0, 600)],
        ],
        seed=13,
    )
    assert sorted((e.plates, round(e.delta_g / 10)) for e in events) == [((0,), -3), ((2,), -4)]


def test_a_drift_step_merged_into_a_neighbours_event_does_not_shift_the_plate_twice():
    """Plate 0 steps 5 g without a hand (drift its baseline already follows) as plate 1's
    item goes: merged into that event, it must not move plate 0's baseline again."""
    hand = 8
    step = [(1000 - 5 * i / 6, 1) for i in range(6)]  # 5 g within a tenth of a second
    shelf = ShelfDetector("shelf", 3, CFG)
    events = _run(
        shelf,
        [
            [(1000, 240 + hand * 12 - 6), *step, (995, 24)],
            [(2000, 240), *_hand(2000, hand), (1880.0, 24)],
            [(500, 240 + hand * 12 + 24)],
        ],
        seed=14,
    )
    assert [e.plates for e in events] == [(0, 1)]
    # right when the event is out (a doubled shift would show here, then come back as a
    # phantom small move of the opposite sign)
    assert shelf.plates[0].baseline_g is not None
    assert abs(shelf.plates[0].baseline_g - 995) < 2
