"""Fridge temperature sensors: readings reach the gateway's temperature log."""

from __future__ import annotations

import random

from edge.store.repo import Store
from firmware_sim.fridge import SimFridge
from tests.integration.conftest import gateway_config, started_gateway, wait_for


def test_fridge_readings_are_logged_and_a_non_fridge_is_refused(
    mosquitto, unique_store_id, tmp_path
):
    db = tmp_path / "gateway.db"
    store = Store.open(db)
    store.provision(unique_store_id, "fridge-1", "fridge", "x", 0)
    store.close()
    fridge = SimFridge(
        unique_store_id,
        "fridge-1",
        mosquitto.host,
        mosquitto.port,
        period_s=0.2,
        rng=random.Random(1),
    )
    # A gate that claims to measure temperatures is not a fridge.
    impostor = SimFridge(unique_store_id, "gate-exit", mosquitto.host, mosquitto.port, period_s=0.2)
    with started_gateway(gateway_config(unique_store_id, mosquitto.url, db)) as running:
        gw = running.gateway
        try:
            fridge.fail_compressor()
            fridge.start(timeout=5)
            impostor.start(timeout=5)
            reader = Store.open(db, readonly=True)
            wait_for(lambda: len(reader.temperatures("fridge-1")) >= 5, what="five readings")
            log = reader.temperatures("fridge-1")
            assert all(-60 <= r["celsius"] <= 80 and r["door_open"] is False for r in log)
            assert [r["ts_ms"] for r in log] == sorted(r["ts_ms"] for r in log)
            wait_for(
                lambda: any("not a fridge" in d["reason"] for d in reader.dead_letters()),
                what="the impostor's reading in the dead letters",
            )
            assert reader.temperatures("gate-exit") == []
            # Birth, online state, readings: one unbroken sequence, no gap counted.
            gaps = {dev: g for dev, _seq, _ts, g, _dup in gw.dispatcher.seq.counters()}
            assert gaps["fridge-1"] == 0
            reader.close()
        finally:
            impostor.stop()
            fridge.stop()


def test_the_cabinet_model_warms_without_its_compressor_and_cools_back():
    fridge = SimFridge("s", "fridge-1", "127.0.0.1", 1, setpoint_c=4.0, room_c=21.0)
    fridge.fail_compressor()
    for _ in range(60):
        fridge.advance(60)  # an hour
    warm = fridge.celsius
    assert warm > 12
    fridge.fail_compressor(False)
    for _ in range(60):
        fridge.advance(60)
    assert fridge.celsius < warm - 8
