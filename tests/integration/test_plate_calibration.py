"""Plate calibration and plate health end to end: SimShelf -> Mosquitto -> gateway -> API."""

from __future__ import annotations

import queue
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from devices.protocol import AlertMessage, ReceiptMessage, alert_topic
from edge.api.app import create_app
from edge.app import Gateway
from edge.config import PlateHealthConfig, PlatesConfig
from edge.store.repo import Store
from firmware_sim.store import StoreSimulator
from tests.integration.conftest import (
    gateway_config,
    started_gateway,
    store_simulator,
    wait_for,
)
from tests.wire import Wire

STAFF = {"Authorization": "Bearer t0ken"}
OFFSET, GAIN = 800.0, 2.5  # shelf-1 plate 0 reports raw = 800 + 2.5 * grams


def _alerts(wire: Wire, store_id: str) -> list[AlertMessage]:
    """The maintenance alert messages the gateway published, in order."""
    topic = alert_topic(store_id, "maintenance")
    return [AlertMessage.model_validate_json(p) for p in wire.on(topic)]


def _states(wire: Wire, store_id: str) -> list[tuple[str, str | None, int | None]]:
    return [(m.state, m.device_id, m.plate) for m in _alerts(wire, store_id)]


@pytest.fixture
def gateway(mosquitto, unique_store_id, tmp_path) -> Iterator[Gateway]:
    cfg = gateway_config(unique_store_id, mosquitto.url, tmp_path / "gateway.db")
    health = PlateHealthConfig(check_every=1, stuck_after_s=2, clear_after_s=1)
    with started_gateway(cfg.model_copy(update={"plates": PlatesConfig(health=health)})) as running:
        yield running.gateway


@pytest.fixture
def simulator(mosquitto, gateway) -> Iterator[StoreSimulator]:
    sim = store_simulator(gateway, mosquitto, seed=5)
    sim.shelves["shelf-1"].set_raw_transfer(0, OFFSET, GAIN)  # an uncalibrated plate
    sim.start()
    wait_for(lambda: gateway.liveness.state("shelf-1") == "online", what="shelf-1 online")
    yield sim
    sim.stop()


@pytest.fixture
def client(gateway) -> TestClient:
    cfg = gateway.config
    app = create_app(cfg.database.path, store_id=cfg.store_id, actions=gateway, staff_token="t0ken")
    return TestClient(app)


def test_guided_calibration_then_a_pick_is_weighed_in_grams(gateway, simulator, client):
    url = "/api/v1/calibration/shelf-1/0"
    shelf = simulator.shelves["shelf-1"]
    water = simulator.barcode("shelf-1", 0)
    assert client.post(url + "/start", headers=STAFF).json()["step"] == "empty_plate"
    load = shelf.load_g(0)
    shelf.change(0, -load, contact_s=0.3)  # staff empty the plate
    resp = client.post(url + "/tare", headers=STAFF)  # answers once the plate has settled
    assert resp.status_code == 200, resp.text
    assert resp.json()["step"] == "place_weight"
    assert resp.json()["session"]["tare_raw"] == pytest.approx(OFFSET, abs=2.0)
    shelf.place_test_weight(0, 2000.0, contact_s=0.3)
    resp = client.post(url + "/span", json={"known_g": 2000.0}, headers=STAFF)
    assert resp.status_code == 200, resp.text
    assert resp.json()["step"] == "restock"
    assert resp.json()["factors"]["span"] == pytest.approx(1 / GAIN, rel=5e-3)
    shelf.remove_test_weight(0, contact_s=0.3)
    shelf.change(0, load, contact_s=0.3)  # the water back on the plate
    resp = client.post(url + "/finish", headers=STAFF)  # answers once it has settled
    assert resp.status_code == 200, resp.text
    assert resp.json()["step"] == "idle"

    receipts: queue.Queue[ReceiptMessage] = queue.Queue()
    gateway.add_receipt_listener(receipts.put)
    simulator.run_script("shopper-cal1", [("pick", "shelf-1", 0, 1)])
    receipt = receipts.get(timeout=15)
    assert {ln.barcode: ln.quantity for ln in receipt.lines} == {water: 1}
    store = Store.open(gateway.config.database.path, readonly=True)
    try:
        [change] = store.events("cart_change")
        unit = simulator.planogram.product(water).unit_weight_g
        assert change["body"]["delta_g"] == pytest.approx(-unit, abs=20)
        assert store.event_count("unattributed_change") == 0  # calibrating was no pick
        assert store.reviews(status="open") == []
        kinds = [e["kind"] for e in store.events() if e["kind"].startswith("calibration")]
        assert kinds == [
            "calibration_started",
            "calibration_tare",
            "calibration_saved",
            "calibration_finished",
        ]
    finally:
        store.close()


def test_a_stuck_plate_raises_one_maintenance_alert(mosquitto, gateway, simulator, client):
    store_id = gateway.config.store_id
    listener = Wire(mosquitto.host, mosquitto.port, store_id)
    shelf = simulator.shelves["shelf-2"]
    try:
        shelf.inject(1, "stuck")
        wait_for(lambda: _states(listener, store_id) == [("open", "shelf-2", 1)], what="the alert")
        alerts = client.get("/api/v1/alerts", params={"kind": "maintenance"}, headers=STAFF)
        [alert] = alerts.json()["items"]
        assert (alert["device_id"], alert["plate"], alert["state"]) == ("shelf-2", 1, "open")
        assert alert["detail"]["conditions"] == ["stuck"]
        # Many more checks of the still-stuck plate: no second alert.
        sent = shelf.batches_sent
        wait_for(lambda: shelf.batches_sent >= sent + 25, what="5 s more of batches")
        assert client.get("/api/v1/alerts", headers=STAFF).json()["total"] == 1
        ack = client.post(f"/api/v1/alerts/{alert['alert_id']}/ack", headers=STAFF)
        assert ack.status_code == 200, ack.text
        shelf.clear_faults(1)
        wait_for(
            lambda: (
                client.get("/api/v1/alerts", headers=STAFF).json()["items"][0]["state"]
                == "resolved"
            ),
            what="the alert to resolve",
        )
        wait_for(lambda: len(_states(listener, store_id)) == 3, what="the resolved message")
        assert _states(listener, store_id) == [
            ("open", "shelf-2", 1),
            ("acked", "shelf-2", 1),
            ("resolved", "shelf-2", 1),
        ]
        assert {m.alert_id for m in _alerts(listener, store_id)} == {alert["alert_id"]}
    finally:
        listener.close()
