"""Duplicates, malformed payloads, broker outages and a dead network loop, on real Mosquitto."""

from __future__ import annotations

import logging
import random
import time

import pytest

from devices import protocol as p
from edge.app import Gateway
from edge.mqtt.broker import free_port
from edge.mqtt.mosquitto import loopback_config, start_mosquitto
from edge.store.repo import Store
from firmware_sim.gate import SimGate
from tests.integration.conftest import gateway_config, wait_for


def _batches(
    level_g: float, count: int, first_seq: int, t0_ms: int, rng: random.Random, plates: int = 4
) -> list[dict]:
    out = []
    for i in range(count):
        samples = [
            [(level_g if plate == 0 else 500.0) + rng.gauss(0, 1.0) for _ in range(12)]
            for plate in range(plates)
        ]
        out.append({"seq": first_seq + i, "ts": t0_ms + 200 * i, "samples": samples})
    return out


def test_the_same_telemetry_delivered_twice_changes_nothing(running_gateway, raw_device):
    gw = running_gateway.gateway
    store_id = gw.config.store_id
    water = gw.planogram.shelf("shelf-1").plates[0].barcode
    unit = gw.planogram.product(water).unit_weight_g
    raw_device.send(
        p.gate_topic(store_id, "gate-entry"),
        {"seq": 1, "ts": 1, "direction": "entry", "session_token": "dup-shopper"},
    )
    rng = random.Random(7)
    before = _batches(5000.0, 10, 0, 1_000, rng)  # 2 s settled at 5 kg
    after = _batches(5000.0 - unit, 10, 10, 3_000, rng)  # one bottle gone, settled
    topic = p.weight_topic(store_id, "shelf-1")
    for batch in before + after:
        raw_device.send(topic, batch)
    store = Store.open(gw.config.database.path, readonly=True)
    wait_for(lambda: store.cart("dup-shopper") == {water: 1}, what="the pick in the cart")
    # Deliver the first batches again (same seq).  Without duplicate suppression the
    # detector would see the old, heavier level and put the bottle back.
    for batch in before:
        raw_device.send(topic, batch)
    wait_for(lambda: gw.dispatcher.counts["duplicates"] >= len(before), what="duplicates")
    time.sleep(0.5)  # on purpose: time for a wrong put-back or extra duplicate to show (absence)
    assert store.cart("dup-shopper") == {water: 1}
    assert gw.dispatcher.counts["duplicates"] == len(before)
    cart_events = list(store.events("cart_change"))
    assert len(cart_events) == 1
    store.close()


def test_malformed_payload_is_dead_lettered_and_the_next_message_works(running_gateway, raw_device):
    gw = running_gateway.gateway
    store_id = gw.config.store_id
    gate = p.gate_topic(store_id, "gate-entry")
    raw_device.send(gate, b"\x00 this is not json")
    raw_device.send(gate, {"seq": "one", "ts": 1, "direction": "entry", "session_token": "t-1"})
    raw_device.send(p.weight_topic(store_id, "shelf-404"), {"seq": 1, "ts": 1, "samples": [[1]]})
    raw_device.send(gate, {"seq": 2, "ts": 2, "direction": "entry", "session_token": "t-good"})
    store = Store.open(gw.config.database.path, readonly=True)
    wait_for(lambda: store.session("t-good") is not None, what="the good message")
    reasons = [r["reason"] for r in reversed(store.dead_letters())]
    assert len(reasons) == 3
    assert reasons[0].startswith("payload is not JSON")
    assert "seq" in reasons[1]
    assert "unknown device 'shelf-404'" in reasons[2]
    assert store.dead_letters()[-1]["payload"].endswith("this is not json")
    assert gw.link is not None
    assert gw.link.connected
    store.close()


