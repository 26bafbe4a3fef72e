"""Cold chain on a real Mosquitto: a simulated fridge that warms raises one alert on
the gateway's alert topic, and cooling down again resolves it."""

from __future__ import annotations

import json
import queue
import random
import threading

import paho.mqtt.client as mqtt

from devices.protocol import alert_topic
from firmware_sim.fridge import SimFridge
from tests.integration.conftest import gateway_config, started_gateway


def test_a_warm_fridge_raises_one_alert_and_cooling_resolves_it(
    mosquitto, unique_store_id, tmp_path
):
    config = gateway_config(unique_store_id, mosquitto.url, tmp_path / "gateway.db")
    # fridge-1 (config/store.yaml): max 7 C; alert after a second above it
    cold_chain = config.cold_chain.model_copy(update={"after_s": 1.0})
    config = config.model_copy(update={"cold_chain": cold_chain})
    got: queue.Queue[dict] = queue.Queue()
    subscribed = threading.Event()
    watcher = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
    watcher.on_message = lambda _c, _u, msg: got.put(json.loads(msg.payload))
    watcher.on_subscribe = lambda *_args: subscribed.set()
    watcher.connect(mosquitto.host, mosquitto.port)
    watcher.loop_start()
    watcher.subscribe(alert_topic(unique_store_id, "cold_chain"), qos=1)
    assert subscribed.wait(10)
    fridge = SimFridge(
        unique_store_id,
        "fridge-1",
        mosquitto.host,
        mosquitto.port,
        setpoint_c=3.0,
        period_s=0.2,
        rng=random.Random(3),
    )
    try:
        with started_gateway(config) as running:
            gateway = running.gateway
            try:
                fridge.start(timeout=5)
                fridge.fail_compressor()
                fridge.set_temperature(10.0)  # it has been warming for a while
                raised = got.get(timeout=15)
                assert (raised["state"], raised["device_id"]) == ("open", "fridge-1")
                assert raised["detail"]["name"] == "dairy fridge"
                assert raised["detail"]["max_c"] == 7.0
                fridge.fail_compressor(False)
                fridge.set_temperature(3.0)
                resolved = got.get(timeout=15)
                assert (resolved["state"], resolved["alert_id"]) == ("resolved", raised["alert_id"])
                alerts = gateway.call(lambda: gateway.store.alerts(kind="cold_chain"))
                assert [a["state"] for a in alerts] == ["resolved"]
                assert got.empty()
            finally:
                fridge.stop()
    finally:
        watcher.loop_stop()
        watcher.disconnect()
