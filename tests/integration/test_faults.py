"""Injected device faults as the gateway sees them (real Mosquitto, a running gateway)."""

from __future__ import annotations

import random
import threading
import time

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from devices import protocol as p
from edge.store.repo import Store
from firmware_sim.faults import FaultInjector, parse_faults
from firmware_sim.gate import SimGate
from firmware_sim.shelf import SimShelf
from tests.integration.conftest import store_simulator, wait_for
from tests.integration.test_broker_security import STORE as SECURE_STORE
from tests.integration.test_broker_security import secured_broker

__all__ = ["secured_broker"]  # the fixture, shared with the broker security tests


def _gate(gw, mosquitto, device_id: str = "gate-entry", *faults: str) -> SimGate:
    direction = "entry" if device_id == "gate-entry" else "exit"
    gate = SimGate(gw.config.store_id, device_id, mosquitto.host, mosquitto.port, direction)
    if faults:
        FaultInjector(parse_faults(list(faults)), [gate]).start()
    return gate


def _device(gw, device_id: str) -> dict:
    store = Store.open(gw.config.database.path, readonly=True)
    try:
        return {d["device_id"]: d for d in store.devices()}.get(device_id, {})
    finally:
        store.close()


def test_duplicated_messages_are_dropped_by_the_gateway_and_the_cart_is_right(
    mosquitto, running_gateway
):
    gw = running_gateway.gateway
    cfg = gw.config
    sim = store_simulator(
        gw,
        mosquitto,
        seed=3,
        faults=parse_faults(["duplicate_rate=1@shelf-1", "duplicate_rate=1@type:gate"]),
    )
    sim.start()
    try:
        truth = sim.run_script("dup-shopper-1", [("pick", "shelf-1", 0, 1)])
        receipt = running_gateway.next_receipt()
    finally:
        sim.stop()
    assert {ln.barcode: ln.quantity for ln in receipt.lines} == truth.lines
    assert receipt.total_minor == truth.total_minor
    assert gw.dispatcher.seq.duplicates("shelf-1") > 0
    # each gate event came twice (heartbeats may have too): the second copy was dropped
    assert gw.dispatcher.seq.duplicates("gate-entry") >= 1
    assert gw.dispatcher.seq.duplicates("gate-exit") >= 1
    store = Store.open(cfg.database.path, readonly=True)
    assert store.event_count("cart_change") == 1
    assert store.event_count("session_reused") == 0
    store.close()


def test_a_skewed_clock_shows_in_the_times_the_device_reports(mosquitto, running_gateway):
    gw = running_gateway.gateway
    gate = _gate(gw, mosquitto, "gate-entry", "clock_skew_ms=-3600000")
    gate.start(timeout=5)
    try:
        before = int(time.time() * 1000)
        gate.pass_through("skewed-shopper")
        after = int(time.time() * 1000)
        store = Store.open(gw.config.database.path, readonly=True)
        wait_for(lambda: store.session("skewed-shopper") is not None, what="the session")
        entered = store.session("skewed-shopper")["entered_ms"]
        store.close()
    finally:
        gate.stop()
    assert before - 3_600_000 <= entered <= after - 3_600_000


def test_a_network_drop_is_offline_by_last_will_then_online_with_a_new_birth(
    mosquitto, running_gateway
):
    gw = running_gateway.gateway
    gate = _gate(gw, mosquitto)
    gate.start(timeout=5)
    try:
        wait_for(lambda: _device(gw, "gate-entry").get("state") == "online", what="online")
        gate.drop_link()
        wait_for(lambda: gw.liveness.state("gate-entry") == "offline", what="the last will")
        dev = _device(gw, "gate-entry")
        assert dev["state"] == "offline"
        assert "last will" in dev["offline_reason"]
        gate.restore_link()
        wait_for(
            lambda: (
                _device(gw, "gate-entry").get("birth_count") == 1
                and gw.liveness.state("gate-entry") == "online"
            ),
            what="online again with birth_count 1",
        )
        gate.pass_through("after-drop")
        store = Store.open(gw.config.database.path, readonly=True)
        wait_for(lambda: store.session("after-drop") is not None, what="data after the drop")
        store.close()
    finally:
        gate.stop()