def test_broker_down_at_start_is_retried_then_connects(unique_store_id, tmp_path, caplog):
    port = free_port()
    cfg = gateway_config(
        unique_store_id, f"mqtt://127.0.0.1:{port}", tmp_path / "g.db", reconnect_max_s=1
    )
    gw = Gateway(cfg)
    caplog.set_level(logging.WARNING, logger="edge")
    gw.start()
    broker = None
    try:
        assert gw.link is not None
        assert not gw.link.wait_connected(1.5)
        retries = [r for r in caplog.records if "unreachable" in r.getMessage()]
        assert retries, "no log line about the unreachable broker"
        assert all(r.exc_info is None for r in retries)  # a clear line, not a traceback
        conf = tmp_path / "m.conf"
        conf.write_text(loopback_config(port))
        broker = start_mosquitto(conf, port)
        assert gw.link.wait_connected(10), "gateway did not connect once the broker was up"
    finally:
        gw.stop()
        if broker is not None:
            broker.stop()


def test_a_dead_network_loop_is_noticed_and_restarted(running_gateway, raw_device, caplog):
    gw = running_gateway.gateway
    assert gw.link is not None
    caplog.set_level(logging.WARNING, logger="edge")
    # Kill the loop: a clean disconnect makes paho's loop_forever return for good.
    gw.link.client.disconnect()
    wait_for(lambda: gw.link.restarts >= 1, what="the supervisor's restart")
    assert gw.link.wait_connected(10)
    assert any("network loop died" in r.getMessage() for r in caplog.records)
    raw_device.send(
        p.gate_topic(gw.config.store_id, "gate-entry"),
        {"seq": 1, "ts": 1, "direction": "entry", "session_token": "after-restart"},
    )
    store = Store.open(gw.config.database.path, readonly=True)
    wait_for(lambda: store.session("after-restart") is not None, what="message after restart")
    store.close()


@pytest.mark.allow_error_logs
def test_a_crash_inside_the_network_loop_is_restarted(running_gateway):
    gw = running_gateway.gateway
    link = gw.link
    assert link is not None
    link.client.suppress_exceptions = False

    def boom(*_args: object) -> None:
        raise RuntimeError("injected crash in a paho callback")

    original = link.client.on_message
    link.client.on_message = boom
    try:
        raw = p.gate_topic(gw.config.store_id, "gate-entry")
        link.client.publish(
            raw, b'{"seq": 1, "ts": 1, "direction": "entry", "session_token": "boom-1"}', qos=1
        )
        wait_for(lambda: link.restarts >= 1, what="restart after a crash")
    finally:
        link.client.on_message = original
    assert link.wait_connected(10)
    # The message whose callback crashed was never acked: the broker delivers it again
    # to our persistent session, so nothing is lost.
    store = Store.open(gw.config.database.path, readonly=True)
    wait_for(lambda: store.session("boom-1") is not None, what="redelivery after the crash")
    store.close()


def test_a_device_born_before_the_gateway_is_asked_to_rebirth(mosquitto, unique_store_id, tmp_path):
    gate = SimGate(unique_store_id, "gate-entry", mosquitto.host, mosquitto.port, "entry")
    gate.start(timeout=5)  # its birth goes out now, before any gateway listens
    cfg = gateway_config(unique_store_id, mosquitto.url, tmp_path / "g.db")
    gw = Gateway(cfg)
    gw.start()
    try:
        assert gw.link is not None
        assert gw.link.wait_connected(10)
        gate.pass_through("late-shopper")  # data from a device the gateway never saw born
        store = Store.open(cfg.database.path, readonly=True)
        wait_for(
            lambda: any(
                e["body"].get("command") == "rebirth" and e["body"]["ok"]
                for e in store.events("command_ack")
            ),
            what="the rebirth ack",
        )
        births = store.events("device_birth")
        assert [e["device_id"] for e in births] == ["gate-entry"]
        [device] = [d for d in store.devices() if d["device_id"] == "gate-entry"]
        assert device["firmware"] == "sim-1.0.0"
        # (a heartbeat may have asked for the rebirth before the gate event arrived)
        wait_for(lambda: store.session("late-shopper") is not None, what="the session")
        store.close()
    finally:
        gate.stop()
        gw.stop()
