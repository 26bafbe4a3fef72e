"""One camera's frames to detections, tracks and floor positions.

Per frame: motion gating (:mod:`vision.motion`) finds where something moved; the
detector plugin runs only when something moved or a track is still alive (a shopper
who stands still keeps being looked at), else it only gets a cheap ``observe``;
detections whose feet are off the store floor are dropped (calibrated cameras);
the tracker gives stable ids; each reported track gets a floor position.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from vision.config import CameraConfig, MotionConfig, VisionConfig
from vision.detectors import Detection, Detector, FrameContext, build
from vision.detectors.base import Box, Image
from vision.homography import (
    CalibratedCamera,
    FloorHomography,
    FloorMapper,
    load_aifi_calibration,
)
from vision.motion import MotionDetector
from vision.tracking import Track, Tracker

if TYPE_CHECKING:
    from vision.capture import FrameSource as FrameSourceLike


@dataclass(frozen=True, slots=True)
class FloorTrack:
    track: Track
    floor: tuple[float, float] | None  # metres, store floor plan


@dataclass(slots=True)
class FrameResult:
    index: int
    ts_ms: int
    detections: list[Detection]
    tracks: list[FloorTrack]
    motion: list[Box]
    detector_ran: bool
    seconds: float = 0.0

    def as_json(self) -> dict[str, Any]:
        tracks = []
        for ft in self.tracks:
            item = ft.track.as_json()
            if ft.floor is not None:
                item["floor"] = [round(ft.floor[0], 3), round(ft.floor[1], 3)]
            tracks.append(item)
        return {
            "frame": self.index,
            "detections": [d.as_json() for d in self.detections],
            "tracks": tracks,
        }


@dataclass(slots=True)
class PipelineStats:
    frames: int = 0
    detector_runs: int = 0
    seconds: float = 0.0
    per_frame_s: list[float] = field(default_factory=list)


def floor_model(
    vision: VisionConfig, camera: CameraConfig | None, size: tuple[int, int]
) -> FloorMapper | None:
    """The camera's pixel -> floor mapping from the config (None when it has none)."""
    if camera is None:
        return None
    if camera.homography is not None:
        return FloorHomography(np.asarray(camera.homography, dtype=np.float64))
    if camera.calibration_id is not None and vision.calibration is not None:
        return load_aifi_calibration(vision.calibration, camera.calibration_id, size)
    return None


class CameraPipeline:
    """Not thread-safe: one pipeline per camera worker."""

    def __init__(
        self,
        vision: VisionConfig,
        frame_size: tuple[int, int],
        *,
        camera: CameraConfig | None = None,
        detector: Detector | None = None,
        floor: FloorMapper | None = None,
        keep_stats: bool = False,
    ) -> None:
        self.vision = vision
        self.camera = camera
        self.frame_size = frame_size
        self.detector = detector or build(vision.detector)
        motion_cfg: MotionConfig = vision.motion
        if camera is not None and camera.motion_mask:
            motion_cfg = motion_cfg.model_copy(
                update={"mask": [*motion_cfg.mask, *camera.motion_mask]}
            )
        self.motion = MotionDetector(motion_cfg, frame_size) if motion_cfg.enabled else None
        self.tracker = Tracker(vision.tracker)
        self.floor = floor if floor is not None else floor_model(vision, camera, frame_size)
        self._plausible = self._plausibility_check()  # once: the floor does not change
        self.stats = PipelineStats()
        self._keep_stats = keep_stats
        self._index = 0

    def _plausibility_check(self) -> Any:
        floor = self.floor
        if isinstance(floor, CalibratedCamera):
            margin = self.vision.floor_margin_m
            return lambda box: floor.plausibility(box, margin)
        return None

    def prime(self, frames: Sequence[Image]) -> None:
        self.detector.prime(frames)

    def process(self, frame: Image, ts_ms: int | None = None) -> FrameResult:
        start = time.perf_counter()
        index = self._index
        self._index += 1
        ts = ts_ms if ts_ms is not None else int(time.time() * 1000)
        motion = self.motion.detect(frame) if self.motion is not None else None
        run = motion is None or bool(motion) or self.tracker.active > 0
        regions: list[Box] | None = None
        if motion is not None:
            regions = [*motion, *self.tracker.boxes()]
        ctx = FrameContext(index=index, ts_ms=ts, regions=regions, plausible=self._plausible)
        detections: list[Detection] = []
        if run:
            detections = self.detector.detect(frame, ctx)
            if self.floor is not None and not isinstance(self.floor, CalibratedCamera):
                detections = [d for d in detections if self._on_floor(d.box)]
        else:
            self.detector.observe(frame, ctx)
        w, h = self.frame_size
        tracks = [  # a track coasting out of the picture is gone
            t
            for t in self.tracker.update(detections)
            if 0 <= (t.box[0] + t.box[2]) / 2 <= w and 0 <= (t.box[1] + t.box[3]) / 2 <= h
        ]
        floor_tracks = [FloorTrack(t, self._to_floor(t.box)) for t in tracks]
        elapsed = time.perf_counter() - start
        self.stats.frames += 1
        self.stats.detector_runs += int(run)
        self.stats.seconds += elapsed
        if self._keep_stats:
            self.stats.per_frame_s.append(elapsed)
        return FrameResult(index, ts, detections, floor_tracks, motion or [], run, elapsed)

    def _to_floor(self, box: Box) -> tuple[float, float] | None:
        if self.floor is None:
            return None
        x1, _, x2, y2 = box
        return self.floor.pixel_to_floor((x1 + x2) / 2, y2)

    def _on_floor(self, box: Box) -> bool:
        return self._to_floor(box) is not None

    def close(self) -> None:
        self.detector.close()


def aifi_camera_id(path: str | Path) -> str | None:
    """The AiFi camera id in a recording's name (``...-cam3.mp4`` -> ``"3"``)."""
    match = re.search(r"cam[-_]?(\d+)", Path(str(path)).stem, re.IGNORECASE)
    return match.group(1) if match else None


def pipeline_for_source(
    vision: VisionConfig,
    source: FrameSourceLike,
    *,
    camera: CameraConfig | None = None,
    floor: FloorMapper | None = None,
    keep_stats: bool = False,
) -> tuple[CameraPipeline, Iterator[tuple[Image, int]]]:
    """Open ``source``, build its camera's pipeline for the first frame's size, and prime
    the detector from frames sampled ahead when the source is a recording.

    Returns the pipeline and an iterator of (frame, ts_ms), the first frame included.
    """
    from vision.capture import CaptureError, sample_ahead  # noqa: PLC0415

    source.open()
    first = source.read()
    if first is None:
        source.close()
        raise CaptureError(f"{source.name}: no frame")
    h, w = first.image.shape[:2]
    pipeline = CameraPipeline(vision, (w, h), camera=camera, floor=floor, keep_stats=keep_stats)
    prime_count = int(getattr(vision.detector, "prime_frames", 0))
    if source.finite and prime_count:
        pipeline.prime(sample_ahead(str(getattr(source, "source", "")), prime_count))

    def frames() -> Iterator[tuple[Image, int]]:
        try:
            yield first.image, first.ts_ms
            while (frame := source.read()) is not None:
                yield frame.image, frame.ts_ms
        finally:
            source.close()

    return pipeline, frames()
