"""Frames from cameras: video files, RTSP/HTTP streams, USB devices (OpenCV), and JPEG
frames pushed in from elsewhere (a simulated camera over MQTT: the MQTT side lives in
``edge``/``firmware_sim``; here it is a queue).

Every camera runs in its own :class:`CameraWorker` thread.  A reader thread does the
blocking reads, so a stream that stops delivering (a dead RTSP server, an unplugged
camera) is noticed after ``stall_timeout_s`` and reopened with a growing back-off; a
source that cannot be opened at all is reported with a clear error, and the other
cameras' workers are not affected.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import cv2
import numpy as np

from vision.detectors.base import Image

logger = logging.getLogger(__name__)


class CaptureError(RuntimeError):
    """A camera source that cannot be opened or read; the message says which and why."""


class NoFrameYet(Exception):
    """A live source had no frame within its poll interval (the worker keeps waiting)."""


@dataclass(frozen=True, slots=True)
class Frame:
    image: Image
    ts_ms: int
    index: int


class FrameSource(Protocol):
    name: str
    #: True for recordings: the end of the file is the end, not a stall.
    finite: bool

    def open(self) -> None: ...

    def read(self) -> Frame | None:
        """The next frame; None at the end of a recording (or of a pushed stream)."""
        ...

    def close(self) -> None: ...


def _is_url(source: str) -> bool:
    return "://" in source


class OpenCvSource:
    """A video file, a stream URL (rtsp://, http://) or ``usb:N`` through OpenCV."""

    def __init__(self, source: str, *, name: str | None = None, open_timeout_s: float = 5.0):
        self.source = source
        self.name = name or source
        self.finite = not (_is_url(source) or source.startswith("usb:"))
        self.open_timeout_s = open_timeout_s
        self._cap: cv2.VideoCapture | None = None
        self._index = 0
        self.fps: float | None = None
        self.size: tuple[int, int] | None = None
        self.frame_count: int | None = None

    def open(self) -> None:
        src = self.source
        if src.startswith("usb:"):
            try:
                device = int(src[4:])
            except ValueError:
                raise CaptureError(
                    f"{self.name}: 'usb:' needs a device number, got {src!r}"
                ) from None
            cap = cv2.VideoCapture(device)
        elif _is_url(src):
            timeout_ms = int(self.open_timeout_s * 1000)
            params = [
                cv2.CAP_PROP_OPEN_TIMEOUT_MSEC,
                timeout_ms,
                cv2.CAP_PROP_READ_TIMEOUT_MSEC,
                timeout_ms,
            ]
            cap = cv2.VideoCapture(src, cv2.CAP_FFMPEG, params)
        else:
            path = Path(src)
            if not path.is_file():
                raise CaptureError(f"{self.name}: video file {src} does not exist")
            cap = cv2.VideoCapture(str(path))
        if not cap.isOpened():
            cap.release()
            what = "stream" if _is_url(src) else "device" if src.startswith("usb:") else "video"
            raise CaptureError(
                f"{self.name}: cannot open {what} {src!r} (unreachable, not a video, "
                "or a codec OpenCV lacks)"
            )
        fps = cap.get(cv2.CAP_PROP_FPS)
        self.fps = float(fps) if fps and fps > 0 else None
        count = cap.get(cv2.CAP_PROP_FRAME_COUNT)
        self.frame_count = int(count) if self.finite and count and count > 0 else None
        self._cap = cap
        self._index = 0

    def read(self) -> Frame | None:
        if self._cap is None:
            raise CaptureError(f"{self.name}: read before open")
        ok, image = self._cap.read()
        if not ok or image is None:
            if self.finite and self._index == 0:
                raise CaptureError(f"{self.name}: {self.source!r} has no readable frame (corrupt?)")
            return None
        if self.size is None:
            self.size = (int(image.shape[1]), int(image.shape[0]))
        if self.finite and self.fps:
            ts = int(self._index * 1000 / self.fps)
        else:
            ts = int(time.time() * 1000)
        frame = Frame(np.asarray(image, dtype=np.uint8), ts, self._index)
        self._index += 1
        return frame

    def close(self) -> None:
        if self._cap is not None:
            self._cap.release()
            self._cap = None


class PushSource:
    """Frames pushed in as JPEG bytes (``feed``), e.g. by an MQTT subscriber."""

    def __init__(self, name: str, *, max_queue: int = 4) -> None:
        self.name = name
        self.finite = False
        self._queue: queue.Queue[tuple[bytes, int] | None] = queue.Queue(max_queue)
        self._index = 0
        self.dropped = 0
        self.bad = 0

    def open(self) -> None:
        return None

    def feed(self, jpeg: bytes, ts_ms: int) -> None:
        """Hand in one frame; when the worker is behind, the oldest waiting frame drops."""
        while True:
            try:
                self._queue.put_nowait((jpeg, ts_ms))
                return
            except queue.Full:
                try:
                    self._queue.get_nowait()
                    self.dropped += 1
                except queue.Empty:
                    pass

    def end(self) -> None:
        self._queue.put(None)

    def read(self, poll_s: float = 0.5) -> Frame | None:
        while True:
            try:
                item = self._queue.get(timeout=poll_s)
            except queue.Empty:
                raise NoFrameYet from None
            if item is None:
                return None
            jpeg, ts = item
            image = cv2.imdecode(np.frombuffer(jpeg, dtype=np.uint8), cv2.IMREAD_COLOR)
            if image is None:
                self.bad += 1
                logger.warning("%s: a frame that is not a JPEG was dropped", self.name)
                continue
            frame = Frame(np.asarray(image, dtype=np.uint8), ts, self._index)
            self._index += 1
            return frame

    def close(self) -> None:
        return None


def open_source(source: str, name: str) -> FrameSource:
    """The source for a camera config's ``source`` (``mqtt:`` sources are made by the caller)."""
    if source.startswith("mqtt:"):
        raise CaptureError(f"{name}: mqtt sources are fed by the MQTT side (PushSource)")
    return OpenCvSource(source, name=name)


def sample_ahead(path: str, count: int, span_s: float = 30.0) -> list[Image]:
    """``count`` frames spread over the first ``span_s`` seconds of a recording."""
    if count <= 0:
        return []
    cap = cv2.VideoCapture(path)
    try:
        if not cap.isOpened():
            return []
        fps = cap.get(cv2.CAP_PROP_FPS) or 10.0
        total = int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        last = min(total, int(span_s * fps)) if total > 0 else int(span_s * fps)
        wanted = set(np.linspace(0, max(last - 1, 0), count).astype(int).tolist())
        out: list[Image] = []
        for i in range(max(wanted) + 1):
            ok = cap.grab()  # grab every frame: seeking is unreliable in many codecs
            if not ok:
                break
            if i in wanted:
                ok, image = cap.retrieve()
                if ok:
                    out.append(np.asarray(image, dtype=np.uint8))
        return out
    finally:
        cap.release()


def iter_frames(source: FrameSource) -> Iterator[Frame]:
    source.open()
    try:
        while (frame := source.read()) is not None:
            yield frame
    finally:
        source.close()


# --------------------------------------------------------------------------- workers

FrameHandler = Callable[[str, Frame], None]


@dataclass(slots=True)
class WorkerStatus:
    name: str
    state: str = "starting"  # starting, running, stalled, reopening, failed, finished
    frames: int = 0
    reopens: int = 0
    stalls: int = 0
    last_error: str | None = None
    last_frame_monotonic: float | None = None


class CameraWorker:
    """One camera: opens its source, reads frames in a reader thread, hands each to
    ``handler`` (the camera's pipeline) in this worker's thread, and reopens the source
    when it stalls or breaks.  ``max_failures`` consecutive failed opens give up."""

    def __init__(
        self,
        name: str,
        make_source: Callable[[], FrameSource],
        handler: FrameHandler,
        *,
        stall_timeout_s: float = 5.0,
        backoff_s: float = 1.0,
        backoff_max_s: float = 30.0,
        max_failures: int | None = None,
        max_fps: float | None = None,
        pace_recordings: bool = True,
    ) -> None:
        self.name = name
        self.pace_recordings = pace_recordings
        self._make_source = make_source
        self._handler = handler
        self.stall_timeout_s = stall_timeout_s
        self.backoff_s = backoff_s
        self.backoff_max_s = backoff_max_s
        self.max_failures = max_failures
        self.min_interval_s = 1.0 / max_fps if max_fps else 0.0
        self.status = WorkerStatus(name)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"camera-{name}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self._thread.join(timeout)

    def join(self, timeout: float | None = None) -> None:
        self._thread.join(timeout)

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def _run(self) -> None:
        failures = 0
        backoff = self.backoff_s
        while not self._stop.is_set():
            source = self._make_source()
            try:
                source.open()
            except CaptureError as exc:
                failures += 1
                self.status.state = "failed"
                self.status.last_error = str(exc)
                logger.error("%s", exc)  # the message names the camera
                if self.max_failures is not None and failures >= self.max_failures:
                    return
                if self._stop.wait(backoff):
                    return
                backoff = min(backoff * 2, self.backoff_max_s)
                self.status.reopens += 1
                continue
            outcome = self._pump(source)
            if outcome == "finished":
                self.status.state = "finished"
                return
            if outcome == "stopped":
                return
            if outcome == "error":
                failures += 1
                if self.max_failures is not None and failures >= self.max_failures:
                    self.status.state = "failed"
                    return
            else:
                failures = 0
                backoff = self.backoff_s
            self.status.state = "reopening"
            self.status.reopens += 1
            if self._stop.wait(backoff):
                return
            backoff = min(backoff * 2, self.backoff_max_s)

    @staticmethod
    def _read_into(
        source: FrameSource, frames: queue.Queue[Frame | Exception | None], halt: threading.Event
    ) -> None:
        """The reader thread.  It owns the source: a blocked read is never closed under
        its feet (a dead stream's read may block long after the worker moved on)."""
        try:
            while not halt.is_set():
                try:
                    frame = source.read()
                except NoFrameYet:
                    continue
                while not halt.is_set():
                    try:
                        frames.put(frame, timeout=0.2)
                        break
                    except queue.Full:
                        continue
                if frame is None:
                    return
        except Exception as exc:  # handed to the worker thread, which reports it
            with contextlib.suppress(queue.Full):
                frames.put(exc, timeout=1.0)
        finally:
            source.close()

    def _pump(self, source: FrameSource) -> str:
        """Frames until the end, a stall or an error: 'finished', 'stalled', 'error', 'stopped'."""
        frames: queue.Queue[Frame | Exception | None] = queue.Queue(maxsize=2)
        halt = threading.Event()
        thread = threading.Thread(
            target=self._read_into,
            args=(source, frames, halt),
            name=f"camera-{self.name}-reader",
            daemon=True,
        )
        thread.start()
        self.status.state = "running"
        last_handled = 0.0
        started: float | None = None
        try:
            while not self._stop.is_set():
                try:
                    item = frames.get(timeout=self.stall_timeout_s)
                except queue.Empty:
                    self.status.stalls += 1
                    self.status.state = "stalled"
                    logger.warning(
                        "camera %s: no frame for %.1f s: reopening", self.name, self.stall_timeout_s
                    )
                    return "stalled"
                if item is None:
                    return "finished" if source.finite else "stalled"
                if isinstance(item, Exception):
                    self.status.last_error = str(item)
                    logger.error("camera %s: %s", self.name, item)
                    return "error"
                now = time.monotonic()
                if source.finite and self.pace_recordings:
                    # A recording plays at its own pace, as the camera it stands for.
                    if started is None:
                        started = now - item.ts_ms / 1000
                    delay = started + item.ts_ms / 1000 - now
                    if delay > 0 and self._stop.wait(delay):
                        return "stopped"
                    now = time.monotonic()
                elif self.min_interval_s and now - last_handled < self.min_interval_s:
                    continue
                last_handled = now
                self.status.frames += 1
                self.status.last_frame_monotonic = now
                self._handler(self.name, item)
            return "stopped"
        finally:
            halt.set()
            thread.join(timeout=1.0)  # a read blocked in a dead stream is left behind
