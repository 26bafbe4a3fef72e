"""The load cell's raw output (offset, gain, full scale) and its injected faults."""

from __future__ import annotations

import random
import statistics
import threading
import time

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from devices.calibration import DEFAULT_FULL_SCALE_RAW
from devices.protocol import WeightBatch, decode, weight_topic
from firmware_sim.loadcell import LoadCell
from firmware_sim.shelf import SimShelf

RATE = 60.0


def _values(cell: LoadCell, start_s: float, end_s: float) -> list[float]:
    return [cell.sample(i / RATE) for i in range(round(start_s * RATE), round(end_s * RATE))]


def test_default_transfer_reports_grams_and_a_custom_one_reports_raw():
    same_seed = [LoadCell(1000.0, rng=random.Random(4)) for _ in range(2)]
    same_seed[1].set_raw_transfer(0.0, 1.0)
    assert _values(same_seed[0], 0, 1) == _values(same_seed[1], 0, 1)
    raw = LoadCell(1000.0, rng=random.Random(4), noise_sd_g=0.0, offset_raw=800.0, gain=2.5)
    assert raw.sample(0.0) == pytest.approx(800.0 + 2.5 * 1000.0)
    raw.set_raw_transfer(-100.0, 0.5)
    assert raw.sample(0.1) == pytest.approx(-100.0 + 0.5 * 1000.0)
    with pytest.raises(ValueError, match="gain"):
        raw.set_raw_transfer(0.0, 0.0)


def test_output_clips_at_full_scale():
    cell = LoadCell(1000.0, rng=random.Random(1), noise_sd_g=0.0, gain=4.0, full_scale_raw=3000.0)
    assert cell.sample(0.0) == 3000.0
    cell.change(-800.0, contact_s=0.0, at=0.0)
    assert cell.sample(0.1) == pytest.approx(800.0)
    assert LoadCell(0.0, rng=random.Random(1)).full_scale_raw == DEFAULT_FULL_SCALE_RAW


def test_stuck_freezes_the_current_value_and_clear_unfreezes_it():
    cell = LoadCell(1000.0, rng=random.Random(2))
    before = _values(cell, 0, 1)
    cell.inject("stuck", 0.0, 1.0)
    cell.change(-300.0, contact_s=0.0, at=1.0)  # the load changes, the output does not
    frozen = _values(cell, 1, 3)
    assert set(frozen) == {before[-1]}
    cell.clear_faults()
    assert statistics.fmean(_values(cell, 3, 5)) == pytest.approx(700.0, abs=0.5)


def test_noisy_sets_the_noise_sd():
    cell = LoadCell(1000.0, rng=random.Random(3))
    cell.inject("noisy", 25.0, 0.0)
    assert statistics.stdev(_values(cell, 0, 60)) == pytest.approx(25.0, rel=0.06)
    cell.clear_faults()
    assert statistics.stdev(_values(cell, 60, 120)) == pytest.approx(1.5, rel=0.06)


def test_drift_adds_grams_per_minute_from_the_injection_on():
    cell = LoadCell(1000.0, rng=random.Random(5), noise_sd_g=0.0)
    cell.inject("drift", 30.0, 10.0)
    assert cell.sample(10.0) == pytest.approx(1000.0)
    assert cell.sample(70.0) == pytest.approx(1030.0)
    assert cell.sample(130.0) == pytest.approx(1060.0)


def test_saturate_pins_the_output_at_full_scale():
    cell = LoadCell(1000.0, rng=random.Random(6), full_scale_raw=5000.0)
    cell.inject("saturate", 0.0, 0.0)
    assert set(_values(cell, 0, 1)) == {5000.0}
    cell.clear_faults()
    assert statistics.fmean(_values(cell, 1, 2)) == pytest.approx(1000.0, abs=1.0)
    with pytest.raises(ValueError, match="unknown fault"):
        cell.inject("melted", 0.0, 0.0)  # type: ignore[arg-type]


def test_shelf_checks_plates_and_test_weights():
    shelf = SimShelf("s", "shelf-1", "127.0.0.1", 1, [1000.0, 2000.0], rng=random.Random(1))
    with pytest.raises(IndexError):
        shelf.inject(2, "stuck")
    with pytest.raises(IndexError):
        shelf.set_raw_transfer(5, 0.0, 1.0)
    shelf.place_test_weight(1, 500.0)
    assert shelf.load_g(1) == 2500.0
    with pytest.raises(ValueError, match="already"):
        shelf.place_test_weight(1, 500.0)
    shelf.remove_test_weight(1)
    assert shelf.load_g(1) == 2000.0
    with pytest.raises(KeyError):
        shelf.remove_test_weight(1)


def test_a_shelf_publishes_raw_readings_and_its_injected_faults(mosquitto, unique_store_id):
    topic = weight_topic(unique_store_id, "shelf-1")
    batches: list[WeightBatch] = []
    lock = threading.Lock()
    subscribed = threading.Event()

    def on_message(client, userdata, msg):  # type: ignore[no-untyped-def]
        message = decode(msg.topic, bytes(msg.payload)).message
        if isinstance(message, WeightBatch):
            with lock:
                batches.append(message)

    sub = mqtt.Client(CallbackAPIVersion.VERSION2)
    sub.on_message = on_message
    sub.on_subscribe = lambda *_: subscribed.set()
    sub.connect(mosquitto.host, mosquitto.port)
    sub.loop_start()
    sub.subscribe(topic, qos=1)
    assert subscribed.wait(5)
    shelf = SimShelf(
        unique_store_id,
        "shelf-1",
        mosquitto.host,
        mosquitto.port,
        [1000.0, 2000.0],
        rng=random.Random(7),
        raw_transfer={1: (500.0, 2.0)},
    )
    shelf.start(timeout=5)

    def received() -> int:
        with lock:
            return len(batches)

    def wait_batches(n: int) -> list[WeightBatch]:
        target = received() + n
        deadline = time.monotonic() + 10
        while received() < target:
            assert time.monotonic() < deadline, "no weight batches"
            time.sleep(0.05)
        with lock:
            return batches[-n:]

    try:
        healthy = wait_batches(3)
        shelf.inject(0, "stuck")
        wait_batches(2)  # the batch in flight may still hold live samples
        stuck = wait_batches(3)
    finally:
        shelf.stop()
        sub.disconnect()
        sub.loop_stop()
    assert statistics.fmean(v for b in healthy for v in b.samples[0]) == pytest.approx(
        1000.0, abs=2.0
    )
    assert statistics.fmean(v for b in healthy for v in b.samples[1]) == pytest.approx(
        500.0 + 2.0 * 2000.0, abs=4.0
    )
    assert len({v for b in stuck for v in b.samples[0]}) == 1  # zero variance
    assert len({v for b in stuck for v in b.samples[1]}) > 1  # the other plate lives on
