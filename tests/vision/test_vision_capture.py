"""Capture: clear errors for bad sources, one worker per camera, stalls reopen."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from tests.integration.conftest import wait_for
from vision.capture import (
    CameraWorker,
    CaptureError,
    Frame,
    NoFrameYet,
    OpenCvSource,
    PushSource,
    iter_frames,
    sample_ahead,
)


def test_a_video_file_is_read_to_its_end(walking_video: Path) -> None:
    frames = list(iter_frames(OpenCvSource(str(walking_video))))
    assert len(frames) == 40
    assert frames[0].image.shape == (180, 320, 3)
    assert [f.ts_ms for f in frames[:3]] == [0, 100, 200]  # from the file's 10 fps


def test_sample_ahead_spreads_frames_over_the_recording(walking_video: Path) -> None:
    frames = sample_ahead(str(walking_video), 5, span_s=30.0)
    assert len(frames) == 5


def test_a_corrupt_video_is_a_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "broken.mp4"
    bad.write_bytes(np.random.default_rng(0).bytes(50_000))
    with pytest.raises(CaptureError, match=r"cam-x: cannot open video .*broken\.mp4"):
        list(iter_frames(OpenCvSource(str(bad), name="cam-x")))
    with pytest.raises(CaptureError, match="does not exist"):
        OpenCvSource(str(tmp_path / "missing.mp4")).open()


@pytest.mark.timeout(30)  # not a hang: a hung open fails the test here
def test_an_unreachable_stream_is_a_clear_error() -> None:
    # Port 9 on the loopback: nothing listens, the connection is refused at once.
    source = OpenCvSource("rtsp://127.0.0.1:9/stream", name="cam-door", open_timeout_s=2.0)
    with pytest.raises(CaptureError, match=r"cam-door: cannot open stream"):
        source.open()


@pytest.mark.allow_error_logs
def test_a_broken_camera_does_not_stop_the_others(tmp_path: Path, walking_video: Path) -> None:
    bad = tmp_path / "broken.mp4"
    bad.write_bytes(b"\x00" * 1000)
    seen: dict[str, int] = {}
    lock = threading.Lock()

    def handler(name: str, frame: Frame) -> None:
        with lock:
            seen[name] = seen.get(name, 0) + 1

    good = CameraWorker(
        "cam-good", lambda: OpenCvSource(str(walking_video)), handler, pace_recordings=False
    )
    broken = CameraWorker(
        "cam-bad",
        lambda: OpenCvSource(str(bad), name="cam-bad"),
        handler,
        backoff_s=0.05,
        max_failures=2,
    )
    unreachable = CameraWorker(
        "cam-rtsp",
        lambda: OpenCvSource("rtsp://127.0.0.1:9/x", name="cam-rtsp", open_timeout_s=1.0),
        handler,
        backoff_s=0.05,
        max_failures=1,
    )
    for w in (good, broken, unreachable):
        w.start()
    for w in (good, broken, unreachable):
        w.join(timeout=60)
    assert seen.get("cam-good") == 40
    assert good.status.state == "finished"
    assert broken.status.state == "failed"
    assert "cam-bad" in (broken.status.last_error or "")
    assert unreachable.status.state == "failed"
    assert "cannot open stream" in (unreachable.status.last_error or "")
    assert "cam-bad" not in seen
    assert "cam-rtsp" not in seen


class _StallingSource:
    """Gives ``n`` frames, then blocks as a dead stream does."""

    finite = False

    def __init__(self, n: int, release: threading.Event) -> None:
        self.name = "stalling"
        self.n = n
        self.i = 0
        self.release = release

    def open(self) -> None:
        self.i = 0

    def read(self) -> Frame | None:
        if self.i >= self.n:
            self.release.wait(5)
            raise NoFrameYet
        self.i += 1
        return Frame(np.zeros((8, 8, 3), dtype=np.uint8), self.i, self.i)

    def close(self) -> None:
        return None


def test_a_recording_plays_at_its_own_pace(walking_video: Path) -> None:
    stamps: list[float] = []
    worker = CameraWorker(
        "cam-file",
        lambda: OpenCvSource(str(walking_video)),
        lambda _n, _f: stamps.append(time.monotonic()),
    )
    worker.start()
    worker.join(timeout=30)
    assert len(stamps) == 40
    assert stamps[-1] - stamps[0] >= 3.5  # 40 frames at 10 fps: about 3.9 s


def test_a_stalled_stream_is_detected_and_reopened() -> None:
    release = threading.Event()
    opened: list[_StallingSource] = []
    frames: list[int] = []

    def make() -> _StallingSource:
        src = _StallingSource(3, release)
        opened.append(src)
        return src

    worker = CameraWorker(
        "cam-stall",
        make,
        lambda _n, f: frames.append(f.index),
        stall_timeout_s=0.2,
        backoff_s=0.05,
    )
    worker.start()
    try:
        wait_for(lambda: len(opened) >= 3, what="three opens of the stalling stream")
        assert worker.status.stalls >= 2
        assert worker.status.reopens >= 2
        assert frames[:6] == [1, 2, 3, 1, 2, 3]
    finally:
        release.set()
        worker.stop()


def test_pushed_jpeg_frames_are_decoded() -> None:
    push = PushSource("cam-mqtt", max_queue=2)
    img = np.full((20, 30, 3), 200, dtype=np.uint8)
    ok, jpeg = cv2.imencode(".jpg", img)
    assert ok
    push.feed(b"not a jpeg", 1)
    push.feed(jpeg.tobytes(), 2)
    frame = push.read()
    assert frame is not None
    assert frame.image.shape == (20, 30, 3)
    assert frame.ts_ms == 2
    assert push.bad == 1
    for ts in range(5):  # the worker is behind: the oldest frames make room
        push.feed(jpeg.tobytes(), ts)
    assert push.dropped == 3
    kept = [push.read(poll_s=0.01), push.read(poll_s=0.01)]
    assert [f.ts_ms for f in kept if f is not None] == [3, 4]  # the newest two were kept
    with pytest.raises(NoFrameYet):
        push.read(poll_s=0.01)


def test_vision_run_names_a_bad_video(tmp_path: Path, walking_video: Path) -> None:
    from typer.testing import CliRunner  # noqa: PLC0415

    from edge.cli import app  # noqa: PLC0415

    bad = tmp_path / "broken.mp4"
    bad.write_bytes(b"\x00" * 5000)
    out = CliRunner().invoke(app, ["vision", "run", "--video", str(bad), "--json"])
    assert out.exit_code == 1
    assert "cannot open video" in out.output
    assert "broken.mp4" in out.output
    both = CliRunner().invoke(
        app, ["vision", "run", "--video", str(walking_video), "--source", "usb:0"]
    )
    assert both.exit_code == 2
    ok = CliRunner().invoke(app, ["vision", "run", "--video", str(walking_video)])
    assert ok.exit_code == 0
    assert "40 frames" in ok.output
