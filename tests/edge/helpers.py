"""Drive a gateway's live ingest path without a broker: exact bytes, a controlled clock."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

from devices import protocol as p
from devices.layout import Planogram
from edge.app import Gateway
from edge.config import parse_config


class Bench:
    """A gateway (not started: no MQTT) fed through its real Dispatcher."""

    def __init__(
        self,
        tmp_path: Path,
        planogram: Planogram,
        trackers: tuple[str, ...] = (),
        shoppers: dict[str, Any] | None = None,
    ):
        cfg = parse_config(
            {
                "store_id": "s-1",
                "planogram": "x.yaml",
                "gates": [
                    {"device_id": "gate-in", "direction": "entry"},
                    {"device_id": "gate-out", "direction": "exit"},
                ],
                "trackers": list(trackers),
                "database": {"path": str(tmp_path / "g.db")},
                # plain session tokens at the gates, unless a test checks check-in
                "shoppers": shoppers if shoppers is not None else {"verify_checkin": False},
            },
            base_dir=tmp_path,
            env={},
        )
        self.now = 1_000_000
        self.gw = Gateway(cfg, planogram=planogram, clock_ms=lambda: self.now)
        self.planogram = planogram
        self.rng = random.Random(1)
        self.seq: dict[str, int] = {}
        self.loads = {
            (s.device_id, i): 1000.0 for s in planogram.shelves for i in range(s.plate_count)
        }
        self.receipts: list[p.ReceiptMessage] = []
        self.gw.add_receipt_listener(self.receipts.append)

    def send(self, topic: str, body: dict[str, Any]) -> bool:
        device = topic.split("/")[3]
        self.seq[device] = self.seq.get(device, 0) + 1
        payload = {"seq": self.seq[device], "ts": self.now, **body}
        return self.gw.dispatcher.dispatch(topic, json.dumps(payload).encode())

    def gate(self, direction: str, token: str) -> None:
        gate = "gate-in" if direction == "entry" else "gate-out"
        self.send(p.gate_topic("s-1", gate), {"direction": direction, "session_token": token})

    def positions(self, where: dict[str, tuple[float, ...]]) -> None:
        """Body (x, y), or body and hand (x, y, hand_x, hand_y, hand_z), per token."""
        tracks = []
        for t, xy in where.items():
            track = {"track_id": t, "session_token": t, "x": xy[0], "y": xy[1]}
            if len(xy) == 5:
                track.update(hand_x=xy[2], hand_y=xy[3], hand_z=xy[4])
            tracks.append(track)
        self.send(p.positions_topic("s-1", "tracker-1"), {"positions": tracks})

    def tick(self, seconds: float = 0.2, where: dict[str, tuple[float, ...]] | None = None):
        """Advance time in 200 ms batches, every shelf publishing its (noisy) loads."""
        for _ in range(max(1, round(seconds / 0.2))):
            for shelf in self.planogram.shelves:
                samples = [
                    [self.loads[(shelf.device_id, i)] + self.rng.gauss(0, 1.0) for _ in range(12)]
                    for i in range(shelf.plate_count)
                ]
                self.send(p.weight_topic("s-1", shelf.device_id), {"samples": samples})
            if where:
                self.positions(where)
            self.now += 200

    def change(self, shelf: str, plate: int, delta_g: float, **kw: Any) -> None:
        self.loads[(shelf, plate)] += delta_g
        self.tick(1.2, **kw)

    @property
    def store(self):
        return self.gw.store


def shopper_bench(
    tmp_path: Path, planogram: Planogram, trackers: tuple[str, ...] = (), token: str = "tok-1"
) -> Bench:
    """A Bench a second into the day, with one shopper (``token``) in the store."""
    bench = Bench(tmp_path, planogram, trackers=trackers)
    bench.tick(1)
    bench.gate("entry", token)
    return bench
