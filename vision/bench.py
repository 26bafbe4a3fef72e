"""``storeedge bench vision``: what the pipeline costs per frame, on one core.

Decoding is timed apart from the pipeline (a camera's hardware decoder or the JPEG
decode of an MQTT frame is not the pipeline's cost).  Frames where motion gating let the
detector sleep are reported apart from those where it ran: an empty store costs the
idle figure.  Numbers, not tests: they depend on the machine.
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from vision.capture import OpenCvSource
from vision.config import CameraConfig, VisionConfig
from vision.pipeline import CameraPipeline, pipeline_for_source


def _ms(values: list[float]) -> dict[str, float]:
    if not values:
        return {"mean": 0.0, "p50": 0.0, "p95": 0.0, "max": 0.0}
    ordered = sorted(values)
    return {
        "mean": round(1000 * statistics.fmean(ordered), 2),
        "p50": round(1000 * ordered[len(ordered) // 2], 2),
        "p95": round(1000 * ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))], 2),
        "max": round(1000 * ordered[-1], 2),
    }


def bench_video(
    video: Path,
    vision: VisionConfig,
    camera: CameraConfig | None = None,
    *,
    label: str,
    max_frames: int | None = None,
) -> dict[str, Any]:
    """One pass over ``video`` with ``vision``'s pipeline, single-threaded."""
    cv2.setNumThreads(1)
    source = OpenCvSource(str(video), name=camera.name if camera else video.name)
    pipeline, frames = pipeline_for_source(vision, source, camera=camera, keep_stats=True)
    decode_s: list[float] = []
    active: list[float] = []
    idle: list[float] = []
    detections = 0
    start = time.perf_counter()
    it = iter(frames)
    while True:
        t0 = time.perf_counter()
        try:
            image, ts = next(it)
        except StopIteration:
            break
        decode_s.append(time.perf_counter() - t0)
        result = pipeline.process(image, ts)
        (active if result.detector_ran else idle).append(result.seconds)
        detections += len(result.detections)
        if max_frames is not None and pipeline.stats.frames >= max_frames:
            break
    wall = time.perf_counter() - start
    per_frame = pipeline.stats.per_frame_s
    pipeline.close()
    frames_n = len(per_frame)
    mean = statistics.fmean(per_frame) if per_frame else 0.0
    w, h = pipeline.frame_size
    return {
        "detector": label,
        "frames": frames_n,
        "resolution": f"{w}x{h}",
        "fps_per_core": round(1 / mean, 1) if mean else None,
        "fps_per_core_with_decode": round(frames_n / wall, 1) if wall else None,
        "latency_ms": _ms(per_frame),
        "decode_ms": _ms(decode_s),
        "detector_ran_share": round(len(active) / frames_n, 3) if frames_n else 0.0,
        "active_frame_ms": _ms(active),
        "idle_frame_ms": _ms(idle),
        "detections": detections,
    }


def bench_idle(
    vision: VisionConfig, frames: int = 300, size: tuple[int, int] = (640, 360)
) -> dict[str, Any]:
    """An empty, still store (one frame and sensor noise): what gating leaves to pay."""
    cv2.setNumThreads(1)
    rng = np.random.default_rng(0)
    base = rng.integers(40, 200, (size[1], size[0], 3), dtype=np.uint8)
    base = np.asarray(cv2.GaussianBlur(base, (9, 9), 0), dtype=np.uint8)
    pipeline = CameraPipeline(vision, size, keep_stats=True)
    noisy = [
        np.clip(base.astype(np.int16) + rng.normal(0, 2, base.shape), 0, 255).astype(np.uint8)
        for _ in range(8)
    ]
    for i in range(frames):
        pipeline.process(noisy[i % len(noisy)], i * 100)
    per_frame = pipeline.stats.per_frame_s[10:]
    return {
        "detector": "idle store (synthetic still frames with sensor noise)",
        "frames": len(per_frame),
        "detector_ran_share": round(pipeline.stats.detector_runs / pipeline.stats.frames, 3),
        "latency_ms": _ms(per_frame),
        "fps_per_core": round(1 / statistics.fmean(per_frame), 1),
    }
