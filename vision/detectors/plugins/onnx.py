"""``type: onnx``: a YOLO-family model a store brings, run by onnxruntime on the CPU.

Reads the v5, v8/v11 and end-to-end output layouts (:mod:`vision.detectors.yolo`),
letterboxes its input and runs NMS.  With motion gating it looks only at a crop
around where something moved (as Frigate does), so a small model input still sees
people at full resolution.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np
from pydantic import Field

from vision.detectors.base import (
    Box,
    Detection,
    DetectorConfigBase,
    DetectorError,
    FrameContext,
    Image,
    register,
)

Layout = Literal["auto", "v5", "v8", "end2end"]

logger = logging.getLogger(__name__)


class OnnxDetectorConfig(DetectorConfigBase):
    type: Literal["onnx"] = "onnx"
    model: Path = Field(description="the .onnx file (a YOLO export)")
    layout: Layout = Field(default="auto", description="auto, v5, v8 or end2end")
    input_size: tuple[int, int] | None = Field(
        default=None, description="(width, height); default: from the model's input shape"
    )
    labels: list[str] = Field(
        default_factory=lambda: ["person"],
        description="class names by index (COCO exports: index 0 is person)",
    )
    keep_labels: list[str] = Field(default_factory=lambda: ["person"], min_length=1)
    score_threshold: float = Field(default=0.4, gt=0, lt=1)
    iou_threshold: float = Field(default=0.45, gt=0, le=1)
    threads: int = Field(default=1, ge=1, le=16, description="onnxruntime intra-op threads")
    crop_to_motion: bool = Field(
        default=True, description="run on a crop around the moving regions (else whole frame)"
    )
    min_crop: int = Field(default=320, ge=32, description="smallest crop side, pixels")


def _union(regions: Sequence[Box]) -> Box:
    arr = np.asarray(regions, dtype=np.float64)
    return (
        float(arr[:, 0].min()),
        float(arr[:, 1].min()),
        float(arr[:, 2].max()),
        float(arr[:, 3].max()),
    )


def crop_for(regions: Sequence[Box], frame_w: int, frame_h: int, min_side: int) -> Box:
    """A square-ish crop around all regions, at least ``min_side``, inside the frame."""
    x1, y1, x2, y2 = _union(regions)
    side = max(x2 - x1, y2 - y1) * 1.2
    side = min(max(side, float(min_side)), float(max(frame_w, frame_h)))
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    w, h = min(side, frame_w), min(side, frame_h)
    left = float(np.clip(cx - w / 2, 0, frame_w - w))
    top = float(np.clip(cy - h / 2, 0, frame_h - h))
    return (left, top, left + w, top + h)


@register("onnx")
class OnnxDetector:
    needs_every_frame: ClassVar[bool] = False

    def __init__(self, config: OnnxDetectorConfig) -> None:
        import onnxruntime as ort  # noqa: PLC0415 - heavy import, only when configured

        self.config = config
        if not config.model.is_file():
            raise DetectorError(f"ONNX model {config.model} does not exist")
        options = ort.SessionOptions()
        options.intra_op_num_threads = config.threads
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        try:
            self._session = ort.InferenceSession(
                str(config.model), sess_options=options, providers=["CPUExecutionProvider"]
            )
        except Exception as exc:  # onnxruntime raises its own exception types
            raise DetectorError(f"cannot load ONNX model {config.model}: {exc}") from exc
        inp = self._session.get_inputs()[0]
        self._input_name = inp.name
        self.input_size = config.input_size or _static_size(inp.shape, config.model)
        out_shape = self._session.get_outputs()[0].shape
        self._num_classes: int | None = len(config.labels) if len(config.labels) > 1 else None
        if self._num_classes is None:
            self._num_classes = _guess_classes(out_shape, config.layout)
        self._keep = {i for i, label in enumerate(config.labels) if label in config.keep_labels}
        if not self._keep:
            raise DetectorError(f"none of keep_labels {config.keep_labels} is in labels")
        self.inferences = 0

    def detect(self, frame: Image, ctx: FrameContext) -> list[Detection]:
        h, w = frame.shape[:2]
        offset = (0.0, 0.0)
        image = frame
        if self.config.crop_to_motion and ctx.regions:
            x1, y1, x2, y2 = crop_for(ctx.regions, w, h, self.config.min_crop)
            image = frame[int(y1) : int(y2), int(x1) : int(x2)]
            offset = (float(int(x1)), float(int(y1)))
        return self.detect_image(image, offset, (w, h))

    def detect_image(
        self, image: Image, offset: tuple[float, float], frame_size: tuple[int, int]
    ) -> list[Detection]:
        from vision.detectors.yolo import (  # noqa: PLC0415 - OpenCV only when detecting
            decode,
            letterbox,
            to_detections,
            to_tensor,
        )

        boxed, lb = letterbox(image, *self.input_size)
        outputs: list[Any] = self._session.run(None, {self._input_name: to_tensor(boxed)})
        self.inferences += 1
        boxes, scores, classes = decode(
            outputs[0],
            input_size=self.input_size,
            layout=self.config.layout,
            num_classes=self._num_classes,
            score_threshold=self.config.score_threshold,
            iou_threshold=self.config.iou_threshold,
            keep_classes=self._keep,
        )
        return to_detections(
            lb.to_source(boxes), scores, classes, self.config.labels, frame_size, offset
        )

    def observe(self, frame: Image, ctx: FrameContext) -> None:
        return None

    def prime(self, frames: Sequence[Image]) -> None:
        return None

    def close(self) -> None:
        return None


def _static_size(shape: Sequence[Any], model: Path) -> tuple[int, int]:
    if len(shape) == 4 and isinstance(shape[2], int) and isinstance(shape[3], int):
        return int(shape[3]), int(shape[2])
    raise DetectorError(
        f"{model}: input shape {list(shape)} is dynamic; set input_size: [width, height]"
    )


def _guess_classes(shape: Sequence[Any], layout: Layout) -> int | None:
    """The class count the model's output shape tells (None: it does not, e.g. a
    dynamic dimension); :func:`vision.detectors.yolo.resolve_layout` reads the shape."""
    if len(shape) != 3 or not all(isinstance(d, int) for d in shape[1:]):
        return None
    from vision.detectors.yolo import resolve_layout  # noqa: PLC0415 - yolo imports this module

    return resolve_layout((1, int(shape[1]), int(shape[2])), None, layout).num_classes
