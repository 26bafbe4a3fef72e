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


def draw_person(img: np.ndarray, x: int, y: int, w: int = 30, h: int = 90) -> None:
    """A shopper seen from above and aside: head, shirt, trousers; not one flat colour
    (a flat patch is what light and shadow look like to the detector)."""
    cv2.rectangle(img, (x, y + h // 5), (x + w, y + h // 2), (40, 40, 160), -1)  # shirt
    cv2.rectangle(img, (x + 3, y + h // 2), (x + w - 3, y + h), (90, 40, 20), -1)  # trousers
    cv2.circle(img, (x + w // 2, y + h // 10), max(4, w // 4), (120, 160, 210), -1)  # head


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
            draw_person(img, x, 50)
        noise = rng.normal(0, 2, img.shape)
        frames.append(np.clip(img + noise, 0, 255).astype(np.uint8))
    return frames
