"""A simulated product camera for the replay (``--vision``): what it saw of each grab.

For every labelled pick and put-back the camera renders a view of the TRUE product
(:func:`vision.product.render.view`: turned, scaled, under other light, noisy, often
partly covered by a hand), shrinks it to the size a ceiling camera sees a product at
(``px`` pixels across) with motion blur, runs the shipped classifier
(:class:`vision.product.ProductClassifier`, the real ONNX model) on it, and publishes
its top scores and which way the product went (taken or put back) as a
``ProductSeen`` through the same wire path as the other
synthesised messages.  A share of the grabs (``miss_rate``) is not seen at all
(occluded, out of view, the product hidden in the hand).

This camera is simulated from the labels and the classifier was trained on views
from the same renderer: the with-vision figures are an upper bound of what a
product camera adds, not a field result.

Timing: the product is seen around the moment the weight settles (``seen_ms``
after the labelled change, negative: before), and the message leaves the camera
``latency_ms`` later (capture, classify, publish).  Deterministic per case and seed,
from its own random stream: the weight, gate and position messages are the same
with and without the camera.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from devices.protocol import (
    Birth,
    DeviceType,
    HandoffSeen,
    ProductSeen,
    birth_topic,
    encode,
    handoff_topic,
    product_topic,
)
from firmware_sim.replay.synth import Synthesis
from firmware_sim.replay.wire import Message
from firmware_sim.scenario import Case
from vision.product import ProductClassifier
from vision.product.render import degrade, view

DEVICE_ID = "product-cam-1"
FIRMWARE = "replay-product-camera-1.0"
_STREAM = 77  # this camera's random stream, apart from the synthesiser's


@dataclass(frozen=True)
class CameraRealism:
    """How far the simulated product camera falls short of a perfect view.

    * ``miss_rate``: share of grabs the camera does not see at all.
    * ``px``: range of the product's size in the frame, pixels across (a 10 cm
      package 1.5-3 m below a 640-pixel ceiling camera).
    * ``blur_px``: range of the motion blur's length (a moving hand), pixels at the
      classifier's input size.
    * ``seen_ms``: when the product is seen, from the labelled change.
    * ``latency_ms``: from seeing it to the message leaving the camera.
    * ``top_k``: how many products' scores a message carries.
    """

    miss_rate: float = 0.2
    px: tuple[int, int] = (16, 32)
    blur_px: tuple[int, int] = (1, 7)
    seen_ms: tuple[int, int] = (-300, 800)
    latency_ms: tuple[int, int] = (150, 800)
    top_k: int = 8

    def __post_init__(self) -> None:
        if not 0.0 <= self.miss_rate <= 1.0:
            raise ValueError("miss_rate is a share: 0..1")
        if not 4 <= self.px[0] <= self.px[1]:
            raise ValueError(f"px must be 4 <= lo <= hi, got {self.px}")
        if not 1 <= self.blur_px[0] <= self.blur_px[1]:
            raise ValueError(f"blur_px must be 1 <= lo <= hi, got {self.blur_px}")
        if self.seen_ms[0] > self.seen_ms[1] or not 0 <= self.latency_ms[0] <= self.latency_ms[1]:
            raise ValueError("seen_ms and latency_ms are ranges lo <= hi (latency >= 0)")
        if not 1 <= self.top_k <= 32:
            raise ValueError("top_k must be 1..32")


@dataclass
class CameraStats:
    grabs: int = 0  # picks and put-backs (of a product the shelf cannot weigh too)
    seen: int = 0  # ... that the camera saw and reported
    top1_right: int = 0  # ... whose best score was the true product
    handoffs: int = 0  # products passed between shoppers
    handoffs_seen: int = 0  # ... that the camera saw and reported

    def add(self, other: CameraStats) -> None:
        self.grabs += other.grabs
        self.seen += other.seen
        self.top1_right += other.top1_right
        self.handoffs += other.handoffs
        self.handoffs_seen += other.handoffs_seen


@dataclass
class ProductCamera:
    """One simulated product camera over the whole store (its ``DEVICE_ID``)."""

    realism: CameraRealism = field(default_factory=CameraRealism)
    model: Path | None = None
    device_id: str = DEVICE_ID
    stats: CameraStats = field(default_factory=CameraStats)

    def __post_init__(self) -> None:
        cv2.setNumThreads(1)
        self.classifier = ProductClassifier(self.model)

    def _classify(
        self, barcode: str, names: dict[str, str], rng: np.random.Generator
    ) -> dict[str, float]:
        """The classifier's top scores for a view of ``barcode`` as this camera sees it."""
        r = self.realism
        px = int(rng.integers(r.px[0], r.px[1] + 1))
        blur = int(rng.integers(r.blur_px[0], r.blur_px[1] + 1))
        crop = degrade(view(barcode, names.get(barcode, barcode), rng), px, blur, rng)
        top = sorted(self.classifier.scores(crop).items(), key=lambda kv: -kv[1])[: r.top_k]
        return {b: round(p, 4) for b, p in top}

    def reset(self) -> None:
        """Start counting afresh (a new replay)."""
        self.stats = CameraStats()

    def messages(
        self,
        case: Case,
        syn: Synthesis,
        store_id: str,
        base_ms: int,
        names: dict[str, str],
        seed: int,
    ) -> list[Message]:
        """A Birth at t = 0 and a ProductSeen per grab seen, sorted by send time."""
        grabs: dict[int, tuple[str, int, set[int]]] = {}  # event -> shelf, settled, plates
        for change in syn.changes:
            grabs.setdefault(change.event, (change.shelf_id, change.end_ms, set()))[2].add(
                change.plate
            )
        r = self.realism
        stats = CameraStats()
        sent: list[tuple[int, ProductSeen]] = []
        for index in sorted(grabs):
            shelf_id, end_ms, plates = grabs[index]
            truth = case.events[index].barcode
            rng = np.random.default_rng([seed, zlib.crc32(case.name.encode()), _STREAM, index])
            stats.grabs += 1
            if rng.random() < r.miss_rate:
                continue
            scores = self._classify(truth, names, rng)
            stats.seen += 1
            stats.top1_right += max(scores, key=lambda b: scores[b]) == truth
            seen_ms = max(0, end_ms + int(rng.integers(r.seen_ms[0], r.seen_ms[1] + 1)))
            send_ms = seen_ms + int(rng.integers(r.latency_ms[0], r.latency_ms[1] + 1))
            message = ProductSeen(
                seq=0,
                ts=base_ms + seen_ms,
                shelf_id=shelf_id,
                plates=sorted(plates),
                scores=scores,
                action="take" if case.events[index].kind == "pick" else "put_back",
            )
            sent.append((send_ms, message))
        handed: list[tuple[int, HandoffSeen]] = []
        for index, event in enumerate(case.events):
            if event.kind != "handoff":
                continue
            rng = np.random.default_rng([seed, zlib.crc32(case.name.encode()), _STREAM, index])
            stats.handoffs += 1
            if rng.random() < r.miss_rate:
                continue
            stats.handoffs_seen += 1
            scores = self._classify(event.barcode, names, rng)
            send_ms = event.t_ms + int(rng.integers(r.latency_ms[0], r.latency_ms[1] + 1))
            handed.append(
                (
                    send_ms,
                    HandoffSeen(
                        seq=0,
                        ts=base_ms + event.t_ms,
                        from_token=syn.tokens[event.shopper],
                        to_token=syn.tokens[event.to_shopper],
                        quantity=event.quantity,
                        scores=scores,
                    ),
                )
            )
        self.stats.add(stats)
        sent.sort(key=lambda item: item[0])
        handed.sort(key=lambda item: item[0])
        birth = Birth(
            seq=0,
            ts=base_ms,
            device_type=DeviceType.CAMERA,
            firmware=FIRMWARE,
            birth_count=0,
        )
        out = [Message(0, birth_topic(store_id, self.device_id), encode(birth))]
        topic = product_topic(store_id, self.device_id)
        for seq, (send_ms, message) in enumerate(sent, start=1):
            out.append(Message(send_ms, topic, encode(message.model_copy(update={"seq": seq}))))
        handoffs = handoff_topic(store_id, self.device_id)
        for seq, (send_ms, handoff) in enumerate(handed, start=len(sent) + 1):
            out.append(Message(send_ms, handoffs, encode(handoff.model_copy(update={"seq": seq}))))
        return sorted(out, key=lambda m: m.t_ms)


def merge(messages: Sequence[Message], extra: Sequence[Message]) -> list[Message]:
    """Both streams in send order; at equal times the first stream's messages first."""
    return sorted([*messages, *extra], key=lambda m: m.t_ms)
