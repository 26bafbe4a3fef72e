"""kill -9 of the gateway loses nothing: committed rows stay, queued messages arrive later."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time

from devices import protocol as p
from edge.mqtt.broker import free_port
from edge.store.repo import Store
from tests.integration.conftest import wait_for


def _start_gateway(mosquitto, store_id: str, db, api_port: int) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "STOREEDGE_STORE_ID": store_id,
        "STOREEDGE_MQTT__BROKER": mosquitto.url,
        "STOREEDGE_MQTT__CLIENT_ID": f"gw-{store_id}",
        "STOREEDGE_DATABASE__PATH": str(db),
        "STOREEDGE_API__PORT": str(api_port),
        "STOREEDGE_SHOPPERS__VERIFY_CHECKIN": "false",  # raw gate messages, plain tokens
    }
    return subprocess.Popen(
        [sys.executable, "-m", "edge.cli", "gateway"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def _gate(seq: int, direction: str, token: str) -> dict:
    return {
        "seq": seq,
        "ts": int(time.time() * 1000),
        "direction": direction,
        "session_token": token,
    }


def test_kill_9_loses_nothing(mosquitto, unique_store_id, tmp_path, raw_device):
    db = tmp_path / "gateway.db"
    api_port = free_port()
    gw = _start_gateway(mosquitto, unique_store_id, db, api_port)
    entry = p.gate_topic(unique_store_id, "gate-entry")
    exit_ = p.gate_topic(unique_store_id, "gate-exit")
    try:
        wait_for(db.exists, timeout=20, what="the gateway's database")
        # Until the gateway's first subscription exists, the broker keeps nothing for
        # it: repeat the entry until it is seen (a repeat is only a "session_reused").
        seq = 0
        deadline = time.monotonic() + 20
        while _session(db, "before-crash") is None:
            assert time.monotonic() < deadline, "gateway never saw the first entry"
            seq += 1
            raw_device.send(entry, _gate(seq, "entry", "before-crash"))
            time.sleep(0.3)
        raw_device.send(exit_, _gate(1, "exit", "before-crash"))
        wait_for(lambda: _receipts(db) == ["before-crash"], what="the first receipt")

        gw.send_signal(signal.SIGKILL)
        gw.wait(10)
        # While the gateway is dead, a shopper comes and goes.  Its QoS 1 messages wait
        # in the broker for the gateway's persistent session.
        raw_device.send(entry, _gate(seq + 1, "entry", "during-crash"))
        raw_device.send(exit_, _gate(2, "exit", "during-crash"))
        # No wait: send() returns on the PUBACK, and Mosquitto queues a QoS 1 message for
        # every matching session, the offline gateway's included, before it acks.

        gw = _start_gateway(mosquitto, unique_store_id, db, free_port())
        wait_for(
            lambda: sorted(_receipts(db)) == ["before-crash", "during-crash"],
            timeout=20,
            what="the receipt of the shopper who came during the crash",
        )
    finally:
        gw.send_signal(signal.SIGTERM)
        _, err = gw.communicate(timeout=20)
    assert b"Traceback" not in err, err.decode()[-2000:]


def _session(db, token):
    store = Store.open(db, readonly=True)
    try:
        return store.session(token)
    except sqlite3.OperationalError:  # the gateway has not applied its migrations yet
        return None
    finally:
        store.close()


def _receipts(db):
    store = Store.open(db, readonly=True)
    try:
        return [r["session_token"] for r in store.receipts()]
    finally:
        store.close()
