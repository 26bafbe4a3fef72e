"""Per-device credentials and ACLs, on a real Mosquitto started from `broker-config`."""

from __future__ import annotations

import json
import shutil
import tempfile
import threading
import time
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from typer.testing import CliRunner

from devices import protocol as p
from edge.cli import app
from edge.mqtt.broker import free_port
from edge.mqtt.mosquitto import find_mosquitto, start_mosquitto
from tests.integration.conftest import wait_for

STORE = "sec-store"


def _cli(*args: str) -> str:
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result.output


def _client(port: int, user: str | None, password: str | None) -> tuple[mqtt.Client, int]:
    """Connect and return the client with the CONNACK reason code (0 = accepted)."""
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"{user}-{time.monotonic_ns()}")
    if user is not None:
        client.username_pw_set(user, password)
    result: dict[str, int] = {}
    done = threading.Event()

    def on_connect(_c, _u, _f, rc, _p=None):
        result["rc"] = rc.value
        done.set()

    client.on_connect = on_connect
    client.connect("127.0.0.1", port)
    client.loop_start()
    assert done.wait(5), "no CONNACK"
    return client, result["rc"]


@pytest.fixture
def secured_broker(tmp_path):
    if find_mosquitto() is None:
        pytest.fail("mosquitto is not installed")
    data = tmp_path / "data"
    creds = {}
    for device in ("shelf-1", "shelf-2"):
        out = _cli(
            "devices",
            "provision",
            "--store",
            STORE,
            "--id",
            device,
            "--type",
            "shelf",
            "--json",
            "--data-dir",
            str(data),
        )
        creds[device] = json.loads(out)["password"]
    # Mosquitto drops root for its own user: the folder must be reachable by it.
    out_dir = Path(tempfile.mkdtemp(prefix="storeedge-broker-", dir="/tmp"))
    port = free_port()
    _cli(
        "devices",
        "broker-config",
        "--out",
        str(out_dir),
        "--port",
        str(port),
        "--bind",
        "127.0.0.1",
        "--store",
        STORE,
        "--data-dir",
        str(data),
    )
    creds["gateway"] = json.loads((out_dir / "gateway.json").read_text())["password"]
    broker = start_mosquitto(out_dir / "mosquitto.conf", port)
    yield port, creds
    broker.stop()
    shutil.rmtree(out_dir, ignore_errors=True)


def test_devices_are_confined_to_their_own_topics(secured_broker):
    port, creds = secured_broker
    gateway, rc = _client(port, "gateway", creds["gateway"])
    assert rc == 0
    seen: list[str] = []
    subscribed = threading.Event()
    gateway.on_message = lambda _c, _u, m: seen.append(m.topic)
    gateway.on_subscribe = lambda *_: subscribed.set()
    gateway.subscribe(p.store_filter(STORE), qos=1)
    wait_for(subscribed.is_set, timeout=5, what="the gateway's SUBACK")

    shelf, rc = _client(port, "shelf-1", creds["shelf-1"])
    assert rc == 0
    batch = p.encode(p.WeightBatch(seq=1, ts=1, samples=[[1.0] * 12]))
    own = p.weight_topic(STORE, "shelf-1")
    other = p.weight_topic(STORE, "shelf-2")
    command = p.command_topic(STORE, "shelf-2", "rebirth")
    for topic in (other, command, own):  # the allowed one last: once it arrives, all did
        shelf.publish(topic, batch, qos=1).wait_for_publish(5)
    wait_for(lambda: own in seen, timeout=5, what="the device's own batch")
    time.sleep(0.3)  # on purpose: a short window for a refused message to show (an absence)
    assert own in seen
    assert other not in seen  # publishing as someone else is refused by the broker
    assert command not in seen  # and so is sending commands
    for client in (shelf, gateway):
        client.disconnect()
        client.loop_stop()


def test_anonymous_and_wrong_passwords_are_refused(secured_broker):
    port, creds = secured_broker
    anonymous, rc = _client(port, None, None)
    assert rc != 0
    anonymous.loop_stop()
    wrong, rc = _client(port, "shelf-1", creds["shelf-2"])
    assert rc != 0
    wrong.loop_stop()
    right, rc = _client(port, "shelf-2", creds["shelf-2"])
    assert rc == 0
    right.disconnect()
    right.loop_stop()


def _provision(data: str, device: str, kind: str):
    return CliRunner().invoke(
        app,
        [
            "devices",
            "provision",
            "--store",
            STORE,
            "--id",
            device,
            "--type",
            kind,
            "--data-dir",
            data,
        ],
    )


def test_provisioning_twice_or_a_bad_type_is_refused(tmp_path):
    data = str(tmp_path)
    assert _provision(data, "gate-1", "gate").exit_code == 0
    again = _provision(data, "gate-1", "gate")
    assert again.exit_code == 2
    assert "already provisioned" in again.output
    bad = _provision(data, "x-1", "toaster")
    assert bad.exit_code == 2
    assert "toaster" in bad.output
    reserved = _provision(data, "gateway", "gate")
    assert reserved.exit_code == 2


def test_only_the_hash_of_a_password_is_stored(tmp_path):
    out = _cli(
        "devices",
        "provision",
        "--store",
        STORE,
        "--id",
        "esl-7",
        "--type",
        "esl",
        "--json",
        "--data-dir",
        str(tmp_path),
    )
    password = json.loads(out)["password"]
    stored = b"".join(f.read_bytes() for f in tmp_path.iterdir() if f.is_file())
    assert b"$7$" in stored
    assert password.encode() not in stored
