"""Multi-object tracking: a constant-velocity Kalman filter per track and optimal assignment.

SORT-style: every track predicts its box (centre, size, centre velocity); detections
are assigned to tracks by the Hungarian method on a cost that is ``1 - IoU`` for boxes
that overlap and grows with the centre distance (in box sizes) for boxes that do not,
so a shopper who moved further than their own width in one frame (10 fps, close to the
camera) keeps their id.  A track is confirmed after ``min_hits`` updates, coasts on its
prediction for up to ``max_age`` frames without a detection, and its id is never reused.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy.optimize import linear_sum_assignment

from vision.config import TrackerConfig
from vision.detectors.base import Box, Detection, iou_matrix

F64 = npt.NDArray[np.float64]
_SIZE_VELOCITY_DECAY = 0.5


@dataclass(frozen=True, slots=True)
class Track:
    id: int
    box: Box
    score: float
    hits: int
    age: int  # frames since the track began
    missed: int  # frames since its last detection
    label: str = "person"

    @property
    def foot(self) -> tuple[float, float]:
        x1, _, x2, y2 = self.box
        return (x1 + x2) / 2, y2

    def as_json(self) -> dict[str, object]:
        return {"id": self.id, "box": [round(v, 1) for v in self.box]}


class _KalmanBox:
    """State (cx, cy, w, h, vx, vy, vw, vh); measurement (cx, cy, w, h)."""

    def __init__(self, box: Box, q: float, r: float) -> None:
        self.x = np.zeros(8)
        self.x[:4] = _to_cxcywh(box)
        size = max(self.x[2], self.x[3], 1.0)
        self.p = np.diag([1, 1, 1, 1, 10, 10, 10, 10]).astype(np.float64) * (0.1 * size) ** 2
        self.f = np.eye(8)
        self.f[:4, 4:] = np.eye(4)
        self.h = np.eye(4, 8)
        self.q_scale, self.r_scale = q, r

    def _noise(self, scale: float, n: int) -> F64:
        size = max(self.x[2], self.x[3], 1.0)
        out: F64 = np.eye(n) * (scale * size) ** 2
        return out

    def predict(self) -> Box:
        self.x = self.f @ self.x
        # A box's size does not keep growing or shrinking the way its centre keeps
        # moving: the size velocity decays (else one odd detection sends the predicted
        # box to a sliver, and the next match fails the gate).
        self.x[6:8] *= _SIZE_VELOCITY_DECAY
        self.x[2:4] = np.maximum(self.x[2:4], 1.0)
        q = self._noise(self.q_scale, 8)
        q[4:, 4:] *= 0.5
        self.p = self.f @ self.p @ self.f.T + q
        return _to_xyxy(self.x[:4])

    def update(self, box: Box) -> None:
        z = _to_cxcywh(box)
        s = self.h @ self.p @ self.h.T + self._noise(self.r_scale, 4)
        k = self.p @ self.h.T @ np.linalg.inv(s)
        self.x = self.x + k @ (z - self.h @ self.x)
        self.p = (np.eye(8) - k @ self.h) @ self.p

    @property
    def box(self) -> Box:
        return _to_xyxy(self.x[:4])


def _to_cxcywh(box: Box) -> F64:
    x1, y1, x2, y2 = box
    return np.array([(x1 + x2) / 2, (y1 + y2) / 2, max(x2 - x1, 1.0), max(y2 - y1, 1.0)])


def _to_xyxy(state: F64) -> Box:
    cx, cy, w, h = (float(v) for v in state[:4])
    return (cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2)


class _Track:
    def __init__(self, track_id: int, det: Detection, cfg: TrackerConfig) -> None:
        self.id = track_id
        self.kf = _KalmanBox(det.box, cfg.process_noise, cfg.measurement_noise)
        self.hits = 1
        self.age = 0
        self.missed = 0
        self.score = det.score
        self.label = det.label
        self.confirmed = cfg.min_hits <= 1

    def snapshot(self) -> Track:
        return Track(self.id, self.kf.box, self.score, self.hits, self.age, self.missed, self.label)


def assignment_cost(tracks: F64, dets: F64) -> F64:
    """Cost of matching predicted track boxes (N, 4) with detections (M, 4)."""
    iou = iou_matrix(tracks, dets)
    tc = np.stack([(tracks[:, 0] + tracks[:, 2]) / 2, (tracks[:, 1] + tracks[:, 3]) / 2], 1)
    dc = np.stack([(dets[:, 0] + dets[:, 2]) / 2, (dets[:, 1] + dets[:, 3]) / 2], 1)
    tsize = np.maximum(tracks[:, 2] - tracks[:, 0], tracks[:, 3] - tracks[:, 1])
    dsize = np.maximum(dets[:, 2] - dets[:, 0], dets[:, 3] - dets[:, 1])
    scale = np.maximum((tsize[:, None] + dsize[None, :]) / 2, 1.0)
    dist = np.linalg.norm(tc[:, None, :] - dc[None, :, :], axis=2) / scale
    out: F64 = np.where(iou > 0, 1.0 - iou, 1.0 + dist)
    return out


class Tracker:
    """Tracks of one camera; feed it every frame's detections with :meth:`update`."""

    def __init__(self, config: TrackerConfig | None = None) -> None:
        self.config = config or TrackerConfig()
        self._tracks: list[_Track] = []
        self._next_id = 1

    def update(self, detections: Sequence[Detection]) -> list[Track]:
        """Advance one frame; the confirmed tracks to report (updated or briefly coasting)."""
        cfg = self.config
        predicted = np.array([t.kf.predict() for t in self._tracks]).reshape(-1, 4)
        for t in self._tracks:
            t.age += 1
        dets = np.array([d.box for d in detections], dtype=np.float64).reshape(-1, 4)
        matched_t: set[int] = set()
        matched_d: set[int] = set()
        # Confirmed tracks choose first; tentative ones (maybe clutter) get what is left.
        confirmed = [i for i, t in enumerate(self._tracks) if t.confirmed]
        tentative = [i for i, t in enumerate(self._tracks) if not t.confirmed]
        for group in (confirmed, tentative):
            free = [j for j in range(len(dets)) if j not in matched_d]
            if not group or not free:
                continue
            cost = assignment_cost(predicted[group], dets[free])
            rows, cols = linear_sum_assignment(cost)
            for r, c in zip(rows, cols, strict=True):
                if cost[r, c] > cfg.max_cost:
                    continue
                i, j = group[r], free[c]
                track = self._tracks[i]
                track.kf.update(detections[j].box)
                track.hits += 1
                track.missed = 0
                track.score = detections[j].score
                if track.hits >= cfg.min_hits:
                    track.confirmed = True
                matched_t.add(i)
                matched_d.add(j)
        for i, track in enumerate(self._tracks):
            if i not in matched_t:
                track.missed += 1
        # A tentative track that misses a frame was clutter; a confirmed one may coast.
        self._tracks = [t for t in self._tracks if t.missed <= (cfg.max_age if t.confirmed else 0)]
        for j, det in enumerate(detections):
            if j not in matched_d:
                self._tracks.append(_Track(self._next_id, det, cfg))
                self._next_id += 1
        return [
            t.snapshot() for t in self._tracks if t.confirmed and t.missed <= cfg.report_coasting
        ]

    @property
    def active(self) -> int:
        """Tracks alive (confirmed or not): the gating keeps looking while there are any."""
        return len(self._tracks)

    def boxes(self) -> list[Box]:
        return [t.kf.box for t in self._tracks if t.confirmed]
