"""Simulated devices against a real Mosquitto, checked with a plain paho subscriber."""

from __future__ import annotations

import itertools
import random
import statistics
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from devices.layout import Planogram
from devices.protocol import (
    SAMPLES_PER_BATCH,
    Birth,
    Command,
    CommandAck,
    DeviceState,
    DeviceType,
    GateEvent,
    MessageKind,
    WeightBatch,
    birth_topic,
    command_ack_topic,
    command_topic,
    decode,
    encode,
    gate_topic,
    state_topic,
    weight_topic,
)
from firmware_sim.device import SimDevice
from firmware_sim.gate import SimGate
from firmware_sim.shelf import SimShelf
from firmware_sim.store import StoreSimulator

pytestmark = pytest.mark.integration

LOADS = [1000.0, 2500.0, 400.0]


@dataclass(frozen=True)
class Received:
    topic: str
    payload: bytes
    retain: bool
    at: float


class Collector:
    """A plain paho subscriber that keeps every message it gets."""

    def __init__(self, host: str, port: int, topics: list[str]) -> None:
        self.messages: list[Received] = []
        self._lock = threading.Lock()
        self._subscribed = threading.Event()
        self._client = mqtt.Client(CallbackAPIVersion.VERSION2)
        self._client.on_message = self._on_message
        self._client.on_subscribe = lambda *_: self._subscribed.set()
        self._client.connect(host, port)
        self._client.loop_start()
        self._client.subscribe([(t, 1) for t in topics])
        assert self._subscribed.wait(5), "subscriber got no SUBACK"

    def _on_message(self, client: mqtt.Client, userdata: object, msg: mqtt.MQTTMessage) -> None:
        with self._lock:
            self.messages.append(Received(msg.topic, bytes(msg.payload), msg.retain, time.time()))

    def on(self, topic: str) -> list[Received]:
        with self._lock:
            return [m for m in self.messages if m.topic == topic]

    def wait_for(self, check: Callable[[], bool], timeout: float = 5.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if check():
                return
            time.sleep(0.02)
        raise AssertionError(f"condition not met within {timeout} s")

    def send(self, topic: str, payload: bytes) -> None:
        self._client.publish(topic, payload, qos=1).wait_for_publish(5)

    def close(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()


@pytest.fixture
def collectors(mosquitto) -> Iterator[list[Collector]]:  # type: ignore[no-untyped-def]
    made: list[Collector] = []
    yield made
    for c in made:
        c.close()


def _shelf(mosquitto, store_id: str, device_id: str = "shelf-1") -> SimShelf:  # type: ignore[no-untyped-def]
    return SimShelf(
        store_id, device_id, mosquitto.host, mosquitto.port, list(LOADS), rng=random.Random(1)
    )


def _decode_all(received: list[Received]) -> list:  # type: ignore[type-arg]
    return [decode(m.topic, m.payload).message for m in received]


def test_shelf_publishes_birth_state_and_weight_batches(
    mosquitto,
    unique_store_id: str,
    collectors: list[Collector],  # type: ignore[no-untyped-def]
) -> None:
    store, dev = unique_store_id, "shelf-1"
    sub = Collector(
        mosquitto.host,
        mosquitto.port,
        [birth_topic(store, dev), state_topic(store, dev), weight_topic(store, dev)],
    )
    collectors.append(sub)
    shelf = _shelf(mosquitto, store, dev)
    shelf.start(timeout=5)
    try:
        assert shelf.connected
        sub.wait_for(lambda: len(sub.on(weight_topic(store, dev))) >= 2)
        first = time.time()
        time.sleep(2.0)  # on purpose: the 2 s window over which the batch rate is counted
        batches_at = [m for m in sub.on(weight_topic(store, dev)) if m.at >= first]
    finally:
        shelf.stop()

    births = _decode_all(sub.on(birth_topic(store, dev)))
    assert len(births) == 1
    birth = births[0]
    assert isinstance(birth, Birth)
    assert (birth.device_type, birth.birth_count, birth.plates) == (DeviceType.SHELF, 0, 3)

    # About 5 batches per second, on a steady 200 ms schedule.
    assert 8 <= len(batches_at) <= 12
    batches = _decode_all(sub.on(weight_topic(store, dev)))
    assert all(isinstance(b, WeightBatch) for b in batches)
    seqs = [b.seq for b in batches]
    assert seqs == sorted(seqs)
    assert len(set(seqs)) == len(seqs)
    assert birth.seq < seqs[0]
    assert all(len(b.samples) == 3 for b in batches)
    assert all(len(plate) == SAMPLES_PER_BATCH for b in batches for plate in b.samples)
    assert all(b.rate_hz == 60 for b in batches)
    steps = {b2.ts - b1.ts for b1, b2 in itertools.pairwise(batches)}
    assert steps <= {199, 200, 201}
    for plate, load in enumerate(LOADS):
        readings = [v for b in batches for v in b.samples[plate]]
        assert statistics.fmean(readings) == pytest.approx(load, abs=1.5)
        assert 0.5 < statistics.stdev(readings) < 3.0

    sub.wait_for(lambda: len(sub.on(state_topic(store, dev))) == 2)
    states = _decode_all(sub.on(state_topic(store, dev)))
    assert [s.state for s in states] == ["online", "offline"]
    assert birth.seq < states[0].seq < seqs[0]
    assert states[1].seq > seqs[-1]

    # A late subscriber sees the retained state: offline after stop().
    late = Collector(mosquitto.host, mosquitto.port, [state_topic(store, dev)])
    collectors.append(late)
    late.wait_for(lambda: bool(late.on(state_topic(store, dev))))
    retained = late.on(state_topic(store, dev))[0]
    assert retained.retain
    message = decode(retained.topic, retained.payload).message
    assert isinstance(message, DeviceState)
    assert message.state == "offline"


def test_online_state_is_retained(
    mosquitto,
    unique_store_id: str,
    collectors: list[Collector],  # type: ignore[no-untyped-def]
) -> None:
    store, dev = unique_store_id, "gate-entry"
    gate = SimGate(store, dev, mosquitto.host, mosquitto.port, "entry")
    gate.start(timeout=5)
    try:
        late = Collector(mosquitto.host, mosquitto.port, [state_topic(store, dev)])
        collectors.append(late)
        late.wait_for(lambda: bool(late.on(state_topic(store, dev))))
        retained = late.on(state_topic(store, dev))[0]
        assert retained.retain
        assert decode(retained.topic, retained.payload).message.state == "online"  # type: ignore[union-attr]
    finally:
        gate.stop()


def test_shelf_change_shows_up_in_the_samples(
    mosquitto,
    unique_store_id: str,
    collectors: list[Collector],  # type: ignore[no-untyped-def]
) -> None:
    store, dev = unique_store_id, "shelf-1"
    sub = Collector(mosquitto.host, mosquitto.port, [weight_topic(store, dev)])
    collectors.append(sub)
    shelf = _shelf(mosquitto, store, dev)
    shelf.start(timeout=5)
    topic = weight_topic(store, dev)
    try:
        sub.wait_for(lambda: len(sub.on(topic)) >= 2)  # the old load is on the wire
        shelf.change(1, -350.0, contact_s=0.4)
        # The change began by now, so its hand contact is over 0.4 s later.
        contact_over_ms = time.time() * 1000 + 400
        assert shelf.load_g(1) == pytest.approx(2150.0)
        # Until a whole batch sampled after the contact has arrived.
        sub.wait_for(
            lambda: any(b.ts >= contact_over_ms for b in _decode_all(sub.on(topic))),
        )
    finally:
        shelf.stop()
    batches: list[WeightBatch] = _decode_all(sub.on(weight_topic(store, dev)))
    plate1 = [v for b in batches for v in b.samples[1]]
    assert max(plate1) > 2500.0 + 25  # the hand pressed on the old load
    assert statistics.fmean(plate1[-12:]) == pytest.approx(2150.0, abs=2.0)
    assert statistics.fmean(v for b in batches[-3:] for v in b.samples[0]) == pytest.approx(
        1000.0, abs=2.0
    )


def test_commands_are_acknowledged(
    mosquitto,
    unique_store_id: str,
    collectors: list[Collector],  # type: ignore[no-untyped-def]
) -> None:
    store, dev = unique_store_id, "shelf-7"
    sub = Collector(
        mosquitto.host,
        mosquitto.port,
        [
            birth_topic(store, dev),
            command_ack_topic(store, dev, "rebirth"),
            command_ack_topic(store, dev, "selfdestruct"),
        ],
    )
    collectors.append(sub)
    shelf = _shelf(mosquitto, store, dev)
    shelf.start(timeout=5)
    try:
        sub.wait_for(lambda: len(sub.on(birth_topic(store, dev))) == 1)
        # Garbage first: logged, ignored, and the device keeps working.
        sub.send(command_topic(store, dev, "rebirth"), b"not json")
        sub.send(command_topic(store, dev, "rebirth"), b'{"cmd_id": "x"}')
        rebirth = Command(cmd_id="cmd-1", ts=int(time.time() * 1000))
        sub.send(command_topic(store, dev, "rebirth"), encode(rebirth))
        sub.wait_for(lambda: bool(sub.on(command_ack_topic(store, dev, "rebirth"))))
        sub.wait_for(lambda: len(sub.on(birth_topic(store, dev))) == 2)

        unknown = Command(cmd_id="cmd-2", ts=int(time.time() * 1000))
        sub.send(command_topic(store, dev, "selfdestruct"), encode(unknown))
        sub.wait_for(lambda: bool(sub.on(command_ack_topic(store, dev, "selfdestruct"))))
        assert shelf.connected
    finally:
        shelf.stop()

    acks = _decode_all(sub.on(command_ack_topic(store, dev, "rebirth")))
    assert len(acks) == 1
    ack = acks[0]
    assert isinstance(ack, CommandAck)
    assert (ack.cmd_id, ack.ok) == ("cmd-1", True)
    inbound = decode(command_ack_topic(store, dev, "rebirth"), encode(ack))
    assert (inbound.kind, inbound.command) == (MessageKind.CMD_ACK, "rebirth")

    births = _decode_all(sub.on(birth_topic(store, dev)))
    assert [b.birth_count for b in births] == [0, 0]  # same connection, same count
    assert births[1].seq > births[0].seq

    (nak,) = _decode_all(sub.on(command_ack_topic(store, dev, "selfdestruct")))
    assert (nak.cmd_id, nak.ok) == ("cmd-2", False)
    assert "unknown command" in nak.detail


def test_reconnect_sends_a_new_birth_and_the_will_marks_offline(
    mosquitto,
    unique_store_id: str,
    collectors: list[Collector],  # type: ignore[no-untyped-def]
) -> None:
    store, dev = unique_store_id, "gate-exit"
    sub = Collector(
        mosquitto.host, mosquitto.port, [birth_topic(store, dev), state_topic(store, dev)]
    )
    collectors.append(sub)
    gate = SimGate(store, dev, mosquitto.host, mosquitto.port, "exit")
    gate.start(timeout=5)
    try:
        sub.wait_for(lambda: len(sub.on(birth_topic(store, dev))) == 1)
        # An impostor with the same client id makes the broker drop the device's
        # connection without a DISCONNECT: the broker sends its last will.
        impostor = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=dev)
        # Once kicked out by the device's own reconnect, the impostor must not come
        # back at once (paho reconnects by itself), or the two would take turns.
        impostor.reconnect_delay_set(min_delay=60, max_delay=120)
        impostor.connect(mosquitto.host, mosquitto.port)
        impostor.loop_start()
        sub.wait_for(
            lambda: any(
                decode(m.topic, m.payload).message.state == "offline"  # type: ignore[union-attr]
                for m in sub.on(state_topic(store, dev))
            )
        )
        impostor.disconnect()
        impostor.loop_stop()
        sub.wait_for(lambda: len(sub.on(birth_topic(store, dev))) == 2, timeout=10)
        assert gate.wait_connected(5)
    finally:
        gate.stop()
    sub.wait_for(lambda: len(sub.on(state_topic(store, dev))) >= 4)  # the clean offline
    births = _decode_all(sub.on(birth_topic(store, dev)))
    assert [b.birth_count for b in births] == [0, 1]
    states = _decode_all(sub.on(state_topic(store, dev)))
    assert [s.state for s in states] == ["online", "offline", "online", "offline"]
    seqs = [s.seq for s in states]
    assert len(set(seqs)) == len(seqs)  # the will is not a duplicate of anything


def test_gate_publishes_gate_events(
    mosquitto,
    unique_store_id: str,
    collectors: list[Collector],  # type: ignore[no-untyped-def]
) -> None:
    store, dev = unique_store_id, "gate-entry"
    sub = Collector(mosquitto.host, mosquitto.port, [gate_topic(store, dev)])
    collectors.append(sub)
    gate = SimGate(store, dev, mosquitto.host, mosquitto.port, "entry")
    gate.start(timeout=5)
    try:
        sent = gate.pass_through("shopper-x-0001")
        sub.wait_for(lambda: bool(sub.on(gate_topic(store, dev))))
    finally:
        gate.stop()
    (event,) = _decode_all(sub.on(gate_topic(store, dev)))
    assert isinstance(event, GateEvent)
    assert event == sent
    assert (event.direction, event.session_token) == ("entry", "shopper-x-0001")


@pytest.mark.timeout(30)  # a start that never gives up fails here, not by a clock assert
def test_start_times_out_without_a_broker() -> None:
    device = SimDevice("s", "lonely", "127.0.0.1", 1, device_type=DeviceType.FRIDGE)
    with pytest.raises(TimeoutError, match=r"lonely could not connect .*127\.0\.0\.1:1"):
        device.start(timeout=0.5)
    assert not device.connected


def test_next_seq_is_monotonic_across_threads() -> None:
    device = SimDevice("s", "busy", "127.0.0.1", 1, device_type=DeviceType.SHELF)
    got: list[int] = []
    lock = threading.Lock()

    def take() -> None:
        mine = [device.next_seq() for _ in range(1000)]
        with lock:
            got.extend(mine)

    threads = [threading.Thread(target=take) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(got) == list(range(got and min(got), min(got) + 4000))


def test_store_simulator_runs_a_scripted_shopper(
    mosquitto,
    unique_store_id: str,
    planogram: Planogram,
    collectors: list[Collector],  # type: ignore[no-untyped-def]
) -> None:
    store = unique_store_id
    sub = Collector(
        mosquitto.host,
        mosquitto.port,
        [
            gate_topic(store, "gate-in"),
            gate_topic(store, "gate-out"),
            weight_topic(store, "shelf-2"),
        ],
    )
    collectors.append(sub)
    sim = StoreSimulator(
        planogram,
        store,
        mosquitto.host,
        mosquitto.port,
        entry_gate="gate-in",
        exit_gate="gate-out",
        seed=1,
        pace=0.1,
    )
    sim.start(timeout=5)
    try:
        truth = sim.run_script(
            "script-0001", [("pick", "shelf-2", 0, 2), ("putback", "shelf-2", 0, 1)]
        )
        # Until the exit event and a shelf batch from its moment on have arrived.
        sub.wait_for(lambda: _shelf_caught_up_with_exit(sub, store))
    finally:
        sim.stop()
    pasta = planogram.shelf("shelf-2").plates[0].barcode
    assert truth.lines == {pasta: 1}
    assert truth.total_minor == 229
    entry = _decode_all(sub.on(gate_topic(store, "gate-in")))
    exit_ = _decode_all(sub.on(gate_topic(store, "gate-out")))
    assert [e.session_token for e in entry] == [e.session_token for e in exit_] == ["script-0001"]
    batches: list[WeightBatch] = _decode_all(sub.on(weight_topic(store, "shelf-2")))
    plate0 = [v for b in batches for v in b.samples[0]]
    assert plate0[0] - statistics.fmean(plate0[-12:]) == pytest.approx(512, abs=20)
    # The exit came at least 1.5 s after the last change had settled: the shelf was
    # quiet (no hand on it) for the last second before the exit gate event.
    exit_ts = exit_[0].ts
    quiet = [
        v
        for b in batches
        for i, v in enumerate(b.samples[0])
        if exit_ts - 1000 <= b.ts + i * 1000 / 60 <= exit_ts
    ]
    assert quiet
    assert max(quiet) - min(quiet) < 15


def _shelf_caught_up_with_exit(sub: Collector, store: str) -> bool:
    exits = _decode_all(sub.on(gate_topic(store, "gate-out")))
    if not exits:
        return False
    batches = _decode_all(sub.on(weight_topic(store, "shelf-2")))
    return any(b.ts >= exits[0].ts for b in batches)


@pytest.mark.slow
def test_a_thirty_second_run_has_at_least_three_complete_shoppers(
    mosquitto,
    unique_store_id: str,
    planogram: Planogram,
    collectors: list[Collector],  # type: ignore[no-untyped-def]
) -> None:
    store = unique_store_id
    sub = Collector(
        mosquitto.host,
        mosquitto.port,
        [gate_topic(store, "gate-in"), gate_topic(store, "gate-out")],
    )
    collectors.append(sub)
    sim = StoreSimulator(
        planogram,
        store,
        mosquitto.host,
        mosquitto.port,
        entry_gate="gate-in",
        exit_gate="gate-out",
        seed=3,
    )
    sim.start(timeout=5)
    stop = threading.Event()
    done: list[str] = []
    runner = threading.Thread(
        target=sim.run, args=(stop,), kwargs={"on_done": lambda t: done.append(t.token)}
    )
    runner.start()
    try:
        # Three shoppers done within the thirty seconds (no need to sit out the rest).
        sub.wait_for(lambda: len(done) >= 3, timeout=30)
    finally:
        stop.set()
        runner.join(timeout=15)
        sim.stop()
    assert not runner.is_alive()
    assert len(done) >= 3  # plus the one in the store at 30 s, which finishes too
    sub.wait_for(lambda: len(sub.on(gate_topic(store, "gate-out"))) == len(done))
    exits = [e.session_token for e in _decode_all(sub.on(gate_topic(store, "gate-out")))]
    assert exits == done == [t.token for t in sim.truths()]
