"""Privacy: no frame is stored unless the config says so, and what is kept is blurred
and bounded.

:class:`SnapshotStore` is the only code in ``vision`` that writes a frame to disk.  It
does nothing when ``privacy.snapshots`` is ``off`` (the default).  Otherwise every
snapshot is blurred before it is encoded — the heads of detected people and any face
OpenCV's Haar cascade finds (``blur_faces``), or whole people (``blur_people``) — and
the folder is kept under ``max_snapshots`` files, ``max_bytes`` and ``max_age_s``,
oldest first.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import cv2
import numpy as np

from vision.config import PrivacyConfig
from vision.detectors.base import Box, Image

logger = logging.getLogger(__name__)

#: The head of a standing person: this top share of the box (ceiling cameras look down).
HEAD_SHARE = 0.35


def _blur_box(image: Image, box: Box) -> None:
    h, w = image.shape[:2]
    x1, y1 = max(0, int(box[0])), max(0, int(box[1]))
    x2, y2 = min(w, int(np.ceil(box[2]))), min(h, int(np.ceil(box[3])))
    if x2 - x1 < 2 or y2 - y1 < 2:
        return
    roi = image[y1:y2, x1:x2]
    k = max(3, (max(x2 - x1, y2 - y1) // 4) | 1)
    # Pixelate then blur: no detail of a face survives, whatever the kernel.
    small = cv2.resize(roi, (max(1, (x2 - x1) // 12), max(1, (y2 - y1) // 12)))
    coarse = cv2.resize(small, (x2 - x1, y2 - y1), interpolation=cv2.INTER_NEAREST)
    image[y1:y2, x1:x2] = cv2.GaussianBlur(coarse, (k, k), 0)


class FaceFinder:
    """OpenCV's frontal-face Haar cascade (shipped inside opencv-python-headless)."""

    def __init__(self) -> None:
        cascades = Path(cv2.data.haarcascades)  # type: ignore[attr-defined]
        path = cascades / "haarcascade_frontalface_default.xml"
        self._cascade = cv2.CascadeClassifier(str(path))
        if self._cascade.empty():
            raise RuntimeError(f"cannot load the face cascade {path}")

    def faces(self, image: Image) -> list[Box]:
        gray = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY) if image.ndim == 3 else image
        found = self._cascade.detectMultiScale(gray, scaleFactor=1.1, minNeighbors=4)
        return [(float(x), float(y), float(x + w), float(y + h)) for x, y, w, h in found]


def redact(
    image: Image, people: Sequence[Box], mode: str, faces: FaceFinder | None = None
) -> Image:
    """A blurred copy of ``image``: heads and faces, or whole people."""
    out = image.copy()
    if mode == "blur_people":
        for box in people:
            _blur_box(out, box)
        return out
    for x1, y1, x2, y2 in people:
        _blur_box(out, (x1, y1, x2, y1 + (y2 - y1) * HEAD_SHARE))
    if faces is not None:
        for box in faces.faces(image):
            pad_w, pad_h = (box[2] - box[0]) * 0.2, (box[3] - box[1]) * 0.2
            _blur_box(out, (box[0] - pad_w, box[1] - pad_h, box[2] + pad_w, box[3] + pad_h))
    return out


class SnapshotStore:
    """Blurred JPEG snapshots for the review queue, with bounded retention."""

    def __init__(self, config: PrivacyConfig, *, clock: Callable[[], float] = time.time) -> None:
        self.config = config
        self._clock = clock
        self._lock = threading.Lock()
        self._faces: FaceFinder | None = None
        if config.snapshots == "blur_faces":
            self._faces = FaceFinder()

    @property
    def enabled(self) -> bool:
        return self.config.snapshots != "off"

    def save(self, camera: str, ts_ms: int, image: Image, people: Sequence[Box]) -> Path | None:
        """Store one redacted snapshot; None (and nothing written) when snapshots are off."""
        if not self.enabled:
            return None
        redacted = redact(image, people, self.config.snapshots, self._faces)
        ok, jpeg = cv2.imencode(
            ".jpg", redacted, [cv2.IMWRITE_JPEG_QUALITY, self.config.jpeg_quality]
        )
        if not ok:
            logger.warning("camera %s: snapshot could not be encoded", camera)
            return None
        folder = self.config.directory
        with self._lock:
            folder.mkdir(parents=True, exist_ok=True)
            path = folder / f"{camera}-{ts_ms}.jpg"
            tmp = path.with_suffix(".tmp")
            tmp.write_bytes(jpeg.tobytes())
            tmp.replace(path)
            self._enforce()
        return path

    def _enforce(self) -> None:
        # One stat per file: the folder is scanned after every snapshot.
        files = sorted(
            ((p, p.stat()) for p in self.config.directory.glob("*.jpg")),
            key=lambda item: item[1].st_mtime,
        )
        cutoff = self._clock() - self.config.max_age_s
        keep: list[tuple[Path, int]] = []
        for path, st in files:
            if st.st_mtime < cutoff:
                path.unlink(missing_ok=True)
            else:
                keep.append((path, st.st_size))
        total = sum(size for _, size in keep)
        while keep and (len(keep) > self.config.max_snapshots or total > self.config.max_bytes):
            oldest, size = keep.pop(0)
            total -= size
            oldest.unlink(missing_ok=True)

    def snapshots(self) -> list[Path]:
        if not self.config.directory.is_dir():
            return []
        return sorted(self.config.directory.glob("*.jpg"))
