"""Rigid transforms of the AiFi store metadata: translation plus Rodrigues rotation.

Every AiFi object (gondola, shelf, plate) is a box ``[0, dim_x] x [0, dim_y] x
[0, dim_z]`` in its own frame, placed in its parent's frame by a transform
``p_parent = R @ p_local + t`` where ``R`` comes from a Rodrigues vector.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

Vec = npt.NDArray[np.float64]

_EPS = 1e-12


def rodrigues(rvec: Vec) -> Vec:
    """The 3x3 rotation matrix of a Rodrigues vector (axis * angle in radians)."""
    theta = float(np.linalg.norm(rvec))
    if theta < _EPS:
        return np.eye(3)
    k = rvec / theta
    kx = np.array([[0.0, -k[2], k[1]], [k[2], 0.0, -k[0]], [-k[1], k[0], 0.0]])
    matrix: Vec = np.eye(3) + np.sin(theta) * kx + (1.0 - np.cos(theta)) * (kx @ kx)
    return matrix


@dataclass(frozen=True)
class Pose:
    """Maps points of a local frame into a parent (ultimately the world) frame."""

    rotation: Vec
    translation: Vec

    @staticmethod
    def identity() -> Pose:
        return Pose(np.eye(3), np.zeros(3))

    @staticmethod
    def from_aifi(transform: Mapping[str, Any]) -> Pose:
        """From an AiFi ``{"translation": {x,y,z}, "rotation": {x,y,z}}`` object."""
        t, r = transform["translation"], transform["rotation"]
        translation = np.array([float(t["x"]), float(t["y"]), float(t["z"])])
        rvec = np.array([float(r["x"]), float(r["y"]), float(r["z"])])
        return Pose(rodrigues(rvec), translation)

    def compose(self, child: Pose) -> Pose:
        """The pose of ``child`` (given relative to self) in self's parent frame."""
        return Pose(
            self.rotation @ child.rotation, self.rotation @ child.translation + self.translation
        )

    def apply(self, point: Vec) -> Vec:
        return self.rotation @ point + self.translation


@dataclass(frozen=True)
class Box:
    """An AiFi object's local box and its world pose."""

    pose: Pose
    dims: Vec  # dim_x, dim_y, dim_z in metres

    def corners(self) -> Vec:
        """The 8 world corners, shape (8, 3)."""
        dx, dy, dz = self.dims
        local = np.array(
            [[x, y, z] for x in (0.0, dx) for y in (0.0, dy) for z in (0.0, dz)], dtype=np.float64
        )
        return (self.pose.rotation @ local.T).T + self.pose.translation

    def centre(self) -> Vec:
        return self.pose.apply(self.dims / 2.0)

    def floor_rect(self) -> tuple[float, float, float, float]:
        """Axis-aligned floor footprint (xmin, ymin, xmax, ymax) of the box."""
        c = self.corners()
        return (
            float(c[:, 0].min()),
            float(c[:, 1].min()),
            float(c[:, 0].max()),
            float(c[:, 1].max()),
        )


def union_rect(
    rects: list[tuple[float, float, float, float]],
) -> tuple[float, float, float, float]:
    return (
        min(r[0] for r in rects),
        min(r[1] for r in rects),
        max(r[2] for r in rects),
        max(r[3] for r in rects),
    )
