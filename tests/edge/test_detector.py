import random

from edge.checkout.detector import PlateDetector, ShelfDetector
from edge.config import DetectorConfig

CFG = DetectorConfig(settle_samples=18, settle_sd_g=4.0, min_delta_g=12.0)
PERIOD = 1000 / 60


def _stream(levels, rng, noise=1.5):
    """(level_g, n_samples) segments -> batches of 12 noisy samples."""
    samples = [lvl + rng.gauss(0, noise) for lvl, n in levels for _ in range(n)]
    return [samples[i : i + 12] for i in range(0, len(samples) - 11, 12)]


def _run(detector, batches):
    events = []
    for i, batch in enumerate(batches):
        ev = detector.feed(batch, int(i * 200), PERIOD)
        if ev:
            events.append(ev)
    return events


def test_settled_step_is_one_event_with_the_right_delta():
    rng = random.Random(1)
    events = _run(PlateDetector("s", 0, CFG), _stream([(1000, 120), (650, 120)], rng))
    assert len(events) == 1
    assert abs(events[0].delta_g - (-350)) < 3


def test_hand_transient_does_not_make_extra_events():
    rng = random.Random(2)
    wobble = [(1000 + 150 * ((i % 7) - 3), 3) for i in range(10)]  # 0.5 s of hand pressure
    batches = _stream([(1000, 120), *wobble, (1104, 120)], rng)
    events = _run(PlateDetector("s", 0, CFG), batches)
    assert [round(e.delta_g / 104) for e in events] == [1]


def test_slow_drift_is_absorbed():
    rng = random.Random(3)
    drift = [(1000 + i * 0.05, 1) for i in range(1200)]  # 60 g over 20 s, slowly
    events = _run(PlateDetector("s", 0, CFG), _stream(drift, rng))
    assert events == []


def test_in_motion_while_unsettled():
    rng = random.Random(4)
    det = PlateDetector("s", 0, CFG)
    _run(det, _stream([(500, 60)], rng))
    assert not det.in_motion
    det.feed([500, 900, 300, 800, 200, 700, 400, 900, 100, 600, 500, 800], 10_000, PERIOD)
    assert det.in_motion


def test_shelf_reports_plates_separately():
    rng = random.Random(5)
    a = [x for b in _stream([(1000, 120), (1000, 120)], rng) for x in b]
    b = [x for b in _stream([(800, 120), (1500, 120)], rng) for x in b]
    shelf = ShelfDetector("shelf", 2, CFG)
    events = []
    for i in range(0, len(a) - 11, 12):
        events += shelf.feed([a[i : i + 12], b[i : i + 12]], i * 1000 // 60, 60)
    assert [e.plates for e in events] == [(1,)]
    assert abs(events[0].delta_g - 700) < 3


def _shelf_run(shelf, plate_levels, rng):
    """plate_levels: per plate a list of (level, n) segments of equal total length."""
    streams = [[x for b in _stream(levels, rng) for x in b] for levels in plate_levels]
    events = []
    for i in range(0, len(streams[0]) - 11, 12):
        events += shelf.feed([s[i : i + 12] for s in streams], i * 1000 // 60, 60)
    return events


def test_an_item_across_two_plates_is_one_shelf_event():
    rng = random.Random(6)
    shelf = ShelfDetector("shelf", 4, CFG)
    events = _shelf_run(
        shelf,
        [[(900, 240)], [(1000, 120), (820, 120)], [(700, 120), (530, 120)], [(400, 240)]],
        rng,
    )
    assert len(events) == 1
    assert events[0].plates == (1, 2)
    assert abs(events[0].delta_g - (-350)) < 4


def test_an_item_moved_to_the_next_plate_is_one_event_that_nets_to_nothing():
    """Not a pick and not a put-back: the engine tells a move (one shopper: the live
    planogram learns) from a put-back and a pick at once (two hands) by the hands."""
    rng = random.Random(7)
    shelf = ShelfDetector("shelf", 3, CFG)
    events = _shelf_run(
        shelf, [[(1000, 120), (650, 120)], [(500, 120), (850, 120)], [(300, 240)]], rng
    )
    [event] = events
    assert event.plates == (0, 1)
    assert abs(event.delta_g) < CFG.min_delta_g
    moved = event.moved(CFG.min_delta_g)
    assert moved is not None
    assert [m.plates for m in moved] == [(0,), (1,)]


def test_changes_on_distant_plates_stay_apart():
    rng = random.Random(8)
    shelf = ShelfDetector("shelf", 6, CFG)
    events = _shelf_run(
        shelf,
        [
            [(1000, 120), (650, 120)],
            [(500, 240)],
            [(500, 240)],
            [(500, 240)],
            [(500, 240)],
            [(800, 120), (1004, 120)],
        ],
        rng,
    )
    assert sorted((e.plates, round(e.delta_g / 10)) for e in events) == [((0,), -35), ((5,), 20)]
