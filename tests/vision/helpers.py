"""Synthetic videos for the vision tests."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np


def write_video(path: Path, frames: list[np.ndarray], fps: float = 10.0) -> Path:
    h, w = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (w, h))
    assert writer.isOpened(), "OpenCV cannot write MJPG here"
    for frame in frames:
        writer.write(frame)
    writer.release()
    return path


def walking_scene(n: int = 40, size: tuple[int, int] = (320, 180)) -> list[np.ndarray]:
    """A textured floor and a dark 'person' box walking left to right from frame 10."""
    w, h = size
    rng = np.random.default_rng(1)
    floor = cv2.GaussianBlur(rng.integers(90, 170, (h, w, 3), dtype=np.uint8), (7, 7), 0)
    frames = []
    for i in range(n):
        img = floor.copy()
        if i >= 10:
            x = 20 + (i - 10) * 6
            cv2.rectangle(img, (x, 50), (x + 30, 140), (30, 30, 40), -1)
        noise = rng.normal(0, 2, img.shape)
        frames.append(np.clip(img + noise, 0, 255).astype(np.uint8))
    return frames
