"""Motion gating, the foreground detector, the floor model, privacy and the config."""

from __future__ import annotations

import os
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from pydantic import ValidationError

from tests.vision.helpers import draw_person, walking_scene
from vision.config import CameraConfig, MotionConfig, PrivacyConfig, VisionConfig
from vision.detectors import FrameContext, build
from vision.detectors.plugins.foreground import ForegroundDetectorConfig
from vision.homography import CalibratedCamera, FloorHomography, load_aifi_calibration
from vision.motion import MotionDetector
from vision.pipeline import CameraPipeline, aifi_camera_id
from vision.privacy import SnapshotStore, redact

# ----------------------------------------------------------------------------- motion


def test_still_scene_has_no_motion_and_a_mover_is_found() -> None:
    frames = walking_scene(30)
    motion = MotionDetector(MotionConfig(), (320, 180))
    regions = [motion.detect(f) for f in frames]
    assert all(r == [] for r in regions[:10])  # noise only: nothing moves
    moving = regions[15]
    assert moving
    x = 20 + 5 * 6  # where the box is in frame 15
    assert any(b[0] <= x + 15 <= b[2] and b[1] <= 95 <= b[3] for b in moving)


def test_lights_switching_is_not_motion() -> None:
    base = walking_scene(1)[0]
    motion = MotionDetector(MotionConfig(), (320, 180))
    motion.detect(base)
    assert motion.detect(np.clip(base.astype(int) + 80, 0, 255).astype(np.uint8)) == []
    assert motion.lighting_changes == 1


def test_masked_motion_is_ignored() -> None:
    frames = walking_scene(30)
    mask = [[(0, 0), (320, 0), (320, 180), (0, 180)]]
    motion = MotionDetector(MotionConfig(mask=mask), (320, 180))
    assert all(motion.detect(f) == [] for f in frames)


def test_gating_skips_the_detector_in_an_empty_store() -> None:
    frames = walking_scene(40)
    pipeline = CameraPipeline(VisionConfig(), (320, 180))
    ran = [pipeline.process(f, i * 100).detector_ran for i, f in enumerate(frames)]
    assert not any(ran[:10])  # empty: only the motion image was computed
    assert all(ran[12:40])
    assert pipeline.stats.detector_runs < len(frames)


# ----------------------------------------------------------------------------- foreground


def test_foreground_detector_finds_the_walker_and_tracker_follows() -> None:
    frames = walking_scene(40)
    pipeline = CameraPipeline(VisionConfig(), (320, 180))
    results = [pipeline.process(f, i * 100) for i, f in enumerate(frames)]
    for i in range(14, 40):
        x = 20 + (i - 10) * 6
        dets = results[i].detections
        assert len(dets) == 1, i
        x1, y1, x2, y2 = dets[0].box
        # Holds the walker (a cold background model may trail a ghost behind them).
        assert x1 <= x + 6, i
        assert abs(x2 - (x + 30)) <= 6, i
        assert abs(y1 - 50) <= 6, i
        assert abs(y2 - 140) <= 6, i
        assert x2 - x1 <= 30 + 6 * 6, i
    ids = {t.track.id for r in results[14:] for t in r.tracks}
    assert ids == {1}


def test_foreground_priming_finds_someone_present_from_the_first_frame() -> None:
    rng = np.random.default_rng(2)
    floor = cv2.GaussianBlur(rng.integers(90, 170, (180, 320, 3), dtype=np.uint8), (7, 7), 0)
    frames = []
    for i in range(30):
        img = floor.copy()
        x = 100 + (i % 3)  # stands nearly still where the clip begins, leaves at 20
        if i < 20:
            draw_person(img, x, 40)
        frames.append(img)
    ahead = frames[::2] + [floor] * 10  # sampled over the recording: mostly empty
    primed = build(ForegroundDetectorConfig(min_area=0.002))
    primed.prime(ahead)
    cold = build(ForegroundDetectorConfig(min_area=0.002))
    ctx = FrameContext(index=0, ts_ms=0)
    assert primed.detect(frames[0], ctx)  # the median knows the empty floor
    assert cold.detect(frames[0], ctx) == []  # a cold model takes them for background


