"""YOLO pre- and post-processing: letterbox, the usual output layouts, NMS.

Layouts of the first output of an exported YOLO model (batch 1):

* ``v5``: ``(1, N, 5 + C)``, rows ``cx, cy, w, h, objectness, class scores...``
  (YOLOv5/v7 exports; score = objectness x class score).
* ``v8``: ``(1, 4 + C, N)``, columns ``cx, cy, w, h, class scores...``
  (YOLOv8/v9/v11 exports; no objectness).  The transposed ``(1, N, 4 + C)`` is read too.
* ``end2end``: ``(1, N, 6)``, rows ``x1, y1, x2, y2, score, class`` (models exported
  with NMS inside, YOLOv10 style).

Coordinates are pixels of the letterboxed input (or 0..1 of it: then they are scaled).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import numpy.typing as npt

from vision.detectors.base import Box, Detection, Image, nms
from vision.detectors.plugins.onnx import Layout

FloatArray = npt.NDArray[np.float32]

LETTERBOX_FILL = 114


@dataclass(frozen=True, slots=True)
class Letterbox:
    """How an image was fitted into the model input: scale, then padding."""

    scale: float
    pad_x: float
    pad_y: float

    def to_source(self, boxes: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        out = boxes.copy()
        out[:, [0, 2]] = (out[:, [0, 2]] - self.pad_x) / self.scale
        out[:, [1, 3]] = (out[:, [1, 3]] - self.pad_y) / self.scale
        return out


def letterbox(image: Image, width: int, height: int) -> tuple[Image, Letterbox]:
    """Resize keeping the aspect ratio and pad (grey 114) to ``width`` x ``height``."""
    h, w = image.shape[:2]
    scale = min(width / w, height / h)
    new_w, new_h = max(1, round(w * scale)), max(1, round(h * scale))
    resized = cv2.resize(image, (new_w, new_h), interpolation=cv2.INTER_LINEAR)
    pad_x, pad_y = (width - new_w) / 2, (height - new_h) / 2
    left, top = int(np.floor(pad_x)), int(np.floor(pad_y))
    out = cv2.copyMakeBorder(
        resized,
        top,
        height - new_h - top,
        left,
        width - new_w - left,
        cv2.BORDER_CONSTANT,
        value=(LETTERBOX_FILL, LETTERBOX_FILL, LETTERBOX_FILL),
    )
    return out.astype(np.uint8), Letterbox(scale, float(left), float(top))


def to_tensor(image: Image) -> FloatArray:
    """BGR uint8 HWC -> RGB float32 NCHW in 0..1 (what YOLO exports expect)."""
    rgb = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
    chw = np.ascontiguousarray(rgb.transpose(2, 0, 1), dtype=np.float32) / 255.0
    return chw[None]


def detect_layout(shape: tuple[int, ...], num_classes: int | None) -> Layout:
    """Which layout an output of this shape is (batch first)."""
    if len(shape) != 3:
        raise ValueError(f"YOLO output must have 3 dimensions (1, a, b), got {shape}")
    _, a, b = shape
    if num_classes is None:
        return "v8" if a < b else "v5"
    if a == 4 + num_classes and (b not in (4 + num_classes, 5 + num_classes) or a < b):
        return "v8"
    if b == 5 + num_classes:
        return "v5"
    if b == 4 + num_classes:
        return "v8"  # (1, N, 4 + C): a v8 output already transposed
    if b == 6:
        return "end2end"
    raise ValueError(
        f"output shape {shape} fits no YOLO layout for {num_classes} classes "
        "(v5: (1, N, 5+C); v8: (1, 4+C, N); end2end: (1, N, 6))"
    )


def _rows(
    arr: npt.NDArray[np.float64], kind: Layout, num_classes: int | None
) -> npt.NDArray[np.float64]:
    """One candidate per row."""
    rows: npt.NDArray[np.float64] = arr[0]
    if kind == "v8":
        a, b = rows.shape
        channels_first = (
            a == 4 + num_classes and (b != 4 + num_classes or a < b)
            if num_classes is not None
            else a < b
        )
        if channels_first:
            rows = rows.T
    return rows


def decode(
    output: npt.NDArray[np.floating],
    *,
    input_size: tuple[int, int],
    layout: Layout = "auto",
    num_classes: int | None = None,
    score_threshold: float = 0.25,
    iou_threshold: float = 0.45,
    keep_classes: set[int] | None = None,
    max_detections: int = 100,
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64], npt.NDArray[np.int64]]:
    """Boxes (xyxy, input pixels), scores and class ids after score filter and per-class NMS."""
    arr = np.asarray(output, dtype=np.float64)
    if arr.ndim == 2:
        arr = arr[None]
    kind = detect_layout(arr.shape, num_classes) if layout == "auto" else layout
    rows = _rows(arr, kind, num_classes)
    if kind == "end2end":
        boxes = rows[:, :4].copy()
        scores = rows[:, 4]
        classes = rows[:, 5].astype(np.int64)
    else:
        first = 5 if kind == "v5" else 4
        if rows.shape[1] <= first:
            raise ValueError(f"{kind} output rows have {rows.shape[1]} values: no class scores")
        cls_scores = rows[:, first:]
        if kind == "v5":
            cls_scores = cls_scores * rows[:, 4:5]
        classes = np.argmax(cls_scores, axis=1).astype(np.int64)
        scores = cls_scores[np.arange(len(rows)), classes]
        cx, cy, w, h = rows[:, 0], rows[:, 1], rows[:, 2], rows[:, 3]
        boxes = np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=1)
    mask = scores >= score_threshold
    if keep_classes is not None:
        mask &= np.isin(classes, list(keep_classes))
    boxes, scores, classes = boxes[mask], scores[mask], classes[mask]
    if boxes.size and float(np.abs(boxes).max()) <= 1.5:  # normalised coordinates
        boxes = boxes * np.array([input_size[0], input_size[1]] * 2, dtype=np.float64)
    if kind != "end2end" and len(boxes):
        keep: list[int] = []
        for cls in np.unique(classes):
            idx = np.flatnonzero(classes == cls)
            keep.extend(int(idx[k]) for k in nms(boxes[idx], scores[idx], iou_threshold))
        keep.sort(key=lambda k: -scores[k])
        keep = keep[:max_detections]
        boxes, scores, classes = boxes[keep], scores[keep], classes[keep]
    return boxes, scores, classes


def to_detections(
    boxes: npt.NDArray[np.float64],
    scores: npt.NDArray[np.float64],
    classes: npt.NDArray[np.int64],
    labels: list[str],
    frame_size: tuple[int, int],
    offset: tuple[float, float] = (0.0, 0.0),
) -> list[Detection]:
    """Detections in frame pixels, clipped to the frame."""
    w, h = frame_size
    out = []
    for box, score, cls in zip(boxes, scores, classes, strict=True):
        x1, y1, x2, y2 = (float(v) for v in box)
        x1, x2 = np.clip([x1 + offset[0], x2 + offset[0]], 0, w)
        y1, y2 = np.clip([y1 + offset[1], y2 + offset[1]], 0, h)
        if x2 - x1 < 1 or y2 - y1 < 1:
            continue
        label = labels[int(cls)] if 0 <= int(cls) < len(labels) else str(int(cls))
        b: Box = (float(x1), float(y1), float(x2), float(y2))
        out.append(Detection(b, float(score), label))
    return out
