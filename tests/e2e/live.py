"""A whole simulated store for the browser: broker, gateway, API with the dashboard,
and the store simulator (shelves, gates, fridge sensors), all in this process."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edge.api.server import ApiServer, serve_gateway
from edge.app import Gateway
from edge.config import default_config_path, load_config
from edge.mqtt.broker import free_port
from firmware_sim.store import StoreSimulator

STAFF_TOKEN = "e2e-staff-token"


def find_chromium() -> str | None:
    """Debian's chromium (``apt-get install -y chromium``), or ``$STOREEDGE_CHROMIUM``."""
    override = os.environ.get("STOREEDGE_CHROMIUM")
    if override:
        return override if os.access(override, os.X_OK) else None
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    return None


@dataclass
class LiveStore:
    gateway: Gateway
    api: ApiServer
    sim: StoreSimulator
    token: str = STAFF_TOKEN

    @property
    def url(self) -> str:
        return self.api.url

    def read(self, fn: Any) -> Any:
        """A read on the gateway's worker (its own connection)."""
        return self.gateway.call(lambda: fn(self.gateway.store))


@contextmanager
def live_store(
    data_dir: Path, store_id: str, broker: str = "embedded", **env: str
) -> Iterator[LiveStore]:
    """``broker``: a URL (the tests' Mosquitto) or ``embedded``; ``env``: more config
    overrides, e.g. ``COLD_CHAIN__AFTER_S="5"``."""
    overrides = {
        "STOREEDGE_STORE_ID": store_id,
        "STOREEDGE_MQTT__BROKER": broker,
        "STOREEDGE_MQTT__CLIENT_ID": f"gw-{store_id}",
        "STOREEDGE_MQTT__EMBEDDED_PORT": "0",
        "STOREEDGE_DATABASE__PATH": str(data_dir / "gateway.db"),
        # simulated shoppers show plain tokens at the gate, not signed check-in codes
        "STOREEDGE_SHOPPERS__VERIFY_CHECKIN": "false",
        **{f"STOREEDGE_{k}": v for k, v in env.items()},
    }
    config = load_config(default_config_path(), env=overrides)
    with ExitStack() as stack:
        gateway = Gateway(config)
        gateway.start()
        stack.callback(gateway.stop)
        if gateway.link is None or not gateway.link.wait_connected(15):
            raise RuntimeError("the gateway did not connect to its broker")
        api = serve_gateway(gateway, "127.0.0.1", free_port(), STAFF_TOKEN)
        stack.callback(api.stop)
        host, port = gateway.mqtt_address
        gates = {g.direction: g.device_id for g in config.gates}
        sim = StoreSimulator(
            gateway.planogram,
            store_id,
            host,
            port,
            entry_gate=gates["entry"],
            exit_gate=gates["exit"],
            seed=7,
            pace=0.5,
            esls=[esl.device_id for esl in config.esls],
            fridges={u.device_id: u.max_c - 4.0 for u in config.cold_chain.units},
        )
        sim.start()
        stack.callback(sim.stop)
        yield LiveStore(gateway, api, sim)