def test_a_power_cycled_device_starts_seq_again_and_is_not_taken_for_duplicates(
    mosquitto, running_gateway
):
    gw = running_gateway.gateway
    gate = _gate(gw, mosquitto)
    gate.start(timeout=5)
    topic = p.heartbeat_topic(gw.config.store_id, "gate-entry")
    try:
        for _ in range(30):  # run the numbering up well past what the reboot will use
            gate.publish(topic, gate.heartbeat())
        gate.pass_through("before-power-cut")
        store = Store.open(gw.config.database.path, readonly=True)
        wait_for(lambda: store.session("before-power-cut") is not None, what="the first session")
        high = gate.next_seq()
        gate.drop_link(power_loss=True)
        wait_for(lambda: gw.liveness.state("gate-entry") == "offline", what="the last will")
        gate.restore_link()
        wait_for(lambda: _device(gw, "gate-entry").get("birth_count") == 1, what="the new birth")
        event = gate.pass_through("after-power-cut")
        assert event.seq < high  # numbers the gateway has seen before the power cut
        wait_for(lambda: store.session("after-power-cut") is not None, what="the next session")
        store.close()
    finally:
        gate.stop()
    assert gw.dispatcher.seq.duplicates("gate-entry") == 0


def test_a_device_publishing_as_another_is_dead_lettered(mosquitto, running_gateway):
    gw = running_gateway.gateway
    gate = _gate(gw, mosquitto, "gate-exit", "impersonate=gate-entry")
    gate.start(timeout=5)
    try:
        gate.pass_through("spoofed-shopper")
        store = Store.open(gw.config.database.path, readonly=True)
        wait_for(lambda: store.dead_letter_count() >= 1, what="the dead letter")
        [letter] = store.dead_letters()
        assert letter["topic"] == p.gate_topic(gw.config.store_id, "gate-entry")
        assert letter["reason"] == "payload says device 'gate-exit', topic says 'gate-entry'"
        assert store.session("spoofed-shopper") is None
        store.close()
    finally:
        gate.stop()


def test_a_broker_with_the_generated_acl_refuses_the_impersonation(secured_broker):
    port, creds = secured_broker
    seen: list[str] = []
    subscribed = threading.Event()
    watcher = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"gw-{time.monotonic_ns()}")
    watcher.username_pw_set("gateway", creds["gateway"])
    watcher.on_message = lambda _c, _u, m: seen.append(m.topic)
    watcher.on_subscribe = lambda *_: subscribed.set()
    watcher.connect("127.0.0.1", port)
    watcher.loop_start()
    watcher.subscribe(p.store_filter(SECURE_STORE), qos=1)
    assert subscribed.wait(5)
    shelf = SimShelf(
        SECURE_STORE,
        "shelf-1",
        "127.0.0.1",
        port,
        [100.0],
        rng=random.Random(1),
        username="shelf-1",
        password=creds["shelf-1"],
    )
    shelf.start(timeout=5)
    injector = FaultInjector(parse_faults(["impersonate=shelf-2"]), [shelf])
    injector.start()
    try:
        own = p.heartbeat_topic(SECURE_STORE, "shelf-1")
        other = p.heartbeat_topic(SECURE_STORE, "shelf-2")
        for _ in range(3):
            shelf.publish(own, shelf.heartbeat()).wait_for_publish(5)
        assert shelf.wire_faults is not None
        assert shelf.wire_faults.impersonated >= 3
        injector.stop()
        shelf.publish(own, shelf.heartbeat()).wait_for_publish(5)  # allowed: arrives last
        wait_for(lambda: own in seen, what="the device's own heartbeat")
    finally:
        injector.stop()
        shelf.stop()
        watcher.disconnect()
        watcher.loop_stop()
    assert other not in seen
    assert not any(p.weight_topic(SECURE_STORE, "shelf-2") == t for t in seen)


def test_timed_network_drops_in_the_simulated_store(mosquitto, running_gateway):
    gw = running_gateway.gateway
    cfg = gw.config
    sim = store_simulator(
        gw,
        mosquitto,
        seed=1,
        faults=parse_faults(["disconnect_every_s=0.5@shelf-3", "disconnect_for_s=0.3@shelf-3"]),
    )
    sim.start()
    try:
        wait_for(
            lambda: (_device(gw, "shelf-3").get("birth_count") or 0) >= 2,
            what="two drops and rebirths of shelf-3",
        )
    finally:
        sim.stop()
    store = Store.open(cfg.database.path, readonly=True)
    reasons = [
        e["body"]["reason"]
        for e in store.events("device_state")
        if e["device_id"] == "shelf-3" and e["body"]["state"] == "offline"
    ]
    store.close()
    assert any("last will" in r for r in reasons)
    assert ("shelf-3", "network") in sim.faults.outages
