"""A shopper's visit, end to end: simulated devices -> Mosquitto -> gateway -> receipt."""

from __future__ import annotations

import pytest

from edge.config import default_config_path, load_config
from edge.store.repo import Store
from tests.integration.conftest import store_simulator, wait_for


@pytest.fixture
def simulator(mosquitto, running_gateway):
    sim = store_simulator(running_gateway.gateway, mosquitto, seed=11)
    sim.start()
    yield sim
    sim.stop()


def test_two_of_one_one_of_another_one_back(running_gateway, simulator):
    planogram = simulator.planogram
    water = planogram.shelf("shelf-1").plates[0].barcode
    pasta = planogram.shelf("shelf-2").plates[0].barcode
    truth = simulator.run_script(
        "shopper-abc1",
        [
            ("pick", "shelf-1", 0, 1),
            ("pick", "shelf-1", 0, 1),
            ("pick", "shelf-2", 0, 1),
            ("putback", "shelf-1", 0, 1),
        ],
    )
    assert truth.lines == {water: 1, pasta: 1}

    receipt = running_gateway.next_receipt()
    assert receipt.session_token == "shopper-abc1"
    assert {line.barcode: line.quantity for line in receipt.lines} == {water: 1, pasta: 1}
    expected_total = planogram.product(water).price_minor + planogram.product(pasta).price_minor
    assert receipt.total_minor == expected_total
    assert receipt.issued_ts >= receipt.exited_ts  # latency is a benchmark, not a test

    # The receipt is on disk with the same lines, and the session is closed.
    store = Store.open(running_gateway.gateway.config.database.path, readonly=True)
    [stored] = store.receipts()
    assert stored["receipt_id"] == receipt.receipt_id
    assert stored["total_minor"] == expected_total
    assert {ln["barcode"]: ln["quantity"] for ln in stored["lines"]} == {water: 1, pasta: 1}
    assert store.session("shopper-abc1")["state"] == "closed"
    store.close()


def test_two_units_taken_at_once(running_gateway, simulator):
    cola = simulator.planogram.shelf("shelf-1").plates[1].barcode
    simulator.run_script("shopper-abc2", [("pick", "shelf-1", 1, 2)])
    receipt = running_gateway.next_receipt()
    assert [(ln.barcode, ln.quantity) for ln in receipt.lines] == [(cola, 2)]


def test_devices_are_registered_from_their_births(running_gateway, simulator):
    path = running_gateway.gateway.config.database.path
    store = Store.open(path, readonly=True)
    expected = {"shelf-1", "shelf-2", "shelf-3", "gate-entry", "gate-exit"}
    wait_for(
        lambda: {d["device_id"] for d in store.devices() if d["state"] == "online"} == expected,
        what="devices online",
    )
    types = {d["device_id"]: d["device_type"] for d in store.devices()}
    assert types["shelf-1"] == "shelf"
    assert types["gate-exit"] == "gate"
    store.close()


def test_unused_config_is_loadable():
    # the integration fixtures rely on env overrides of the default config
    assert load_config(default_config_path(), env={"STOREEDGE_STORE_ID": "x-1"}).store_id == "x-1"
