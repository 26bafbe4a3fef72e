"""The configured pipeline on real ceiling-camera footage of the AiFi Nanostore, against
frames labelled by hand (tests/vision/fixtures/aifi_cps_test_01.json).  Skipped where the
dataset is absent."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from edge.cli import app
from vision.capture import OpenCvSource
from vision.config import VisionConfig
from vision.pipeline import FrameResult, pipeline_for_source

#: A detection counts for a labelled person when most of it lies on them.
ON_PERSON = 0.3


def _on(det: tuple[float, ...], box: list[float]) -> float:
    x1, y1 = max(det[0], box[0]), max(det[1], box[1])
    x2, y2 = min(det[2], box[2]), min(det[3], box[3])
    inter = max(0.0, x2 - x1) * max(0.0, y2 - y1)
    return inter / max((det[2] - det[0]) * (det[3] - det[1]), 1e-6)


def _run(aifi: Path, video: dict[str, Any], **overrides: Any) -> list[FrameResult]:
    cfg = VisionConfig.model_validate(
        {
            **overrides,
            "calibration": str(aifi / "store_meta" / "calibration.json"),
            "cameras": [
                {
                    "name": "cam",
                    "source": str(aifi / video["file"]),
                    "calibration_id": video["camera_id"],
                }
            ],
        }
    )
    camera = cfg.cameras[0]
    pipeline, frames = pipeline_for_source(cfg, OpenCvSource(camera.source), camera=camera)
    return [pipeline.process(image, ts) for image, ts in frames]


@pytest.fixture(scope="module")
def results(aifi: Path, footage_labels: dict[str, Any]) -> dict[str, list[FrameResult]]:
    return {cam: _run(aifi, v) for cam, v in footage_labels["videos"].items()}


def test_people_found_in_most_labelled_frames(
    results: dict[str, list[FrameResult]], footage_labels: dict[str, Any]
) -> None:
    hits, total, missed = 0, 0, []
    for cam, video in footage_labels["videos"].items():
        for label in video["frames"]:
            if not label["person"]:
                continue
            total += 1
            dets = [d.box for d in results[cam][label["frame"]].detections]
            if any(_on(d, b) >= ON_PERSON for d in dets for b in label["boxes"]):
                hits += 1
            else:
                missed.append(f"{cam}#{label['frame']}")
    assert total >= 15
    assert hits / total >= 0.8, f"missed {missed}"


def test_nothing_reported_where_the_store_is_empty(
    results: dict[str, list[FrameResult]], footage_labels: dict[str, Any]
) -> None:
    reported = []
    empty = 0
    for cam, video in footage_labels["videos"].items():
        for label in video["frames"]:
            if label["person"]:
                continue
            empty += 1
            r = results[cam][label["frame"]]
            if r.detections or r.tracks:
                reported.append(f"{cam}#{label['frame']}: {[d.box for d in r.detections]}")
    assert empty >= 15
    assert reported == []


def test_a_shopper_walking_through_keeps_few_track_ids(
    results: dict[str, list[FrameResult]],
) -> None:
    # cam1: one shopper in view for ~20 s (frames 0-200), walking and turning.
    ids = [t.track.id for r in results["cam1"][:200] for t in r.tracks]
    assert len(ids) >= 150  # tracked most of the time
    assert len(set(ids)) <= 4
    # ...and their floor positions lie in the store (world_ltrb, metres), or at its edge
    # where the shopper walks out of the picture.
    floors = [t.floor for r in results["cam1"][:200] for t in r.tracks if t.floor]
    assert floors
    assert all(-2.6 <= x <= 6.8 and -3.8 <= y <= 2.4 for x, y in floors)
    inside = [(x, y) for x, y in floors if -1.63 <= x <= 5.77 and -2.8 <= y <= 1.43]
    assert len(inside) / len(floors) > 0.9


def test_without_calibration_the_person_behind_the_glass_is_reported(
    aifi: Path, footage_labels: dict[str, Any]
) -> None:
    """What the floor model buys: without it, the passer-by outside the store counts."""
    video = footage_labels["videos"]["cam1"]
    cfg = VisionConfig()
    source = OpenCvSource(str(aifi / video["file"]))
    pipeline, frames = pipeline_for_source(cfg, source)
    results = [pipeline.process(image, ts) for image, ts in frames]
    outside = [f["frame"] for f in video["frames"] if "outside" in f.get("note", "")]
    assert sum(bool(results[i].detections) for i in outside) >= len(outside) // 2


def test_vision_run_json_on_real_footage(aifi: Path) -> None:
    video = aifi / "video" / "cps-test-01-cam3.mp4"
    out = CliRunner().invoke(
        app, ["vision", "run", "--video", str(video), "--json", "--max-frames", "60"]
    )
    assert out.exit_code == 0, out.output
    lines = [json.loads(line) for line in out.stdout.splitlines()]
    frames, summary = lines[:-1], lines[-1]
    assert [f["frame"] for f in frames] == list(range(60))
    assert summary["type"] == "summary"
    assert summary["frames"] == 60
    assert summary["fps"] > 0
    assert summary["floor"] is True  # camera 3 of the AiFi calibration, from the file name
    with_people = [f for f in frames if f["detections"]]
    assert len(with_people) >= 30
    det = with_people[0]["detections"][0]
    assert set(det) == {"box", "score", "label"}
    assert det["label"] == "person"
    assert len(det["box"]) == 4
    assert 0 < det["score"] <= 1
    tracked = [t for f in frames for t in f["tracks"]]
    assert tracked
    assert {"id", "box", "floor"} <= set(tracked[0])
