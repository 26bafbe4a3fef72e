"""Device twins: desired settings reach a device now, or when it comes back."""

from __future__ import annotations

from edge.store.repo import Store
from firmware_sim.gate import SimGate
from tests.integration.conftest import wait_for


def _twin(path, device):
    store = Store.open(path, readonly=True)
    try:
        return store.twin(device)
    finally:
        store.close()


def test_desired_settings_reach_the_device_now_and_after_a_reconnect(mosquitto, running_gateway):
    gw = running_gateway.gateway
    db = gw.config.database.path
    gate = SimGate(gw.config.store_id, "gate-exit", mosquitto.host, mosquitto.port, "exit")
    gate.start(timeout=5)
    try:
        wait_for(
            lambda: _twin(db, "gate-exit")["reported"].get("heartbeat_s") == 5.0,
            what="the birth's reported settings",
        )
        twin = gw.set_desired("gate-exit", {"heartbeat_s": 2.0})
        assert twin["pending"] == {"heartbeat_s": 2.0}
        wait_for(lambda: _twin(db, "gate-exit")["pending"] == {}, what="the device to apply it")
        assert gate.heartbeat_s == 2.0
        assert _twin(db, "gate-exit")["reported"]["heartbeat_s"] == 2.0
    finally:
        gate.stop()
    wait_for(lambda: gw.liveness.state("gate-exit") == "offline", what="the device offline")
    gw.set_desired("gate-exit", {"heartbeat_s": 3.0})  # while it is away
    assert _twin(db, "gate-exit")["pending"] == {"heartbeat_s": 3.0}
    again = SimGate(gw.config.store_id, "gate-exit", mosquitto.host, mosquitto.port, "exit")
    again.start(timeout=5)  # a fresh device object: it boots with its defaults
    try:
        wait_for(lambda: _twin(db, "gate-exit")["pending"] == {}, what="reconciliation")
        assert again.heartbeat_s == 3.0
        assert _twin(db, "gate-exit")["version"] == 2
    finally:
        again.stop()


def test_an_unknown_setting_is_refused_by_the_device(mosquitto, running_gateway):
    gw = running_gateway.gateway
    db = gw.config.database.path
    gate = SimGate(gw.config.store_id, "gate-entry", mosquitto.host, mosquitto.port, "entry")
    gate.start(timeout=5)
    try:
        wait_for(lambda: gw.liveness.state("gate-entry") == "online", what="online")
        gw.set_desired("gate-entry", {"colour": "red"})
        store = Store.open(db, readonly=True)
        wait_for(
            lambda: any(
                e["body"]["command"] == "config" and not e["body"]["ok"]
                for e in store.events("command_ack")
            ),
            what="the refusal",
        )
        [ack] = [e for e in store.events("command_ack") if e["body"]["command"] == "config"]
        assert "unknown settings" in ack["body"]["detail"]
        assert store.twin("gate-entry")["pending"] == {"colour": "red"}
        store.close()
    finally:
        gate.stop()