# ----------------------------------------------------------------------------- floor


def _camera(size: tuple[int, int] = (640, 360)) -> CalibratedCamera:
    """2.5 m up at (2, -3), looking down at 40 degrees towards +y, no distortion."""
    tilt = np.deg2rad(40)
    # Camera axes in the world: x right (+x), z forward-down, y = z cross x.
    z = np.array([0.0, np.cos(tilt), -np.sin(tilt)])
    x = np.array([1.0, 0.0, 0.0])
    y = np.cross(z, x)
    k = np.array([[500.0, 0, size[0] / 2], [0, 500.0, size[1] / 2], [0, 0, 1]])
    return CalibratedCamera(
        camera_matrix=k,
        dist_coeffs=np.zeros(5),
        rotation=np.column_stack([x, y, z]),
        position=np.array([2.0, -3.0, 2.5]),
        size=size,
        floor_box=(0.0, -2.0, 4.0, 2.0),
    )


def test_pixels_map_to_the_floor_and_back() -> None:
    cam = _camera()
    points = np.array([[1.5, -0.5, 0.0], [2.0, 0.0, 0.0], [3.0, 1.0, 0.0]])
    pix, front = cam.project(points)
    assert front.all()
    for (u, v), p in zip(pix, points, strict=True):
        assert cam.pixel_to_floor(u, v) == pytest.approx(tuple(p[:2]), abs=1e-6)
    homography = cam.floor_homography()
    assert homography.pixel_to_floor(*pix[1]) == pytest.approx((2.0, 0.0), abs=1e-6)
    fitted = FloorHomography.fit(
        [
            tuple(p)
            for p in cam.project(
                np.array([[1, -1, 0], [3, -1, 0], [3, 1, 0], [1, 1, 0]], dtype=float)
            )[0]
        ],
        [(1, -1), (3, -1), (3, 1), (1, 1)],
    )
    assert fitted.pixel_to_floor(*pix[0]) == pytest.approx((1.5, -0.5), abs=1e-6)


def test_plausibility_prefers_a_person_sized_box_on_the_floor() -> None:
    cam = _camera()
    person = cam.person_box(2.0, 0.0)
    assert person is not None
    assert cam.plausibility(person) > 0.8
    x1, _y1, _x2, y2 = person
    tiny = (x1, y2 - 5, x1 + 5, y2)
    assert cam.plausibility(tiny) < 0.2
    # A box whose feet are far off the store floor: not a shopper in the store.
    off = cam.project(np.array([[2.0, 6.0, 0.0]]))[0][0]
    assert cam.plausibility((off[0] - 5, off[1] - 40, off[0] + 5, off[1])) == 0.0


def test_aifi_calibration_puts_the_passer_by_outside_the_store(aifi: Path) -> None:
    cam = load_aifi_calibration(aifi / "store_meta" / "calibration.json", "1", (640, 360))
    assert cam.position[2] == pytest.approx(2.43, abs=0.05)  # ceiling height, metres
    inside = cam.pixel_to_floor(355, 305)  # the shopper's feet, frame 75
    outside = cam.pixel_to_floor(190, 120)  # behind the glass wall, frame 300
    assert inside is not None
    assert cam.on_floor(*inside)
    assert outside is not None
    assert not cam.on_floor(*outside, margin=0.3)
    with pytest.raises(ValueError, match="no camera '99'"):
        load_aifi_calibration(aifi / "store_meta" / "calibration.json", "99", (640, 360))


def test_camera_id_from_the_file_name() -> None:
    assert aifi_camera_id("video/cps-test-01-cam3.mp4") == "3"
    assert aifi_camera_id("/x/CAM_12.avi") == "12"
    assert aifi_camera_id("door.mp4") is None


# ----------------------------------------------------------------------------- privacy


def _face_scene() -> tuple[np.ndarray, tuple[float, float, float, float]]:
    rng = np.random.default_rng(5)
    img = rng.integers(0, 255, (120, 160, 3), dtype=np.uint8)
    return img, (40.0, 10.0, 100.0, 110.0)


