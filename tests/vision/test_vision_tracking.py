"""The tracker on synthetic trajectories: identity switches are counted, not eyeballed."""

from __future__ import annotations

import numpy as np
import pytest

from vision.config import TrackerConfig
from vision.detectors import Detection
from vision.tracking import Tracker, assignment_cost


def _box(cx: float, cy: float, w: float = 40, h: float = 90) -> tuple[float, float, float, float]:
    return (cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2)


def _run(
    paths: list[list[tuple[float, float] | None]],
    *,
    seed: int = 0,
    noise: float = 2.0,
    false_positive_rate: float = 0.0,
    config: TrackerConfig | None = None,
) -> tuple[int, float, int]:
    """Feed the paths (None: missed detection); (id switches, coverage, distinct ids)."""
    rng = np.random.default_rng(seed)
    tracker = Tracker(config or TrackerConfig(min_hits=2, max_age=10))
    last_id: dict[int, int] = {}
    switches = 0
    covered = present = 0
    ids: set[int] = set()
    frames = len(paths[0])
    for f in range(frames):
        dets: list[Detection] = []
        truth: list[tuple[int, tuple[float, float, float, float]]] = []
        for k, path in enumerate(paths):
            p = path[f]
            if p is None:
                continue
            box = _box(p[0] + rng.normal(0, noise), p[1] + rng.normal(0, noise))
            truth.append((k, _box(*p)))
            dets.append(Detection(box, 0.9))
        if rng.random() < false_positive_rate:
            dets.append(Detection(_box(rng.uniform(0, 600), rng.uniform(0, 300), 30, 30), 0.5))
        tracks = tracker.update(dets)
        for k, gt in truth:
            present += 1
            if not tracks:
                continue
            cost = assignment_cost(np.array([gt]), np.array([t.box for t in tracks]))[0]
            j = int(np.argmin(cost))
            if cost[j] > 0.7:  # IoU under 0.3: not this object's track
                continue
            covered += 1
            tid = tracks[j].id
            ids.add(tid)
            if k in last_id and last_id[k] != tid:
                switches += 1
            last_id[k] = tid
    return switches, covered / max(present, 1), len(ids)


def _line(x0: float, y0: float, vx: float, vy: float, n: int) -> list[tuple[float, float] | None]:
    return [(x0 + vx * i, y0 + vy * i) for i in range(n)]


def test_two_shoppers_crossing_keep_their_ids() -> None:
    a = _line(50, 150, 8, 0.5, 60)
    b = _line(530, 170, -8, -0.5, 60)
    switches, coverage, ids = _run([a, b])
    assert switches == 0
    assert ids == 2
    assert coverage > 0.9


def test_ids_survive_missed_detections_and_clutter() -> None:
    a = _line(50, 100, 6, 1, 80)
    b = _line(550, 250, -5, -1, 80)
    c = _line(300, 40, 0.5, 3, 80)
    rng = np.random.default_rng(3)
    for path in (a, b, c):
        for i in range(len(path)):
            if rng.random() < 0.15:
                path[i] = None  # the detector missed them in this frame
    switches, coverage, ids = _run([a, b, c], false_positive_rate=0.2, seed=4)
    assert switches <= 1
    assert ids <= 4
    assert coverage > 0.8


def test_a_fast_shopper_close_to_the_camera_is_one_track() -> None:
    # Moves more than their own width per frame (no overlap between frames).
    fast = _line(40, 180, 45, 0, 14)
    switches, coverage, ids = _run([fast], noise=1.0)
    assert (switches, ids) == (0, 1)
    assert coverage > 0.85


def test_track_coasts_then_ends_and_ids_are_never_reused() -> None:
    tracker = Tracker(TrackerConfig(min_hits=2, max_age=3, report_coasting=2))
    box = _box(100, 100)
    assert tracker.update([Detection(box, 0.9)]) == []  # not confirmed yet
    first = tracker.update([Detection(box, 0.9)])
    assert [t.id for t in first] == [1]
    reported = [len(tracker.update([])) for _ in range(5)]
    assert reported == [1, 1, 0, 0, 0]  # coasts two frames, then dropped
    tracker.update([Detection(box, 0.9)])
    again = tracker.update([Detection(box, 0.9)])
    assert [t.id for t in again] == [2]


@pytest.mark.parametrize("min_hits", [1, 3])
def test_min_hits_delays_reporting(min_hits: int) -> None:
    tracker = Tracker(TrackerConfig(min_hits=min_hits))
    counts = [len(tracker.update([Detection(_box(100, 100), 0.9)])) for _ in range(4)]
    assert counts.index(1) == min_hits - 1
