"""Pixels to floor positions, per camera.

Two models:

* :class:`CalibratedCamera`: intrinsics (with lens distortion) and the camera's pose in
  the store's world frame, as in the AiFi ``calibration.json`` (``K`` as fractions of
  the image size, ``dist_coeffs`` as OpenCV's, ``Tw`` the 4x4 camera-to-world matrix,
  world in inches: :data:`AIFI_UNIT_M`).  A pixel is undistorted, turned into a ray
  and cut with the floor plane; the floor homography of the undistorted image is
  ``K [r1 r2 t]``.
* :class:`FloorHomography`: a 3x3 pixel-to-floor matrix (from a config, or fitted to
  four or more marked floor points with :meth:`FloorHomography.fit`).

Both give :meth:`pixel_to_floor` in metres; the calibrated model also projects floor
points back (:meth:`CalibratedCamera.project`) and says what a standing person looks
like at a floor point (:meth:`CalibratedCamera.person_box`).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Protocol

import cv2
import numpy as np
import numpy.typing as npt

from vision.detectors.base import Box

F64 = npt.NDArray[np.float64]
#: The AiFi calibration's world unit (inches), in metres.
AIFI_UNIT_M = 0.0254
#: A standing shopper, for the plausibility of a box: height and shoulder width, metres.
PERSON_HEIGHT_M = 1.7
PERSON_WIDTH_M = 0.5


class FloorMapper(Protocol):
    def pixel_to_floor(self, u: float, v: float) -> tuple[float, float] | None: ...


class CalibrationError(ValueError):
    """A calibration file or entry that cannot be used."""


@dataclass(frozen=True)
class FloorHomography:
    """A plane homography from (undistorted) pixels to floor metres."""

    matrix: F64

    @classmethod
    def fit(
        cls, pixels: Sequence[tuple[float, float]], floor: Sequence[tuple[float, float]]
    ) -> FloorHomography:
        if len(pixels) < 4 or len(pixels) != len(floor):
            raise CalibrationError("a homography needs four or more pixel/floor point pairs")
        matrix, _ = cv2.findHomography(
            np.asarray(pixels, dtype=np.float64), np.asarray(floor, dtype=np.float64)
        )
        if matrix is None:
            raise CalibrationError("the points do not determine a homography (collinear?)")
        return cls(np.asarray(matrix, dtype=np.float64))

    def pixel_to_floor(self, u: float, v: float) -> tuple[float, float] | None:
        p = self.matrix @ np.array([u, v, 1.0])
        if abs(p[2]) < 1e-12:
            return None
        return float(p[0] / p[2]), float(p[1] / p[2])


@dataclass(frozen=True)
class CalibratedCamera:
    """A calibrated camera in the store's world frame (metres, z up, floor at z = 0)."""

    camera_matrix: F64  # 3x3, pixels
    dist_coeffs: F64
    rotation: F64  # camera -> world, 3x3
    position: F64  # camera centre in the world, metres
    size: tuple[int, int]  # (width, height) the intrinsics are for
    floor_box: tuple[float, float, float, float] | None = None  # xmin, ymin, xmax, ymax

    @classmethod
    def from_aifi(
        cls,
        entry: dict[str, object],
        size: tuple[int, int],
        floor_box: tuple[float, float, float, float] | None = None,
    ) -> CalibratedCamera:
        """One camera of an AiFi ``calibration.json`` (``K`` normalised, ``Tw`` in inches)."""
        try:
            k = np.asarray(entry["K"], dtype=np.float64)
            tw = np.asarray(entry["Tw"], dtype=np.float64)
            dist = np.asarray(entry.get("dist_coeffs", [0, 0, 0, 0, 0]), dtype=np.float64)
        except (KeyError, TypeError, ValueError) as exc:
            raise CalibrationError(f"camera entry lacks K/Tw: {exc}") from None
        if k.shape != (3, 3) or tw.shape != (4, 4):
            raise CalibrationError(f"K must be 3x3 and Tw 4x4, got {k.shape} and {tw.shape}")
        w, h = size
        matrix = k.copy()
        if matrix[0, 2] <= 1.0 and matrix[1, 2] <= 1.0:  # fractions of the image size
            matrix[0] *= w
            matrix[1] *= h
        return cls(
            camera_matrix=matrix,
            dist_coeffs=dist,
            rotation=tw[:3, :3].copy(),
            position=tw[:3, 3] * AIFI_UNIT_M,
            size=size,
            floor_box=floor_box,
        )

    # ------------------------------------------------------------------ geometry

    def rays(self, pixels: F64) -> F64:
        """World directions of the rays through pixels (N, 2)."""
        pts = np.asarray(pixels, dtype=np.float64).reshape(-1, 1, 2)
        norm = cv2.undistortPoints(pts, self.camera_matrix, self.dist_coeffs).reshape(-1, 2)
        cam = np.hstack([norm, np.ones((len(norm), 1))])
        out: F64 = cam @ self.rotation.T
        return out

    def pixel_to_floor(self, u: float, v: float, height: float = 0.0) -> tuple[float, float] | None:
        ray = self.rays(np.array([[u, v]]))[0]
        if ray[2] >= -1e-9 or self.position[2] <= height:
            return None  # the ray does not come down to that plane
        t = (height - self.position[2]) / ray[2]
        hit = self.position + t * ray
        return float(hit[0]), float(hit[1])

    @cached_property
    def _world_to_camera(self) -> tuple[F64, F64, F64]:
        """(rotation, translation, Rodrigues vector) from world to camera: worked out
        once per camera, not per projection."""
        r_wc = np.asarray(self.rotation.T, dtype=np.float64)
        t_wc = np.asarray(-r_wc @ self.position, dtype=np.float64)
        rvec, _ = cv2.Rodrigues(r_wc)
        return r_wc, t_wc, np.asarray(rvec, dtype=np.float64)

    def project(self, points: F64) -> tuple[F64, npt.NDArray[np.bool_]]:
        """Pixels of world points (N, 3) and whether each is in front of the camera."""
        pts = np.asarray(points, dtype=np.float64).reshape(-1, 3)
        r_wc, t_wc, rvec = self._world_to_camera
        depth = (pts @ r_wc.T + t_wc)[:, 2]
        pix, _ = cv2.projectPoints(pts, rvec, t_wc, self.camera_matrix, self.dist_coeffs)
        return np.asarray(pix, dtype=np.float64).reshape(-1, 2), depth > 0.05

    def floor_homography(self) -> FloorHomography:
        """Pixel (undistorted) to floor homography: inverse of K [r1 r2 t]."""
        r_wc, t_wc, _ = self._world_to_camera
        h = self.camera_matrix @ np.column_stack([r_wc[:, 0], r_wc[:, 1], t_wc])
        return FloorHomography(np.asarray(np.linalg.inv(h), dtype=np.float64))

    def on_floor(self, x: float, y: float, margin: float = 0.0) -> bool:
        if self.floor_box is None:
            return True
        x1, y1, x2, y2 = self.floor_box
        return x1 - margin <= x <= x2 + margin and y1 - margin <= y <= y2 + margin

    def person_box(self, x: float, y: float) -> Box | None:
        """The pixel box of a standing person at floor point (x, y), clipped to the image."""
        r = PERSON_WIDTH_M / 2
        pts = np.array(
            [
                [x + dx, y + dy, z]
                for z in (0.0, PERSON_HEIGHT_M / 2, PERSON_HEIGHT_M)
                for dx, dy in ((-r, 0), (r, 0), (0, -r), (0, r))
            ]
        )
        pix, front = self.project(pts)
        if not front.all():
            return None
        w, h = self.size
        x1, y1 = np.clip(pix.min(axis=0), 0, [w, h])
        x2, y2 = np.clip(pix.max(axis=0), 0, [w, h])
        if x2 - x1 < 1 or y2 - y1 < 1:
            return None
        return (float(x1), float(y1), float(x2), float(y2))

    def plausibility(self, box: Box, margin_m: float = 0.3) -> float:
        """How much a box looks like a person standing on the store floor (0..1).

        The box's foot point (bottom centre) must map into the floor area; the box is
        then compared with the projection of a standing person there: the ratio of the
        smaller to the larger height (a part of a person scores lower, not zero).
        """
        x1, y1, x2, y2 = box
        floor = self.pixel_to_floor((x1 + x2) / 2, y2)
        if floor is None or not self.on_floor(*floor, margin=margin_m):
            return 0.0
        expected = self.person_box(*floor)
        if expected is None:
            return 0.0
        h_box, h_exp = y2 - y1, expected[3] - expected[1]
        w_box, w_exp = x2 - x1, expected[2] - expected[0]
        ratio_h = min(h_box, h_exp) / max(h_box, h_exp, 1e-6)
        ratio_w = min(w_box, w_exp) / max(w_box, w_exp, 1e-6)
        return float(np.sqrt(ratio_h * ratio_w))


def load_aifi_calibration(
    path: Path, camera_id: str, size: tuple[int, int], *, floor_margin_m: float = 0.0
) -> CalibratedCamera:
    """Camera ``camera_id`` of an AiFi ``calibration.json``; the floor is its ``world_ltrb``."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise CalibrationError(f"{path}: cannot read calibration: {exc}") from None
    cameras = data.get("cameras", {}) if isinstance(data, dict) else {}
    if camera_id not in cameras:
        known = ", ".join(sorted(cameras, key=lambda c: (len(c), c)))
        raise CalibrationError(f"{path}: no camera {camera_id!r} (cameras: {known})")
    floor_box = None
    ltrb = data.get("world_ltrb")
    if isinstance(ltrb, list) and len(ltrb) == 4:
        left, top, right, bottom = (float(v) * AIFI_UNIT_M for v in ltrb)
        floor_box = (
            min(left, right) - floor_margin_m,
            min(top, bottom) - floor_margin_m,
            max(left, right) + floor_margin_m,
            max(top, bottom) + floor_margin_m,
        )
    return CalibratedCamera.from_aifi(cameras[camera_id], size, floor_box)
