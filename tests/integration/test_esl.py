"""Shelf labels end to end: a price change reaches every label of the product, the labels
acknowledge it, the API shows them in sync, and the next receipt charges the new price."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from devices.layout import load_planogram
from edge.api.app import create_app
from edge.config import EslConfig
from edge.store.repo import Store
from firmware_sim.esl import SimEsl
from tests.integration.conftest import (
    RunningGateway,
    gateway_config,
    started_gateway,
    store_simulator,
    wait_for,
)

TOKEN = "staff-t0ken"


@pytest.fixture
def labelled_gateway(mosquitto, unique_store_id, tmp_path) -> Iterator[RunningGateway]:
    cfg = gateway_config(unique_store_id, mosquitto.url, tmp_path / "gateway.db")
    water = load_planogram(cfg.planogram).shelf("shelf-1").plates[0].barcode
    pasta = load_planogram(cfg.planogram).shelf("shelf-2").plates[0].barcode
    cfg = cfg.model_copy(
        update={
            "esls": [
                EslConfig(device_id="esl-water-1", barcode=water),
                EslConfig(device_id="esl-water-2", barcode=water),
                EslConfig(device_id="esl-pasta", barcode=pasta),
            ]
        }
    )
    with started_gateway(cfg) as running:
        yield running


def _acks(store: Store, device: str) -> list[dict]:
    return [
        e["body"]
        for e in store.events("command_ack")
        if e["device_id"] == device and e["body"]["command"] == "config"
    ]


def test_a_price_change_reaches_both_labels_and_the_next_receipt(mosquitto, labelled_gateway):
    gw = labelled_gateway.gateway
    cfg = gw.config
    planogram = gw.planogram
    water = planogram.shelf("shelf-1").plates[0].barcode
    old_price = planogram.product(water).price_minor
    new_price = old_price + 30
    labels = {
        device: SimEsl(cfg.store_id, device, mosquitto.host, mosquitto.port)
        for device in ("esl-water-1", "esl-water-2", "esl-pasta")
    }
    sim = store_simulator(gw, mosquitto, seed=5)
    api = TestClient(
        create_app(cfg.database.path, store_id=cfg.store_id, actions=gw, staff_token=TOKEN),
        headers={"Authorization": f"Bearer {TOKEN}"},  # the staff's reads too
    )
    store = Store.open(cfg.database.path, readonly=True)
    for label in labels.values():
        label.start(timeout=5)
    sim.start()
    try:
        # Born blank, each label is sent what it should show (the planogram price).
        wait_for(lambda: api.get("/api/v1/esl").json()["in_sync"] == 3, what="labels set up")
        assert labels["esl-water-1"].display.price_minor == old_price

        resp = api.put(
            f"/api/v1/products/{water}/price",
            json={"price_minor": new_price},
            headers={"Authorization": f"Bearer {TOKEN}"},
        )
        assert resp.status_code == 200, resp.text
        assert resp.json()["labels"] == ["esl-water-1", "esl-water-2"]

        def shown() -> dict[str, int | None]:
            items = api.get("/api/v1/esl").json()["items"]
            return {i["device_id"]: i["displayed_price_minor"] for i in items if i["in_sync"]}

        # The label reports what it shows and acknowledges the command in two messages:
        # wait for both, the ack event may land a moment after the shown price.
        wait_for(
            lambda: (
                shown().get("esl-water-1") == new_price
                and shown().get("esl-water-2") == new_price
                and all(len(_acks(store, d)) >= 2 for d in ("esl-water-1", "esl-water-2"))
            ),
            what="both water labels showing the new price and acknowledging it",
        )
        for device in ("esl-water-1", "esl-water-2"):
            assert labels[device].display.price_minor == new_price
            acks = _acks(store, device)
            assert len(acks) == 2
            assert all(ack["ok"] for ack in acks)
        assert len(_acks(store, "esl-pasta")) == 1  # another product: not touched
        items = {i["device_id"]: i for i in api.get("/api/v1/esl").json()["items"]}
        assert items["esl-water-2"]["desired_price_minor"] == new_price
        assert items["esl-water-2"]["last_ack"]["ok"] is True
        assert items["esl-water-2"]["state"] == "online"
        assert (
            items["esl-pasta"]["displayed_price_minor"]
            == planogram.product(items["esl-pasta"]["barcode"]).price_minor
        )
        [change] = store.events("price_change")
        assert change["body"]["previous_minor"] == old_price

        sim.run_script("esl-shopper-1", [("pick", "shelf-1", 0, 2)])
        receipt = labelled_gateway.next_receipt()
        [line] = receipt.lines
        assert (line.barcode, line.quantity, line.unit_price_minor) == (water, 2, new_price)
        assert receipt.total_minor == 2 * new_price
    finally:
        sim.stop()
        for label in labels.values():
            label.stop()
        store.close()


def test_a_label_that_was_away_gets_the_price_when_it_comes_back(mosquitto, labelled_gateway):
    gw = labelled_gateway.gateway
    cfg = gw.config
    pasta = gw.planogram.shelf("shelf-2").plates[0].barcode
    gw.set_price(pasta, 77)  # while no label is online
    label = SimEsl(cfg.store_id, "esl-pasta", mosquitto.host, mosquitto.port, heartbeat_s=0.5)
    label.start(timeout=5)
    store = Store.open(cfg.database.path, readonly=True)
    try:
        wait_for(
            lambda: {x["device_id"]: x for x in store.labels()}["esl-pasta"]["in_sync"],
            what="the label in sync after its birth",
        )
        assert label.display.price_minor == 77
        assert label.display.barcode == pasta
        assert label.redraws == 1
        assert label.battery_pct < 100  # a redraw costs battery, which heartbeats report
        wait_for(
            lambda: (
                {x["device_id"]: x for x in store.labels()}["esl-pasta"]["battery_pct"]
                == round(label.battery_pct, 2)
            ),
            what="the battery level from a heartbeat",
        )
    finally:
        label.stop()
        store.close()
