"""The shopper app against a real Mosquitto: sign up and check in through the API, the
entry gate admits only the signed check-in, the receipt is charged once, and an online
order's "ready" reaches the shopper's MQTT topic."""

from __future__ import annotations

import json
import queue
import threading
from collections.abc import Iterator
from typing import Any

import httpx
import paho.mqtt.client as mqtt
import pytest
from pydantic import SecretStr

from devices.protocol import gate_topic, order_topic
from edge.api.server import ApiServer, serve_gateway
from edge.app import Gateway
from edge.mqtt.broker import free_port
from tests.integration.conftest import (
    RawDevice,
    gateway_config,
    started_gateway,
    store_simulator,
    wait_for,
)

STAFF = {"Authorization": "Bearer staff-t0ken"}


class App:
    """The shopper's phone: the gateway's HTTP API."""

    def __init__(self, url: str) -> None:
        self.http = httpx.Client(base_url=url, timeout=10)

    def sign_up(self) -> dict[str, Any]:
        shopper: dict[str, Any] = self.http.post("/api/v1/shoppers").raise_for_status().json()
        shopper["headers"] = {"Authorization": f"Bearer {shopper['token']}"}
        return shopper

    def checkin(self, shopper: dict[str, Any]) -> str:
        resp = self.http.post("/api/v1/checkin", headers=shopper["headers"]).raise_for_status()
        return str(resp.json()["session_token"])


@pytest.fixture
def store(mosquitto, unique_store_id, tmp_path) -> Iterator[tuple[Gateway, ApiServer, App]]:
    cfg = gateway_config(unique_store_id, mosquitto.url, tmp_path / "gateway.db")
    shoppers = cfg.shoppers.model_copy(
        update={"verify_checkin": True, "secret": SecretStr("integration-secret-32-bytes-long")}
    )
    with started_gateway(cfg.model_copy(update={"shoppers": shoppers})) as running:
        gateway = running.gateway
        api = serve_gateway(gateway, "127.0.0.1", free_port(), "staff-t0ken")
        try:
            yield gateway, api, App(api.url)
        finally:
            api.stop()


def test_check_in_shop_pay_and_pick_up_an_order(mosquitto, store) -> None:
    gateway, _api, app = store
    cfg = gateway.config
    ana = app.sign_up()
    sim = store_simulator(gateway, mosquitto, seed=5, checkin=lambda _name: app.checkin(ana))
    receipts: queue.Queue[Any] = queue.Queue()
    gateway.add_receipt_listener(receipts.put)
    sim.start()
    try:
        truth = sim.run_shopper(0)
        receipt = receipts.get(timeout=20)
    finally:
        sim.stop()
    assert receipt.session_token == truth.token
    assert truth.token.startswith("chk.")  # the signed check-in was the session token
    lines = {line.barcode: line.quantity for line in receipt.lines}
    assert lines == truth.lines
    mine = app.http.get("/api/v1/receipts", headers=ana["headers"]).json()["items"]
    assert [r["receipt_id"] for r in mine] == [receipt.receipt_id]

    def charged() -> list[dict[str, Any]]:
        payments = app.http.get("/api/v1/payments", headers=ana["headers"]).json()["items"]
        return [p for p in payments if p["status"] == "succeeded"]

    wait_for(charged, timeout=20, what="the payments thread to charge the receipt")
    [payment] = charged()
    assert payment["idempotency_key"] == f"receipt:{receipt.receipt_id}"
    assert payment["amount_minor"] == receipt.total_minor

    # an unsigned token at the entry gate is refused (a dead letter with the reason)
    rogue = RawDevice(mosquitto.host, mosquitto.port, f"rogue-{cfg.store_id}")
    try:
        rogue.send(
            gate_topic(cfg.store_id, "gate-entry"),
            {"seq": 10_000, "ts": 1, "direction": "entry", "session_token": "tok-forged-1"},
        )
    finally:
        rogue.close()

    def refused() -> list[dict[str, Any]]:
        letters = app.http.get("/api/v1/dead-letters", headers=STAFF).json()["items"]
        return [d for d in letters if "check-in refused" in d["reason"]]

    wait_for(refused, timeout=20, what="the forged check-in to be refused")
    assert "not a signed token" in refused()[0]["reason"]

    # an online order: the shopper hears on MQTT that it is ready
    heard: queue.Queue[dict[str, Any]] = queue.Queue()
    phone = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"phone-{cfg.store_id}")
    subscribed = threading.Event()
    phone.on_message = lambda _c, _u, msg: heard.put(json.loads(msg.payload))
    phone.on_subscribe = lambda *_args: subscribed.set()
    phone.connect(mosquitto.host, mosquitto.port)
    phone.loop_start()
    try:
        wait_for(phone.is_connected, what="the phone to connect")
        phone.subscribe(order_topic(cfg.store_id, ana["shopper_id"]), qos=1)
        assert subscribed.wait(10)
        water = gateway.planogram.shelf("shelf-1").plates[0].barcode
        order = app.http.post(
            "/api/v1/orders", json={"items": {water: 1}}, headers=ana["headers"]
        ).raise_for_status()
        order_id = order.json()["order_id"]
        assert heard.get(timeout=10)["state"] == "placed"
        picks = app.http.get("/api/v1/orders", headers=STAFF, params={"state": "placed"}).json()
        assert picks["items"][0]["route"]["stops"][0]["location"]["shelf"] == "shelf-1"
        app.http.post(f"/api/v1/orders/{order_id}/ready", headers=STAFF).raise_for_status()
        told = heard.get(timeout=10)
        assert (told["order_id"], told["state"]) == (order_id, "ready")
    finally:
        phone.loop_stop()
        phone.disconnect()
