"""``type: foreground``: people without a model: background subtraction, morphology, size.

A Gaussian-mixture background model (OpenCV's MOG2, shadows marked and dropped) at a
reduced width; the foreground mask is opened (speckle), closed (holes), and pixels of
one body that the mask split (a dark shirt on a dark shelf) are grouped by a dilation;
each group is one candidate.  Candidates are kept by size (a share of the frame), and,
where the camera's floor model is known, by how much they look like a person standing
on the store floor there (``FrameContext.plausible``).

Recordings may start with a shopper already in view; :meth:`prime` takes frames
sampled ahead in the file and starts the background from their per-pixel median.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import ClassVar, Literal

import numpy as np
from pydantic import Field

from vision.detectors.base import (
    Box,
    Detection,
    DetectorConfigBase,
    FrameContext,
    Image,
    register,
)

_FG = 255  # MOG2 marks shadows 127, foreground 255
#: At most this many foreground components per frame are grouped (the biggest).
_MAX_BLOBS = 40
#: A blob whose brightness changed by the same factor everywhere (spread of the factor
#: under this share of it) is light or shadow, not a body (people measured 0.4 and more
#: on the AiFi footage; light on walls and floor 0.007-0.014).
_EVEN_GAIN = 0.05
_PRIME_RATE = 0.1
_PRIME_STEPS = 20


class ForegroundDetectorConfig(DetectorConfigBase):
    type: Literal["foreground"] = "foreground"
    process_width: int = Field(default=320, ge=64, le=1920, description="model width, pixels")
    history: int = Field(default=600, ge=10, description="frames the background remembers")
    var_threshold: float = Field(default=16.0, gt=0, description="MOG2 squared distance")
    shadows: bool = Field(default=True, description="mark shadows (and drop them)")
    open_px: int = Field(default=3, ge=0, description="opening kernel (speckle), model pixels")
    close_px: int = Field(default=7, ge=0, description="closing kernel (holes), model pixels")
    group_px: int = Field(default=15, ge=0, description="blobs this close are one object")
    min_area: float = Field(default=0.004, gt=0, lt=1, description="share of the frame")
    max_area: float = Field(default=0.6, gt=0, le=1, description="share of the frame")
    min_fill: float = Field(default=0.12, ge=0, le=1, description="foreground share of the box")
    min_contrast: float = Field(
        default=8.0, ge=0, description="mean grey-level difference from the background"
    )
    min_plausibility: float = Field(
        default=0.2, ge=0, le=1, description="with a floor model: how person-like at least"
    )
    prime_frames: int = Field(
        default=31, ge=0, description="frames sampled ahead in a recording (0: no priming)"
    )
    warmup_frames: int = Field(
        default=10, ge=1, description="cold start: frames learnt fast before the steady rate"
    )
    idle_update_every: int = Field(
        default=10, ge=1, description="frames without motion: update the background every N"
    )
    label: str = "person"


@register("foreground")
class ForegroundDetector:
    needs_every_frame: ClassVar[bool] = False

    def __init__(self, config: ForegroundDetectorConfig) -> None:
        import cv2  # noqa: PLC0415 - OpenCV is loaded by a detector, not by its config

        self.config = config
        self._mog = cv2.createBackgroundSubtractorMOG2(
            history=config.history, varThreshold=config.var_threshold, detectShadows=config.shadows
        )
        self._primed = False
        self._seen = 0
        self._idle = 0
        self._open = _kernel(config.open_px)
        self._close = _kernel(config.close_px)
        self.last_mask: Image | None = None

    def _small(self, frame: Image) -> tuple[Image, float]:
        import cv2  # noqa: PLC0415

        h, w = frame.shape[:2]
        width = min(self.config.process_width, w)
        height = max(1, round(h * width / w))
        small = cv2.resize(frame, (width, height), interpolation=cv2.INTER_AREA)
        return small.astype(np.uint8), w / width

    def _rate(self) -> float:
        # MOG2's own rate starts fast (1/frames seen): right for the first second of a
        # cold start, wrong after it (a shopper's body would soon count as background).
        # Primed, the model knows the background: the steady rate from the first frame.
        self._seen += 1
        if self._primed or self._seen > self.config.warmup_frames:
            return 1.0 / self.config.history
        return -1.0

    def prime(self, frames: Sequence[Image]) -> None:
        if not frames or self.config.prime_frames == 0:
            return
        smalls = np.stack([self._small(f)[0] for f in frames]).astype(np.float32)
        median = np.median(smalls, axis=0)
        # How much each pixel varies without the shopper: the median absolute deviation
        # (a passing shopper is in too few samples to move it).  The model then learns
        # the median under that much noise: the empty store, with its real variance.
        sigma = np.clip(1.4826 * np.median(np.abs(smalls - median), axis=0), 1.5, 20.0)
        rng = np.random.default_rng(0)
        self._mog.apply(median.astype(np.uint8), learningRate=1.0)
        for _ in range(_PRIME_STEPS):
            noisy = np.clip(median + rng.normal(0.0, 1.0, median.shape) * sigma, 0, 255)
            self._mog.apply(noisy.astype(np.uint8), learningRate=_PRIME_RATE)
        self._primed = True

    def observe(self, frame: Image, ctx: FrameContext) -> None:
        self._seen += 1  # a still frame counts towards the warm-up too
        self._idle += 1
        if self._idle >= self.config.idle_update_every:
            self._idle = 0
            small, _ = self._small(frame)
            self._mog.apply(small, learningRate=self._rate() if self._primed else -1.0)

    def detect(self, frame: Image, ctx: FrameContext) -> list[Detection]:
        import cv2  # noqa: PLC0415

        self._idle = 0
        small, scale = self._small(frame)
        fg = self._mog.apply(small, learningRate=self._rate())
        mask = np.where(fg == _FG, 255, 0).astype(np.uint8)
        if self._open is not None:
            mask = np.asarray(cv2.morphologyEx(mask, cv2.MORPH_OPEN, self._open), np.uint8)
        if self._close is not None:
            mask = np.asarray(cv2.morphologyEx(mask, cv2.MORPH_CLOSE, self._close), np.uint8)
        self.last_mask = mask
        blobs = self._blobs(mask, small)
        merged = _merge(blobs, self.config.group_px, ctx.plausible, scale)
        cfg = self.config
        total = float(mask.shape[0] * mask.shape[1])
        out: list[Detection] = []
        for blob in merged:
            x1, y1, x2, y2 = blob.box
            area = blob.pixels / total
            box_area = (x2 - x1) * (y2 - y1)
            if area < cfg.min_area or box_area / total > cfg.max_area:
                continue
            if blob.pixels / max(box_area, 1.0) < cfg.min_fill:
                continue
            box: Box = (x1 * scale, y1 * scale, x2 * scale, y2 * scale)
            score = min(1.0, float(np.sqrt(area / (4 * cfg.min_area))))
            if ctx.plausible is not None:
                fit = ctx.plausible(box)
                if fit < cfg.min_plausibility:
                    continue
                score = min(score, fit)
            out.append(Detection(box, round(score, 3), cfg.label))
        return out

    def _blobs(self, mask: Image, small: Image) -> list[_Blob]:
        """Connected foreground components (the biggest :data:`_MAX_BLOBS`).

        A component whose pixels differ from the background image by less than
        ``min_contrast`` grey levels on average is dropped: MOG2 flags flat, evenly lit
        surfaces (a wall, a shelf edge) whose variance it has learnt as almost zero when
        they change by a level or two; a shopper differs by tens.  So is one whose
        brightness changed by one factor throughout (light, a shadow, a reflection).
        """
        import cv2  # noqa: PLC0415

        count, labels, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
        if count <= 1:
            return []
        contrast = np.full(count, 255.0)
        if self.config.min_contrast > 0:
            background = self._mog.getBackgroundImage()
            if background is not None:
                cur = cv2.cvtColor(small, cv2.COLOR_BGR2GRAY) if small.ndim == 3 else small
                bg = (
                    cv2.cvtColor(background, cv2.COLOR_BGR2GRAY)
                    if background.ndim == 3
                    else background
                )
                diff = cv2.absdiff(cur, bg).astype(np.float64)
                flat = labels.ravel()
                n = np.maximum(np.bincount(flat, minlength=count), 1)
                contrast = np.bincount(flat, weights=diff.ravel(), minlength=count) / n
                # Light and shadow scale a surface evenly: the same gain over the blob.
                gain = ((cur.astype(np.float64) + 5) / (bg.astype(np.float64) + 5)).ravel()
                mean = np.bincount(flat, weights=gain, minlength=count) / n
                var = np.bincount(flat, weights=gain * gain, minlength=count) / n - mean**2
                even = np.sqrt(np.maximum(var, 0)) / np.maximum(mean, 1e-6) < _EVEN_GAIN
                contrast[even] = 0.0
        min_pixels = self.config.min_area * mask.size * 0.05
        blobs = [
            _Blob(
                (
                    float(stats[k, cv2.CC_STAT_LEFT]),
                    float(stats[k, cv2.CC_STAT_TOP]),
                    float(stats[k, cv2.CC_STAT_LEFT] + stats[k, cv2.CC_STAT_WIDTH]),
                    float(stats[k, cv2.CC_STAT_TOP] + stats[k, cv2.CC_STAT_HEIGHT]),
                ),
                int(stats[k, cv2.CC_STAT_AREA]),
            )
            for k in range(1, count)
            if stats[k, cv2.CC_STAT_AREA] >= min_pixels and contrast[k] >= self.config.min_contrast
        ]
        blobs.sort(key=lambda b: -b.pixels)
        return blobs[:_MAX_BLOBS]

    def close(self) -> None:
        return None


@dataclass(frozen=True, slots=True)
class _Blob:
    box: tuple[float, float, float, float]  # model pixels
    pixels: int


def _gap(a: tuple[float, float, float, float], b: tuple[float, float, float, float]) -> float:
    dx = max(0.0, max(a[0], b[0]) - min(a[2], b[2]))
    dy = max(0.0, max(a[1], b[1]) - min(a[3], b[3]))
    return max(dx, dy)


def _union(a: _Blob, b: _Blob) -> _Blob:
    box = (
        min(a.box[0], b.box[0]),
        min(a.box[1], b.box[1]),
        max(a.box[2], b.box[2]),
        max(a.box[3], b.box[3]),
    )
    return _Blob(box, a.pixels + b.pixels)


def _merge(
    blobs: list[_Blob],
    group_px: int,
    plausible: Callable[[Box], float] | None,
    scale: float,
) -> list[_Blob]:
    """Group the parts of one body: nearest pairs first, while the group stays person-like.

    Without a floor model, blobs closer than ``group_px`` merge.  With one, a merge must
    not make the group less like a standing person than its bigger part (so a shopper
    and the reflection of the glass beside them stay apart).
    """

    def fit(blob: _Blob) -> float:
        if plausible is None:
            return 1.0
        x1, y1, x2, y2 = blob.box
        return plausible((x1 * scale, y1 * scale, x2 * scale, y2 * scale))

    groups = list(blobs)
    fits = [fit(b) for b in groups]
    rejected: set[tuple[tuple[float, ...], tuple[float, ...]]] = set()
    while len(groups) > 1:
        pairs = sorted(
            (gap, i, j)
            for i in range(len(groups))
            for j in range(i + 1, len(groups))
            if (gap := _gap(groups[i].box, groups[j].box)) <= group_px
        )
        done = False
        for _, i, j in pairs:
            key = (groups[i].box, groups[j].box)
            if key in rejected:
                continue
            merged = _union(groups[i], groups[j])
            merged_fit = fit(merged)
            big = i if groups[i].pixels >= groups[j].pixels else j
            if plausible is not None and merged_fit < 0.9 * fits[big]:
                rejected.add(key)
                continue
            groups = [g for k, g in enumerate(groups) if k not in (i, j)] + [merged]
            fits = [f for k, f in enumerate(fits) if k not in (i, j)] + [merged_fit]
            done = True
            break
        if not done:
            break
    return groups


def _kernel(size: int) -> Image | None:
    import cv2  # noqa: PLC0415

    if size <= 1:
        return None
    return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (size, size)).astype(np.uint8)
