"""What every detector plugin shares: the detection type, the plugin interface, the registry.

A plugin is one file under ``vision/detectors/plugins/``: a pydantic config class whose
``type`` field is a ``Literal`` naming the plugin (the key a store writes in its config,
as Frigate's ``detectors: {type: ...}``), and a detector class registered for that type
with :func:`register`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict

Image = npt.NDArray[np.uint8]
#: (x1, y1, x2, y2) in pixels of the full frame.
Box = tuple[float, float, float, float]


@dataclass(frozen=True, slots=True)
class Detection:
    box: Box
    score: float
    label: str = "person"

    def as_json(self) -> dict[str, Any]:
        return {
            "box": [round(v, 1) for v in self.box],
            "score": round(self.score, 3),
            "label": self.label,
        }


@dataclass(frozen=True, slots=True)
class FrameContext:
    """What the pipeline knows about a frame besides its pixels.

    ``regions``: where something moved (motion gating), full-frame pixel boxes; None
    means "look everywhere".  ``plausible``: an optional test of a candidate box
    (the camera's floor model: does a person standing there look like this?).
    """

    index: int
    ts_ms: int
    regions: Sequence[Box] | None = None
    plausible: Callable[[Box], float] | None = None
    extra: dict[str, Any] = field(default_factory=dict)


class DetectorConfigBase(BaseModel):
    """Every plugin config: strict (a typo is an error), with a ``type`` discriminator."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: str


class Detector(Protocol):
    """A detector plugin instance (one per camera: it may keep per-camera state)."""

    #: True when the detector must see every frame to keep its state (a background model).
    needs_every_frame: ClassVar[bool]

    def detect(self, frame: Image, ctx: FrameContext) -> list[Detection]:
        """People (or other labels) in ``frame``; may look only inside ``ctx.regions``."""
        ...

    def observe(self, frame: Image, ctx: FrameContext) -> None:
        """A frame the gating skipped (nothing moved): cheap upkeep only."""
        ...

    def prime(self, frames: Sequence[Image]) -> None:
        """Frames sampled ahead from a recording, before the first ``detect``."""
        ...

    def close(self) -> None: ...


class DetectorError(RuntimeError):
    """A detector that cannot be built or run (a missing or unusable model file)."""


_REGISTRY: dict[str, Callable[[Any], Detector]] = {}


def register(kind: str) -> Callable[[Callable[[Any], Detector]], Callable[[Any], Detector]]:
    """Class decorator: ``@register("onnx")`` makes configs of that ``type`` build the class."""

    def wrap(factory: Callable[[Any], Detector]) -> Callable[[Any], Detector]:
        if kind in _REGISTRY:
            raise ValueError(f"detector type {kind!r} registered twice")
        _REGISTRY[kind] = factory
        return factory

    return wrap


def build(config: DetectorConfigBase) -> Detector:
    """The detector for a plugin config (its ``type`` picks the plugin)."""
    try:
        factory = _REGISTRY[config.type]
    except KeyError:
        known = ", ".join(sorted(_REGISTRY))
        raise DetectorError(f"unknown detector type {config.type!r} (known: {known})") from None
    return factory(config)


def registered() -> list[str]:
    return sorted(_REGISTRY)


# --------------------------------------------------------------------------- box helpers


def iou_matrix(a: npt.NDArray[np.float64], b: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """Pairwise IoU of boxes ``a`` (N, 4) and ``b`` (M, 4), xyxy."""
    if a.size == 0 or b.size == 0:
        return np.zeros((len(a), len(b)))
    x1 = np.maximum(a[:, None, 0], b[None, :, 0])
    y1 = np.maximum(a[:, None, 1], b[None, :, 1])
    x2 = np.minimum(a[:, None, 2], b[None, :, 2])
    y2 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    union = area_a[:, None] + area_b[None, :] - inter
    out: npt.NDArray[np.float64] = np.where(union > 0, inter / np.maximum(union, 1e-9), 0.0)
    return out


def nms(
    boxes: npt.NDArray[np.float64],
    scores: npt.NDArray[np.float64],
    iou_threshold: float,
    max_out: int = 300,
) -> list[int]:
    """Greedy non-maximum suppression; indices of the kept boxes, best first."""
    order = np.argsort(-scores, kind="stable")
    keep: list[int] = []
    while order.size and len(keep) < max_out:
        best = int(order[0])
        keep.append(best)
        if order.size == 1:
            break
        rest = order[1:]
        ious = iou_matrix(boxes[best : best + 1], boxes[rest])[0]
        order = rest[ious <= iou_threshold]
    return keep
