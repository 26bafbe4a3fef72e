"""Device messages of a replay: births, shelf weight batches, gate events, tracker positions.

Every topic comes from :mod:`devices.protocol` and every payload from its
``encode``.  ``Message.t_ms`` is when the device sends (from the case start);
payload ``ts`` is ``base_ms + t_ms``, except a weight batch, whose ``ts`` is the
time of its first sample (``base_ms + k * 200``, sent at ``(k + 1) * 200``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from devices.protocol import (
    SAMPLE_RATE_HZ,
    SAMPLES_PER_BATCH,
    Birth,
    DeviceType,
    GateEvent,
    Positions,
    TrackPosition,
    WeightBatch,
    birth_topic,
    encode,
    gate_topic,
    positions_topic,
    weight_topic,
)
from firmware_sim.replay.effects import EventTiming
from firmware_sim.replay.realism import Realism
from firmware_sim.replay.store import ReplayStore
from firmware_sim.replay.walk import Visit

FIRMWARE = "aifi-replay-1.0"
BATCH_MS = SAMPLES_PER_BATCH * 1000 // SAMPLE_RATE_HZ  # 200
_DECIMALS = 1
_DUPLICATE_DELAY_MS = (1, BATCH_MS - 1)


@dataclass(frozen=True)
class Message:
    t_ms: int  # when the device sends it, from the case start
    topic: str
    payload: bytes


def births(
    store_id: str, shelves: Mapping[str, int], gates: Sequence[str], tracker: str, base_ms: int
) -> list[Message]:
    """A Birth (seq 0) of every device at t = 0."""
    devices = [(s, DeviceType.SHELF, n) for s, n in shelves.items()]
    devices += [(g, DeviceType.GATE, 0) for g in gates] + [(tracker, DeviceType.CAMERA, 0)]
    return [
        Message(
            0,
            birth_topic(store_id, device),
            encode(
                Birth(
                    seq=0,
                    ts=base_ms,
                    device_type=kind,
                    firmware=FIRMWARE,
                    birth_count=0,
                    plates=plates,
                )
            ),
        )
        for device, kind, plates in devices
    ]


@dataclass(frozen=True)
class ShelfMessages:
    messages: list[Message]
    samples: int  # plate samples in the emitted messages


def weight_messages(
    store_id: str,
    shelf_id: str,
    signal: npt.NDArray[np.float64],
    base_ms: int,
    realism: Realism,
    rng: np.random.Generator,
) -> ShelfMessages:
    """One WeightBatch per 200 ms (seq 1, 2, ...), with losses, duplicates and swaps."""
    topic = weight_topic(store_id, shelf_id)
    plates, total = signal.shape
    batches = total // SAMPLES_PER_BATCH
    rounded = np.round(signal, _DECIMALS)
    send = [(k + 1) * BATCH_MS for k in range(batches)]
    payloads = [
        encode(
            WeightBatch(
                seq=k + 1,
                ts=base_ms + k * BATCH_MS,
                rate_hz=SAMPLE_RATE_HZ,
                samples=rounded[:, k * SAMPLES_PER_BATCH : (k + 1) * SAMPLES_PER_BATCH].tolist(),
            )
        )
        for k in range(batches)
    ]
    fate = rng.random(batches)
    dropped = fate < realism.loss
    disordered = (fate >= realism.loss) & (fate < realism.loss + realism.disorder)
    duplicate = rng.random(batches) < 0.5
    messages: list[Message] = []
    k = 0
    while k < batches:
        if dropped[k]:
            k += 1
            continue
        if disordered[k] and not duplicate[k] and k + 1 < batches and not dropped[k + 1]:
            messages.append(Message(send[k], topic, payloads[k + 1]))
            messages.append(Message(send[k + 1], topic, payloads[k]))
            k += 2
            continue
        messages.append(Message(send[k], topic, payloads[k]))
        if disordered[k] and duplicate[k]:
            delay = int(rng.integers(*_DUPLICATE_DELAY_MS))
            messages.append(Message(send[k] + delay, topic, payloads[k]))
        k += 1
    return ShelfMessages(messages, len(messages) * plates * SAMPLES_PER_BATCH)


def gate_messages(
    store_id: str,
    visits: Sequence[Visit],
    tokens: Mapping[str, str],
    entry_gate: str,
    exit_gate: str,
    base_ms: int,
) -> list[Message]:
    """Entry and exit GateEvents, seq per gate in time order (1, 2, ... after the birth)."""
    passes = sorted(
        [(v.entry_ms, entry_gate, "entry", tokens[v.shopper]) for v in visits]
        + [(v.exit_ms, exit_gate, "exit", tokens[v.shopper]) for v in visits],
        key=lambda p: (p[0], p[1] != entry_gate),
    )
    seq: dict[str, int] = {}
    messages: list[Message] = []
    for t_ms, gate, direction, token in passes:
        seq[gate] = seq.get(gate, 0) + 1
        event = GateEvent(
            seq=seq[gate],
            ts=base_ms + t_ms,
            direction="entry" if direction == "entry" else "exit",
            session_token=token,
        )
        messages.append(Message(t_ms, gate_topic(store_id, gate), encode(event)))
    return messages


#: Where a hand that is not reaching into a shelf is: at the side, hip high.
HAND_AT_REST_Z = 0.9


class HandModel:
    """Where each shopper's reaching hand is: on the shelf while touching it, else at rest.

    This is what a ceiling-camera pose tracker reports (a wrist keypoint in 3-D);
    the weight events' hand-contact windows say when a hand is on which plates.
    """

    def __init__(self, store: ReplayStore, timings: Sequence[EventTiming]) -> None:
        self._touch: dict[str, list[tuple[int, int, tuple[float, float, float]]]] = {}
        for t in timings:
            points = [
                (*store.plate_xy(t.shelf_id, p), store.plate_z(t.shelf_id, p)) for p in t.plates
            ]
            centre = tuple(sum(c[i] for c in points) / len(points) for i in range(3))
            self._touch.setdefault(t.shopper, []).append(
                (t.start_ms, t.end_ms, (centre[0], centre[1], centre[2]))
            )

    def at(self, shopper: str, t_ms: int, body: tuple[float, float]) -> tuple[float, float, float]:
        for start, end, where in self._touch.get(shopper, []):
            if start <= t_ms <= end:
                return where
        return body[0], body[1], HAND_AT_REST_Z


def position_messages(
    store_id: str,
    tracker: str,
    visits: Sequence[Visit],
    tokens: Mapping[str, str],
    duration_ms: int,
    base_ms: int,
    realism: Realism,
    rng: np.random.Generator,
    hands: HandModel | None = None,
) -> list[Message]:
    """One Positions message per tick (empty when nobody is in), shoppers in the store."""
    topic = positions_topic(store_id, tracker)
    track_ids = {v.shopper: f"track-{i + 1}" for i, v in enumerate(visits)}
    messages: list[Message] = []
    tick = 0
    while (t_ms := round(tick * 1000 / realism.position_hz)) < duration_ms:
        tracks: list[TrackPosition] = []
        for visit in visits:
            if visit.entry_ms <= t_ms < visit.exit_ms:
                body = visit.path.at(t_ms)
                x, y = body
                if realism.position_noise_m > 0:
                    x += float(rng.normal(0.0, realism.position_noise_m))
                    y += float(rng.normal(0.0, realism.position_noise_m))
                hand: dict[str, float] = {}
                if hands is not None:
                    hx, hy, hz = hands.at(visit.shopper, t_ms, body)
                    if realism.hand_noise_m > 0:
                        hx, hy, hz = (
                            v + float(rng.normal(0.0, realism.hand_noise_m)) for v in (hx, hy, hz)
                        )
                    hand = {"hand_x": round(hx, 3), "hand_y": round(hy, 3), "hand_z": round(hz, 3)}
                tracks.append(
                    TrackPosition(
                        track_id=track_ids[visit.shopper],
                        x=round(x, 3),
                        y=round(y, 3),
                        session_token=tokens[visit.shopper],
                        **hand,
                    )
                )
        payload = Positions(seq=tick + 1, ts=base_ms + t_ms, positions=tracks)
        messages.append(Message(t_ms, topic, encode(payload)))
        tick += 1
    return messages
