"""Gateway + simulated store against the session's real Mosquitto."""

from __future__ import annotations

import json
import queue
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest

from devices.layout import load_planogram
from devices.protocol import ReceiptMessage
from edge.app import Gateway
from edge.config import GatewayConfig, default_config_path, load_config
from firmware_sim.store import StoreSimulator


def gateway_config(store_id: str, broker_url: str, db: Path, **mqtt: Any) -> GatewayConfig:
    env = {
        "STOREEDGE_STORE_ID": store_id,
        "STOREEDGE_MQTT__BROKER": broker_url,
        "STOREEDGE_MQTT__CLIENT_ID": f"gw-{store_id}",
        "STOREEDGE_DATABASE__PATH": str(db),
        # simulated shoppers show plain tokens (tests/integration/test_shopper_app.py
        # checks in with signed ones)
        "STOREEDGE_SHOPPERS__VERIFY_CHECKIN": "false",
    }
    env.update({f"STOREEDGE_MQTT__{k.upper()}": str(v) for k, v in mqtt.items()})
    return load_config(default_config_path(), env=env)


@dataclass
class RunningGateway:
    gateway: Gateway
    receipts: queue.Queue[ReceiptMessage]

    def next_receipt(self, timeout: float = 15.0) -> ReceiptMessage:
        return self.receipts.get(timeout=timeout)


@contextmanager
def started_gateway(cfg: GatewayConfig) -> Iterator[RunningGateway]:
    """A gateway started with ``cfg`` and connected to the broker; stopped on exit."""
    gw = Gateway(cfg)
    receipts: queue.Queue[ReceiptMessage] = queue.Queue()
    gw.add_receipt_listener(receipts.put)
    gw.start()
    try:
        assert gw.link is not None
        assert gw.link.wait_connected(10), "gateway did not connect to mosquitto"
        yield RunningGateway(gw, receipts)
    finally:
        gw.stop()


@pytest.fixture
def running_gateway(mosquitto, unique_store_id, tmp_path) -> Iterator[RunningGateway]:
    cfg = gateway_config(unique_store_id, mosquitto.url, tmp_path / "gateway.db")
    with started_gateway(cfg) as running:
        yield running


def store_simulator(gw: Gateway, mosquitto: Any, seed: int, **kwargs: Any) -> StoreSimulator:
    """The simulated store (planogram, both gates) for ``gw``, on the session's broker."""
    cfg = gw.config
    return StoreSimulator(
        load_planogram(cfg.planogram),
        cfg.store_id,
        mosquitto.host,
        mosquitto.port,
        entry_gate="gate-entry",
        exit_gate="gate-exit",
        seed=seed,
        **kwargs,
    )


class RawDevice:
    """A plain paho publisher standing in for a device, to send exact bytes."""

    def __init__(self, host: str, port: int, client_id: str) -> None:
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id)
        self.client.connect(host, port)
        self.client.loop_start()

    def send(self, topic: str, payload: bytes | dict[str, Any]) -> None:
        data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        self.client.publish(topic, data, qos=1).wait_for_publish(5)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def raw_device(mosquitto) -> Iterator[RawDevice]:
    dev = RawDevice(mosquitto.host, mosquitto.port, f"raw-{time.monotonic_ns()}")
    yield dev
    dev.close()


def wait_for(predicate: Any, timeout: float = 10.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


__all__ = [
    "RawDevice",
    "RunningGateway",
    "gateway_config",
    "started_gateway",
    "store_simulator",
    "threading",
    "wait_for",
]
