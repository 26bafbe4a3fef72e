"""Device faults as they show on the wire (real Mosquitto, a plain paho subscriber)."""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator

import pytest

from devices.protocol import (
    Birth,
    DeviceState,
    birth_topic,
    decode,
    gate_topic,
    heartbeat_topic,
    state_topic,
)
from firmware_sim.faults import FaultInjector, parse_faults
from firmware_sim.gate import SimGate
from tests.wire import Wire

pytestmark = pytest.mark.integration


@pytest.fixture
def wire(mosquitto, unique_store_id) -> Iterator[Wire]:
    w = Wire(mosquitto.host, mosquitto.port, unique_store_id)
    yield w
    w.close()


@pytest.fixture
def gate(mosquitto, unique_store_id) -> Iterator[SimGate]:
    g = SimGate(unique_store_id, "gate-1", mosquitto.host, mosquitto.port, "entry")
    g.heartbeat_s = 0  # no heartbeat thread: the test sends what it counts
    g.start(timeout=5)
    yield g
    g.stop()


def _inject(device: SimGate, *faults: str) -> FaultInjector:
    injector = FaultInjector(parse_faults(list(faults)), [device])
    injector.start()
    return injector


def test_duplicates_resend_the_same_payload_and_seq(wire, gate, unique_store_id):
    injector = _inject(gate, "duplicate_rate=1")
    for i in range(3):
        gate.pass_through(f"dup-{i}")
    topic = gate_topic(unique_store_id, "gate-1")
    wire.wait_for(lambda: len(wire.on(topic)) == 6, "six gate events")
    payloads = wire.on(topic)
    assert payloads[0::2] == payloads[1::2]  # each one twice, byte for byte
    seqs = [m.seq for m in wire.decoded(topic)]
    assert seqs[0::2] == seqs[1::2] == sorted(set(seqs))
    injector.stop()
    gate.pass_through("dup-after")
    wire.wait_for(lambda: len(wire.on(topic)) == 7, "the event after the fault is off")


def test_reordered_messages_all_arrive_once_some_after_their_successor(wire, gate, unique_store_id):
    injector = _inject(gate, "reorder_rate=0.4", "seed=5")
    topic = heartbeat_topic(unique_store_id, "gate-1")
    sent = [gate.heartbeat() for _ in range(40)]
    for beat in sent:
        gate.publish(topic, beat)
    wire.wait_for(lambda: len(wire.on(topic)) == 40, "all forty heartbeats")  # held: flushed
    seqs = [m.seq for m in wire.decoded(topic)]
    assert sorted(seqs) == [b.seq for b in sent]
    swaps = sum(1 for a, b in itertools.pairwise(seqs) if a > b)
    assert swaps > 0
    assert gate.wire_faults is not None
    assert swaps == gate.wire_faults.reordered
    injector.stop()


def test_clock_skew_shifts_every_ts(wire, mosquitto, unique_store_id):
    skewed = SimGate(unique_store_id, "gate-2", mosquitto.host, mosquitto.port, "exit")
    FaultInjector(parse_faults(["clock_skew_ms=-3600000"]), [skewed]).start()
    before = int(time.time() * 1000)
    skewed.start(timeout=5)  # the birth too carries the device's (wrong) clock
    try:
        skewed.pass_through("skewed-1")
        after = int(time.time() * 1000)
        topic = gate_topic(unique_store_id, "gate-2")
        wire.wait_for(lambda: len(wire.on(topic)) == 1, "the gate event")
        [event] = wire.decoded(topic)
        assert before - 3_600_000 <= event.ts <= after - 3_600_000
        births = [m for m in wire.messages if m[0].endswith("gate-2/birth")]
        birth = decode(births[0][0], births[0][1]).message
        assert birth.ts <= after - 3_600_000
    finally:
        skewed.stop()


def test_impersonation_uses_the_other_topic_and_tells_the_truth_inside(wire, gate, unique_store_id):
    _inject(gate, "impersonate=gate-9")
    gate.pass_through("spoof-1")
    fake = gate_topic(unique_store_id, "gate-9")
    wire.wait_for(lambda: len(wire.on(fake)) == 1, "the event under the other id")
    assert wire.on(gate_topic(unique_store_id, "gate-1")) == []
    with pytest.raises(ValueError, match="payload says device 'gate-1', topic says 'gate-9'"):
        decode(fake, wire.on(fake)[0])


def _states(wire: Wire, store_id: str, device: str) -> list[str]:
    return [
        DeviceState.model_validate_json(p).state for p in wire.on(state_topic(store_id, device))
    ]


def test_network_drop_sends_the_will_then_a_new_birth(wire, gate, unique_store_id):
    births_at = birth_topic(unique_store_id, "gate-1")
    wire.wait_for(lambda: len(wire.on(births_at)) == 1, "the first birth")
    gate.drop_link()
    assert not gate.connected
    wire.wait_for(
        lambda: _states(wire, unique_store_id, "gate-1")[-1:] == ["offline"],
        "the broker's last will",
    )
    lost = gate.pass_through("while-down")  # lost: the link is down
    gate.restore_link()
    assert gate.wait_connected(10)
    wire.wait_for(lambda: len(wire.on(births_at)) == 2, "the new birth")
    births = wire.decoded(births_at)
    assert [b.birth_count for b in births] == [0, 1]
    assert births[1].seq > lost.seq  # a network drop keeps the numbering
    wire.wait_for(
        lambda: _states(wire, unique_store_id, "gate-1")[-1:] == ["online"], "online again"
    )
    assert wire.on(gate_topic(unique_store_id, "gate-1")) == []


def test_power_cycle_restarts_seq_and_uptime_and_keeps_the_birth_count(wire, gate, unique_store_id):
    topic = heartbeat_topic(unique_store_id, "gate-1")
    for _ in range(20):
        gate.publish(topic, gate.heartbeat())
    time.sleep(0.3)  # on purpose: the uptime clock (0.1 s steps) must advance, to be lost
    old = gate.heartbeat()
    gate.drop_link(power_loss=True)
    gate.restore_link()
    assert gate.wait_connected(10)
    new = gate.heartbeat()
    assert new.seq < old.seq
    assert new.uptime_s < old.uptime_s
    births_at = birth_topic(unique_store_id, "gate-1")
    wire.wait_for(lambda: len(wire.on(births_at)) == 2, "the birth after power-on")
    births: list[Birth] = wire.decoded(births_at)
    assert [b.birth_count for b in births] == [0, 1]
    assert births[1].seq <= 2  # the will took 0 at connect; the birth is next


def test_timed_outages_come_back_by_themselves(wire, gate, unique_store_id):
    injector = _inject(gate, "disconnect_every_s=0.2", "disconnect_for_s=0.2")
    births_at = birth_topic(unique_store_id, "gate-1")
    wire.wait_for(lambda: len(wire.on(births_at)) >= 3, "two outages and rebirths")
    injector.stop()
    assert gate.wait_connected(10)
    assert injector.outages[:2] == [("gate-1", "network"), ("gate-1", "network")]
    counts = [b.birth_count for b in wire.decoded(births_at)]
    assert counts == list(range(len(counts)))