def _detail(img: np.ndarray) -> float:
    """High-frequency content: what identifies a face."""
    gray = cv2.cvtColor(np.ascontiguousarray(img), cv2.COLOR_BGR2GRAY)
    return float(cv2.Laplacian(gray, cv2.CV_64F).std())


def test_no_frame_is_written_by_default(tmp_path: Path) -> None:
    store = SnapshotStore(PrivacyConfig(directory=tmp_path / "snaps"))
    img, person = _face_scene()
    assert store.save("cam-1", 1, img, [person]) is None
    assert not (tmp_path / "snaps").exists()


@pytest.mark.parametrize("mode", ["blur_faces", "blur_people"])
def test_snapshots_are_blurred(tmp_path: Path, mode: str) -> None:
    store = SnapshotStore(PrivacyConfig(snapshots=mode, directory=tmp_path))
    img, person = _face_scene()
    path = store.save("cam-1", 1, img, [person])
    assert path is not None
    assert path.is_file()
    kept = redact(img, [person], mode)
    head = (slice(10, 40), slice(40, 100))  # the top third of the person: their head
    assert _detail(kept[head]) < _detail(img[head]) / 10  # the detail is gone
    outside = (slice(0, 120), slice(110, 160))
    assert np.array_equal(kept[outside], img[outside])  # the rest untouched
    body = (slice(60, 110), slice(40, 100))
    blurred_body = _detail(kept[body]) < _detail(img[body]) / 10
    assert blurred_body == (mode == "blur_people")


def test_snapshot_retention_is_bounded(tmp_path: Path) -> None:
    store = SnapshotStore(
        PrivacyConfig(snapshots="blur_people", directory=tmp_path, max_snapshots=3, max_age_s=60)
    )
    img, person = _face_scene()
    paths = [store.save("cam-1", ts, img, [person]) for ts in range(5)]
    for i, p in enumerate(paths):
        assert p is not None
        t = time.time() - 10 + i
        if p.exists():
            os.utime(p, (t, t))
    assert [p.name for p in store.snapshots()] == ["cam-1-2.jpg", "cam-1-3.jpg", "cam-1-4.jpg"]
    old = tmp_path / "cam-1-3.jpg"
    os.utime(old, (time.time() - 3600, time.time() - 3600))
    store.save("cam-1", 9, img, [person])
    names = [p.name for p in store.snapshots()]
    assert "cam-1-3.jpg" not in names
    assert "cam-1-9.jpg" in names
    assert len(names) <= 3


# ----------------------------------------------------------------------------- config


def test_detector_plugin_is_chosen_by_type(tmp_path: Path) -> None:
    cfg = VisionConfig.model_validate({"detector": {"type": "onnx", "model": "m.onnx"}})
    assert cfg.detector.type == "onnx"
    assert VisionConfig().detector.type == "foreground"
    with pytest.raises(ValidationError, match=r"extra_forbidden|Extra inputs"):
        VisionConfig.model_validate({"detector": {"type": "foreground", "histroy": 5}})
    with pytest.raises(ValidationError, match=r"union_tag_invalid|does not match any"):
        VisionConfig.model_validate({"detector": {"type": "magic"}})
    with pytest.raises(ValidationError, match="unique"):
        VisionConfig(
            cameras=[CameraConfig(name="c", source="a"), CameraConfig(name="c", source="b")]
        )


def test_gateway_config_has_a_vision_section() -> None:
    from edge.config import parse_config  # noqa: PLC0415

    cfg = parse_config(
        {
            "store_id": "s1",
            "planogram": "planogram.yaml",
            "gates": [{"device_id": "g", "direction": "entry"}],
            "vision": {
                "detector": {"type": "foreground", "history": 300},
                "cameras": [{"name": "cam-1", "source": "usb:0"}],
            },
        },
        base_dir=Path("."),
        env={},
    )
    assert cfg.vision.cameras[0].source == "usb:0"
    assert cfg.vision.privacy.snapshots == "off"
