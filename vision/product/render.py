"""Pictures of products that can be made offline: the classifier's training data.

Each product (barcode, name) gets a deterministic package design: two colours and a
pattern from its barcode, a shape from its name (bottle, can, bag, box), its name
printed across it.  :func:`view` then shows it as a ceiling camera might see it in a
shopper's hand: turned, scaled, blurred, under different light, with noise, partly
covered by a hand, on a cluttered background.  Same product, same design; different
seeds, different views.
"""

from __future__ import annotations

import hashlib
from functools import lru_cache

import cv2
import numpy as np
import numpy.typing as npt

Image = npt.NDArray[np.uint8]
#: The classifier's input side, pixels.
SIZE = 48
_CANVAS = 96


def _digest(barcode: str) -> bytes:
    return hashlib.sha256(barcode.encode()).digest()


def _shape(name: str) -> str:
    lowered = name.lower()
    if any(w in lowered for w in ("water", "drink", "soda", "juice", "pet", "tea", "coke")):
        return "bottle"
    if any(w in lowered for w in ("can", "beer", "energy")):
        return "can"
    if any(w in lowered for w in ("chips", "crisps", "snack", "candy", "bar", "gum")):
        return "bag"
    return "box"


@lru_cache(maxsize=1024)
def design(barcode: str, name: str) -> Image:
    """The front of the package on a transparent-black canvas (``_CANVAS`` square).

    Drawn once per product (cached, read-only): every view of it starts from the same."""
    d = _digest(barcode)
    c1 = tuple(int(v) for v in d[0:3])
    c2 = tuple(int(v) for v in d[3:6])
    img = np.zeros((_CANVAS, _CANVAS, 3), dtype=np.uint8)
    shape = _shape(name)
    mask = np.zeros((_CANVAS, _CANVAS), dtype=np.uint8)
    if shape == "bottle":
        cv2.rectangle(mask, (34, 22), (62, 90), 255, -1)
        cv2.rectangle(mask, (42, 6), (54, 22), 255, -1)
    elif shape == "can":
        cv2.rectangle(mask, (28, 16), (68, 86), 255, -1)
    elif shape == "bag":
        cv2.ellipse(mask, (48, 50), (34, 40), 0, 0, 360, 255, -1)
    else:
        cv2.rectangle(mask, (16, 14), (80, 84), 255, -1)
    img[:] = c1
    pattern = d[6] % 4
    if pattern == 0:
        for y in range(0, _CANVAS, 12):
            cv2.rectangle(img, (0, y), (_CANVAS, y + 5), c2, -1)
    elif pattern == 1:
        cv2.circle(img, (48, 48), 18 + d[7] % 10, c2, -1)
    elif pattern == 2:
        pts = np.array([[0, _CANVAS], [_CANVAS, 0], [_CANVAS, 30]], dtype=np.int32)
        cv2.fillPoly(img, [pts], c2)
    else:
        for x in range(0, _CANVAS, 16):
            cv2.line(img, (x, 0), (x + 40, _CANVAS), c2, 4)
    label = "".join(ch for ch in name.upper() if ch.isalnum() or ch == " ")[:10] or barcode[-4:]
    text_colour = (255, 255, 255) if sum(c1) < 380 else (0, 0, 0)
    cv2.putText(img, label[:5], (18, 46), cv2.FONT_HERSHEY_SIMPLEX, 0.45, text_colour, 1)
    cv2.putText(img, label[5:10], (18, 62), cv2.FONT_HERSHEY_SIMPLEX, 0.45, text_colour, 1)
    cv2.putText(img, barcode[-3:], (30, 78), cv2.FONT_HERSHEY_PLAIN, 0.8, c2, 1)
    img[mask == 0] = 0
    img.setflags(write=False)
    return img


def view(barcode: str, name: str, rng: np.random.Generator) -> Image:
    """One camera view of the product, ``SIZE`` square, BGR."""
    front = design(barcode, name)
    background = rng.integers(60, 200, (_CANVAS, _CANVAS, 3), dtype=np.uint8)
    background = np.asarray(
        cv2.GaussianBlur(background, (0, 0), float(rng.uniform(2, 8))), dtype=np.uint8
    )
    angle = float(rng.uniform(-35, 35))
    scale = float(rng.uniform(0.7, 1.15))
    shift = rng.uniform(-10, 10, 2)
    m = np.asarray(cv2.getRotationMatrix2D((_CANVAS / 2, _CANVAS / 2), angle, scale), np.float64)
    m[:, 2] += shift
    warped = cv2.warpAffine(front, m, (_CANVAS, _CANVAS))
    mask = cv2.warpAffine((front.max(axis=2) > 0).astype(np.uint8) * 255, m, (_CANVAS, _CANVAS))
    img = np.where(mask[..., None] > 0, warped, background).astype(np.uint8)
    if rng.random() < 0.6:  # a hand over part of it
        centre = (int(rng.integers(20, 76)), int(rng.integers(20, 76)))
        skin = tuple(int(v) for v in rng.integers([60, 90, 120], [140, 170, 230]))
        cv2.ellipse(
            img,
            centre,
            (int(rng.integers(10, 22)), int(rng.integers(6, 14))),
            float(rng.uniform(0, 180)),
            0,
            360,
            skin,
            -1,
        )
    gain = float(rng.uniform(0.6, 1.4))
    bias = float(rng.uniform(-30, 30))
    tint = rng.uniform(0.85, 1.15, 3)
    out = img.astype(np.float32) * gain * tint + bias
    out = out + rng.normal(0, float(rng.uniform(2, 10)), out.shape).astype(np.float32)
    out_u8 = np.clip(out, 0, 255).astype(np.uint8)
    if rng.random() < 0.7:
        k = int(rng.choice([3, 5]))
        out_u8 = np.asarray(cv2.GaussianBlur(out_u8, (k, k), 0), dtype=np.uint8)
    small = cv2.resize(out_u8, (SIZE, SIZE), interpolation=cv2.INTER_AREA)
    return small.astype(np.uint8)


def degrade(crop: Image, px: int, blur: int, rng: np.random.Generator) -> Image:
    """``crop`` as a far, moving product: ``px`` pixels across (then back to its size),
    smeared by a motion blur ``blur`` pixels long in a random direction (1: none)."""
    side = crop.shape[0]
    small = cv2.resize(crop, (px, px), interpolation=cv2.INTER_AREA)
    out = np.asarray(cv2.resize(small, (side, side), interpolation=cv2.INTER_LINEAR), np.uint8)
    if blur > 1:
        line = np.zeros((blur, blur), dtype=np.float32)
        line[blur // 2, :] = 1.0
        turn = cv2.getRotationMatrix2D((blur / 2, blur / 2), float(rng.uniform(0, 180)), 1.0)
        kernel = np.asarray(cv2.warpAffine(line, turn, (blur, blur)), dtype=np.float32)
        kernel /= max(float(kernel.sum()), 1e-6)
        out = np.asarray(cv2.filter2D(out, -1, kernel), dtype=np.uint8)
    return out
