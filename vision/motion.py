"""Motion gating: where and when something moves, found cheaply (after Frigate's detector).

Each frame is shrunk to a small greyscale image (``frame_height`` rows), blurred, and
compared with a running average of past frames; pixels that differ by more than
``threshold`` are motion.  Contours of the motion mask larger than ``contour_area`` become
regions (full-frame pixel boxes).  An empty store gives no regions and the detector does
not run.  A camera-wide change (lights switched, auto exposure) is not motion: when more
than ``max_changed`` of the image changes at once the average is reset instead.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np
import numpy.typing as npt

from vision.config import MotionConfig, Polygon
from vision.detectors.base import Box, Image

#: The dilation that joins the parts of one mover (3x3, as OpenCV's default).
_KERNEL = np.ones((3, 3), dtype=np.uint8)


class MotionDetector:
    def __init__(self, config: MotionConfig, frame_size: tuple[int, int]) -> None:
        self.config = config
        self.frame_w, self.frame_h = frame_size
        self.height = min(config.frame_height, self.frame_h)
        self.width = max(1, round(self.frame_w * self.height / self.frame_h))
        self.scale = self.frame_w / self.width
        self._avg: npt.NDArray[np.float32] | None = None
        self._mask = self._build_mask(config.mask)
        self.changed_share = 0.0
        self.lighting_changes = 0

    def _build_mask(self, polygons: Sequence[Polygon]) -> npt.NDArray[np.uint8] | None:
        if not polygons:
            return None
        keep = np.full((self.height, self.width), 255, dtype=np.uint8)
        for poly in polygons:
            pts = np.array([[x / self.scale, y / self.scale] for x, y in poly], dtype=np.int32)
            cv2.fillPoly(keep, [pts], 0)
        return keep

    def detect(self, frame: Image) -> list[Box]:
        """Regions that moved since the running average, full-frame pixel boxes."""
        gray = frame if frame.ndim == 2 else cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
        small = cv2.resize(gray, (self.width, self.height), interpolation=cv2.INTER_AREA)
        small = cv2.GaussianBlur(small, (3, 3), 0)
        cur = small.astype(np.float32)
        if self._avg is None:
            self._avg = cur
            return []
        delta = cv2.absdiff(cur, self._avg)
        cv2.accumulateWeighted(cur, self._avg, self.config.frame_alpha)
        moving = (delta > self.config.threshold).astype(np.uint8) * 255
        if self._mask is not None:
            moving = np.asarray(cv2.bitwise_and(moving, self._mask), dtype=np.uint8)
        self.changed_share = float(np.count_nonzero(moving)) / moving.size
        if self.changed_share > self.config.max_changed:
            self._avg = cur  # the whole picture changed: lights or exposure, not a shopper
            self.lighting_changes += 1
            return []
        moving = np.asarray(cv2.dilate(moving, _KERNEL, iterations=2), dtype=np.uint8)
        contours, _ = cv2.findContours(moving, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        boxes: list[Box] = []
        grow = self.config.expand
        for contour in contours:
            if cv2.contourArea(contour) < self.config.contour_area:
                continue
            x, y, w, h = cv2.boundingRect(contour)
            dx, dy = w * grow, h * grow
            boxes.append(
                (
                    max(0.0, (x - dx) * self.scale),
                    max(0.0, (y - dy) * self.scale),
                    min(float(self.frame_w), (x + w + dx) * self.scale),
                    min(float(self.frame_h), (y + h + dy) * self.scale),
                )
            )
        return boxes
