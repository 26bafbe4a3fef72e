"""``storeedge bench fleet``: one gateway, hundreds of simulated devices of mixed types.

The gateway runs as its own process (``storeedge gateway``) against a real
Mosquitto started for the run (or ``--broker URL``); the simulated devices run
in this process, each with its own MQTT connection, birth, last will and
heartbeats.  After a warm-up, the gateway's CPU time and resident memory are
read from ``/proc`` over the measured window, so the simulator's own load is
not counted.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import random
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Event as EventType
from pathlib import Path
from typing import Any

import yaml

from devices.credentials import hash_password
from devices.protocol import DeviceType, TrackPosition
from edge.mqtt.broker import free_port
from edge.mqtt.mosquitto import Mosquitto, MosquittoError, start_loopback
from edge.store.repo import Store
from firmware_sim.camera import CameraTracker
from firmware_sim.device import SimDevice, Ticker, now_ms
from firmware_sim.fridge import SimFridge
from firmware_sim.gate import SimGate
from firmware_sim.shelf import SimShelf

#: Heartbeat period per device type (seconds): battery devices report rarely.
HEARTBEAT_S = {"shelf": 10.0, "gate": 10.0, "camera": 10.0, "fridge": 30.0, "esl": 60.0}
CAMERA_HZ = 5.0
#: paho's loop uses select(), which cannot watch fds past 1024: split the fleet.
DEVICES_PER_PROCESS = 125
_CLK_TCK = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class FleetMix:
    shelves: int
    plates: int
    cameras: int
    fridges: int
    esls: int
    gates: int = 2

    @property
    def total(self) -> int:
        return self.shelves + self.cameras + self.fridges + self.esls + self.gates

    @classmethod
    def for_total(cls, devices: int, plates: int = 10) -> FleetMix:
        """A store-like mix: 6 % shelves, 2 % cameras, 12 % fridges, the rest labels."""
        shelves = max(1, round(devices * 0.06))
        cameras = max(1, round(devices * 0.016))
        fridges = max(1, round(devices * 0.12))
        esls = max(0, devices - 2 - shelves - cameras - fridges)
        return cls(shelves, plates, cameras, fridges, esls)


class _Camera(CameraTracker):
    """A tracker publishing three shopper floor positions at ``CAMERA_HZ``."""

    def __init__(self, store_id: str, device_id: str, host: str, port: int) -> None:
        super().__init__(store_id, device_id, host, port)
        self.heartbeat_s = HEARTBEAT_S["camera"]
        self.settings["heartbeat_s"] = self.heartbeat_s
        self._t = 0.0
        self._ticker = Ticker(f"{device_id}-tracks", 1 / CAMERA_HZ, self._tick)

    def start(self, timeout: float = 10.0) -> None:
        super().start(timeout)
        self._ticker.start()

    def stop(self) -> None:
        self._ticker.stop()
        super().stop()

    def _tick(self) -> None:
        self._t += 1 / CAMERA_HZ
        if self.connected:
            self.publish_positions(
                [
                    TrackPosition(track_id=f"t{k}", x=2.0 + k + self._t % 3, y=1.0 + self._t % 2)
                    for k in range(3)
                ]
            )


def _proc_cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _CLK_TCK  # utime + stime


def _proc_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _own_broker(workdir: Path) -> Mosquitto:
    try:
        return start_loopback(workdir)
    except MosquittoError as exc:
        raise RuntimeError(f"{exc}; or pass --broker mqtt://host:port") from None


def _write_store(workdir: Path, mix: FleetMix, port: int) -> tuple[Path, Path]:
    products = [
        {
            "barcode": str(1000 + i),
            "name": f"item {i}",
            "unit_weight_g": 150 + 37 * i,
            "price_minor": 100 + i,
        }
        for i in range(mix.plates)
    ]
    shelves = [
        {
            "device_id": f"shelf-{s:03d}",
            "plates": [
                {"plate": p, "barcode": str(1000 + p), "stock": 10} for p in range(mix.plates)
            ],
        }
        for s in range(mix.shelves)
    ]
    planogram = workdir / "planogram.yaml"
    planogram.write_text(
        yaml.safe_dump({"version": 1, "currency": "EUR", "products": products, "shelves": shelves})
    )
    db = workdir / "gateway.db"
    config = {
        "store_id": "bench",
        "planogram": str(planogram),
        "gates": [
            {"device_id": "gate-entry", "direction": "entry"},
            {"device_id": "gate-exit", "direction": "exit"},
        ],
        "trackers": [f"cam-{c:03d}" for c in range(mix.cameras)],
        "mqtt": {"broker": f"mqtt://127.0.0.1:{port}", "client_id": "bench-gateway"},
        "database": {"path": str(db)},
        "api": {"port": free_port()},
    }
    path = workdir / "store.yaml"
    path.write_text(yaml.safe_dump(config))
    # Fridges and labels are known to the gateway because they are provisioned.
    store = Store.open(db)
    try:
        hashed = hash_password("bench-only", iterations=1)
        for kind, count in (("fridge", mix.fridges), ("esl", mix.esls)):
            for i in range(count):
                store.provision("bench", f"{kind}-{i:03d}", kind, hashed, now_ms())
    finally:
        store.close()
    return path, db


def _specs(mix: FleetMix) -> list[tuple[str, str]]:
    """(type, device id) of every simulated device."""
    specs = [("shelf", f"shelf-{s:03d}") for s in range(mix.shelves)]
    specs += [("gate", "gate-entry"), ("gate", "gate-exit")]
    specs += [("camera", f"cam-{c:03d}") for c in range(mix.cameras)]
    specs += [("fridge", f"fridge-{i:03d}") for i in range(mix.fridges)]
    specs += [("esl", f"esl-{i:03d}") for i in range(mix.esls)]
    return specs


def _device(kind: str, device_id: str, plates: int, port: int, rng: random.Random) -> SimDevice:
    host, hb = "127.0.0.1", HEARTBEAT_S[kind]
    if kind == "shelf":
        shelf = SimShelf("bench", device_id, host, port, [1500.0] * plates, rng=rng)
        shelf.heartbeat_s = hb
        shelf.settings["heartbeat_s"] = hb
        return shelf
    if kind == "gate":
        gate = SimGate("bench", device_id, host, port, "entry" if "entry" in device_id else "exit")
        gate.heartbeat_s = hb
        gate.settings["heartbeat_s"] = hb
        return gate
    if kind == "camera":
        return _Camera("bench", device_id, host, port)
    if kind == "fridge":
        return SimFridge("bench", device_id, host, port, rng=rng, heartbeat_s=hb)
    return SimDevice("bench", device_id, host, port, device_type=DeviceType.ESL, heartbeat_s=hb)


def _sim_worker(
    specs: list[tuple[str, str]],
    plates: int,
    port: int,
    seed: int,
    measure: EventType,
    stop: EventType,
    out: Queue[tuple[str, int]],
) -> None:
    """One simulator process (paho uses select(): keep each process under 1024 fds)."""
    rng = random.Random(seed)
    sims = [_device(k, d, plates, port, random.Random(rng.getrandbits(64))) for k, d in specs]
    with ThreadPoolExecutor(max_workers=16) as pool:
        list(pool.map(lambda d: d.start(60.0), sims))
    out.put(("ready", len(sims)))
    measure.wait()
    sent0 = _messages_sent(sims)
    stop.wait()
    out.put(("sent", _messages_sent(sims) - sent0))
    with ThreadPoolExecutor(max_workers=16) as pool:
        list(pool.map(lambda d: d.stop(), sims))


def _states(db: Path) -> dict[str, int]:
    """Device states as the gateway recorded them (read beside the running gateway)."""
    store = Store.open(db, readonly=True)
    try:
        with store.reading():
            return store.device_state_counts()
    finally:
        store.close()


def _dead_letters(db: Path) -> int:
    store = Store.open(db, readonly=True)
    try:
        return store.dead_letter_count()
    finally:
        store.close()


def _messages_sent(devices: list[SimDevice]) -> int:
    total = 0
    for device in devices:
        total += getattr(device, "batches_sent", 0) + getattr(device, "readings_sent", 0)
        total += getattr(device, "sent", 0)
    return total


def bench_fleet(
    devices: int = 500,
    seconds: float = 30.0,
    warmup_s: float = 10.0,
    broker: str | None = None,
    seed: int = 0,
) -> dict[str, Any]:
    mix = FleetMix.for_total(devices)
    with tempfile.TemporaryDirectory(prefix="storeedge-fleet-") as tmp:
        workdir = Path(tmp)
        mosquitto: Mosquitto | None = None
        if broker is None:
            mosquitto = _own_broker(workdir)
            port = mosquitto.port
        else:
            port = int(broker.rsplit(":", 1)[1])
        config, db = _write_store(workdir, mix, port)
        gateway = subprocess.Popen(  # noqa: S603 (this interpreter, our own entry point)
            [sys.executable, "-m", "edge.cli", "gateway", "--config", str(config)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        specs = _specs(mix)
        ctx = multiprocessing.get_context("spawn")
        measure, stop = ctx.Event(), ctx.Event()
        out: Queue[tuple[str, int]] = ctx.Queue()
        chunks = [
            specs[i : i + DEVICES_PER_PROCESS] for i in range(0, len(specs), DEVICES_PER_PROCESS)
        ]
        workers = [
            ctx.Process(
                target=_sim_worker,
                args=(chunk, mix.plates, port, seed + n, measure, stop, out),
                daemon=True,
            )
            for n, chunk in enumerate(chunks)
        ]
        try:
            time.sleep(2.0)
            for worker in workers:
                worker.start()
            started = sum(out.get(timeout=180)[1] for _ in workers)
            time.sleep(warmup_s)
            measure.set()
            cpu0, t0 = _proc_cpu_s(gateway.pid), time.monotonic()
            rss_peak = 0.0
            while time.monotonic() - t0 < seconds:
                time.sleep(1.0)
                rss_peak = max(rss_peak, _proc_rss_mb(gateway.pid))
            elapsed = time.monotonic() - t0
            cpu = _proc_cpu_s(gateway.pid) - cpu0
            states = _states(db)
            stop.set()
            sent = sum(out.get(timeout=60)[1] for _ in workers)
            heartbeats = sum(1.0 / HEARTBEAT_S[kind] for kind, _ in specs)
        finally:
            stop.set()
            for worker in workers:
                worker.join(timeout=60)
                if worker.is_alive():
                    worker.kill()
            gateway.terminate()
            try:
                gateway.wait(timeout=20)
            except subprocess.TimeoutExpired:
                gateway.kill()
            if mosquitto is not None:
                mosquitto.stop()
        dead = _dead_letters(db)
    return {
        "devices": started,
        "mix": {
            "shelf": mix.shelves,
            "plates_per_shelf": mix.plates,
            "gate": mix.gates,
            "camera": mix.cameras,
            "fridge": mix.fridges,
            "esl": mix.esls,
        },
        "seconds": round(elapsed, 1),
        "messages_per_s": round(sent / elapsed + heartbeats, 1),
        "samples_per_s": mix.shelves * mix.plates * 60,
        "gateway_cpu_pct_of_one_core": round(100 * cpu / elapsed, 1),
        "gateway_rss_mb_peak": round(rss_peak, 1),
        "gateway_devices_by_state": states,
        "dead_letters": dead,
    }


def main_json(**kwargs: Any) -> str:
    return json.dumps(bench_fleet(**kwargs))
