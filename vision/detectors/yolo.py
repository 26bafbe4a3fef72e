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

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

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


KnownLayout = Literal["v5", "v8", "end2end"]


@dataclass(frozen=True, slots=True)
class OutputLayout:
    """How to read a YOLO output (what :func:`resolve_layout` found)."""

    #: The layout: ``v5``, ``v8`` or ``end2end`` (never ``auto``).
    kind: KnownLayout
    #: The rows are channels first, ``(4 + C, N)``: transpose for one candidate a row.
    transpose: bool
    #: The number of classes; ``None`` where neither the caller nor the shape tells.
    num_classes: int | None


def resolve_layout(
    shape: Sequence[int], num_classes: int | None = None, layout: Layout = "auto"
) -> OutputLayout:
    """The one place that tells a YOLO output's layout from its shape (batch first).

    With ``num_classes`` known, ``(1, 4+C, N)`` is a channels-first v8 output (unless
    square: ``N == 4+C`` reads as rows), then ``(1, N, 5+C)`` is v5, ``(1, N, 4+C)`` a
    v8 output already transposed and ``(1, N, 6)`` end2end; any other shape is a
    ``ValueError``.  Without it, more columns than rows is v8 (channels first), else v5
    (class count ``b - 5``, unless the shape is square or ``(1, N, 6)``, which might as
    well be end2end: then ``None``).  A forced ``layout`` is trusted as given: only the
    transposition and the class count are worked out.
    """
    if len(shape) != 3:
        raise ValueError(f"YOLO output must have 3 dimensions (1, a, b), got {tuple(shape)}")
    a, b = int(shape[1]), int(shape[2])
    if num_classes is not None:
        channels_first = a == 4 + num_classes and b != a
        if layout != "auto":
            return OutputLayout(layout, layout == "v8" and channels_first, num_classes)
        if channels_first:
            return OutputLayout("v8", True, num_classes)
        if b == 5 + num_classes:
            return OutputLayout("v5", False, num_classes)
        if b == 4 + num_classes:
            return OutputLayout("v8", False, num_classes)  # (1, N, 4 + C): already transposed
        if b == 6:
            return OutputLayout("end2end", False, num_classes)
        raise ValueError(
            f"output shape {tuple(shape)} fits no YOLO layout for {num_classes} classes "
            f"(v5: (1, N, {5 + num_classes}); v8: (1, {4 + num_classes}, N) "
            f"or (1, N, {4 + num_classes}); end2end: (1, N, 6))"
        )
    if layout == "end2end":
        return OutputLayout("end2end", False, None)  # the class count is not in the shape
    if layout == "v8" or (layout == "auto" and a < b):
        return OutputLayout("v8", a < b, _at_least_one(min(a, b) - 4))
    # Guessed v5 from a square (1, N, N) or a (1, N, 6): as well a v8 or an end2end output.
    ambiguous = layout == "auto" and b in {a, 6}
    return OutputLayout("v5", False, None if ambiguous else _at_least_one(b - 5))


def _at_least_one(count: int) -> int | None:
    """A class count, or ``None`` for a shape with no room for class scores (decode
    then says so)."""
    return count if count >= 1 else None


def detect_layout(shape: Sequence[int], num_classes: int | None) -> KnownLayout:
    """Which layout an output of this shape is (batch first); see :func:`resolve_layout`."""
    return resolve_layout(shape, num_classes).kind


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
    resolved = resolve_layout(arr.shape, num_classes, layout)
    kind = resolved.kind
    rows: npt.NDArray[np.float64] = arr[0].T if resolved.transpose else arr[0]  # one per row
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
