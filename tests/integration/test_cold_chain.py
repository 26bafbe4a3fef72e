"""Cold chain on a real Mosquitto: a simulated fridge that warms raises one alert on
the gateway's alert topic, and cooling down again resolves it."""

from __future__ import annotations

import json
import queue
import random
import threading

import paho.mqtt.client as mqtt

from devices.protocol import alert_topic
from edge.app import Gateway
from edge.config import default_config_path, load_config
from firmware_sim.fridge import SimFridge


def test_a_warm_fridge_raises_one_alert_and_cooling_resolves_it(
    mosquitto, unique_store_id, tmp_path
):
    config = load_config(
        default_config_path(),
        env={
            "STOREEDGE_STORE_ID": unique_store_id,
            "STOREEDGE_MQTT__BROKER": mosquitto.url,
            "STOREEDGE_MQTT__CLIENT_ID": f"gw-{unique_store_id}",
            "STOREEDGE_DATABASE__PATH": str(tmp_path / "gateway.db"),
            "STOREEDGE_COLD_CHAIN__AFTER_S": "1",  # fridge-1 (config/store.yaml): max 7 C
        },
    )
    got: queue.Queue[dict] = queue.Queue()
    subscribed = threading.Event()
    watcher = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
    watcher.on_message = lambda _c, _u, msg: got.put(json.loads(msg.payload))
    watcher.on_subscribe = lambda *_args: subscribed.set()
    watcher.connect(mosquitto.host, mosquitto.port)
    watcher.loop_start()
    watcher.subscribe(alert_topic(unique_store_id, "cold_chain"), qos=1)
    assert subscribed.wait(10)
    gateway = Gateway(config)
    gateway.start()
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
        assert gateway.link is not None
        assert gateway.link.wait_connected(10)
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
        gateway.stop()
        watcher.loop_stop()
        watcher.disconnect()
