"""The price catalog, shelf labels' twins and the price API, without a broker."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient

from devices import protocol as p
from edge.api.app import create_app
from edge.app import Gateway
from edge.config import parse_config
from tests.edge.helpers import Bench
from tests.edge.test_engine import A, B, _planogram

LABELS = [
    {"device_id": "esl-1", "barcode": A},
    {"device_id": "esl-2", "barcode": A},
    {"device_id": "esl-3", "barcode": B},
]


class LabelBench:
    """A gateway (not started) with three labels, fed through its real dispatcher."""

    def __init__(self, tmp_path, esls=LABELS):
        self.cfg = parse_config(
            {
                "store_id": "s-1",
                "planogram": "x.yaml",
                "gates": [{"device_id": "gate-in", "direction": "entry"}],
                "esls": esls,
                "database": {"path": str(tmp_path / "g.db")},
            },
            base_dir=tmp_path,
            env={},
        )
        self.now = 1_000_000
        self.gw = Gateway(self.cfg, planogram=_planogram(), clock_ms=lambda: self.now)
        self.gw.prices.sync()  # what start() does first
        self.seq: dict[str, int] = {}

    def send(self, device: str, topic: str, body: dict) -> bool:
        self.seq[device] = self.seq.get(device, 0) + 1
        payload = {"seq": self.seq[device], "ts": self.now, **body}
        return self.gw.dispatcher.dispatch(topic, json.dumps(payload).encode())

    def birth(self, device: str, reported: dict) -> None:
        body = {"device_type": "esl", "firmware": "1", "birth_count": 0, "reported": reported}
        assert self.send(device, p.birth_topic("s-1", device), body)

    def apply(self, device: str) -> None:
        """What a label does with the config it was sent: report it, then ack it."""
        [sent] = [
            e
            for e in self.gw.store.events("command_sent")
            if e["device_id"] == device and e["body"]["command"] == "config"
        ][-1:]
        reported = self.gw.store.twin(device)["desired"]
        assert self.send(device, p.reported_topic("s-1", device), {"reported": reported})
        ack = {"cmd_id": sent["body"]["cmd_id"], "ok": True, "detail": ""}
        assert self.send(device, p.command_ack_topic("s-1", device, "config"), ack)

    def labels(self) -> dict[str, dict]:
        return {label["device_id"]: label for label in self.gw.store.labels()}

    def close(self) -> None:
        self.gw.store.close()


@pytest.fixture
def bench(tmp_path):
    b = LabelBench(tmp_path)
    yield b
    b.close()


def test_labels_start_with_the_planogram_price(bench):
    for device, barcode, price in (("esl-1", A, 250), ("esl-2", A, 250), ("esl-3", B, 300)):
        desired = bench.gw.store.twin(device)["desired"]
        assert desired == {"barcode": barcode, "price_minor": price, "currency": "EUR"}
    labels = bench.labels()
    assert labels["esl-1"]["product"] == "apple juice"
    assert labels["esl-1"]["desired_price_minor"] == 250
    assert labels["esl-1"]["displayed_price_minor"] is None
    assert not labels["esl-1"]["in_sync"]
    assert labels["esl-1"]["state"] == "unknown"
    bench.gw.prices.sync()  # a restart with nothing changed writes nothing
    assert bench.gw.store.twin("esl-1")["version"] == 1


def test_a_price_change_reaches_every_label_of_the_product(bench):
    blank = {"heartbeat_s": 5.0, "barcode": "", "price_minor": 0, "currency": ""}
    bench.birth("esl-1", blank)  # esl-1 online; esl-2 is away
    bench.apply("esl-1")
    assert bench.labels()["esl-1"]["in_sync"]

    result = bench.gw.set_price(A, 199)
    assert result["price_minor"] == 199
    assert result["previous_minor"] == 250
    assert result["version"] == 1
    assert result["labels"] == ["esl-1", "esl-2"]
    for device in ("esl-1", "esl-2"):
        assert bench.gw.store.twin(device)["desired"]["price_minor"] == 199
    assert bench.gw.store.twin("esl-3")["desired"]["price_minor"] == 300
    labels = bench.labels()
    assert not labels["esl-1"]["in_sync"]
    assert labels["esl-1"]["displayed_price_minor"] == 250
    sent = [e["device_id"] for e in bench.gw.store.events("command_sent")]
    assert sent.count("esl-1") == 2  # the first config, and the price change
    assert "esl-2" not in sent  # offline: it gets the change when it is born

    bench.apply("esl-1")
    bench.birth("esl-2", blank)
    bench.apply("esl-2")
    labels = bench.labels()
    for device in ("esl-1", "esl-2"):
        assert labels[device]["in_sync"]
        assert labels[device]["displayed_price_minor"] == 199
        assert labels[device]["last_ack"] == {"ts_ms": bench.now, "ok": True, "detail": ""}
    [change] = bench.gw.store.events("price_change")
    assert change["body"] == {
        "barcode": A,
        "price_minor": 199,
        "previous_minor": 250,
        "version": 1,
        "by": "staff",
    }
    assert bench.gw.set_price(A, 189)["version"] == 2


def test_a_refused_config_is_the_labels_last_ack(bench):
    bench.birth("esl-3", {"heartbeat_s": 5.0})
    [sent] = bench.gw.store.events("command_sent")
    ack = {"cmd_id": sent["body"]["cmd_id"], "ok": False, "detail": "unknown settings ['x']"}
    assert bench.send("esl-3", p.command_ack_topic("s-1", "esl-3", "config"), ack)
    label = bench.labels()["esl-3"]
    assert label["last_ack"]["ok"] is False
    assert label["last_ack"]["detail"] == "unknown settings ['x']"
    assert not label["in_sync"]


def test_unknown_products_and_negative_prices_are_refused(bench):
    with pytest.raises(LookupError, match="unknown product '999'"):
        bench.gw.set_price("999", 100)
    with pytest.raises(ValueError, match=">= 0"):
        bench.gw.set_price(A, -1)
    assert bench.gw.store.events("price_change") == []


def test_moving_or_removing_a_label_in_the_config(tmp_path):
    first = LabelBench(tmp_path)
    first.close()
    again = LabelBench(tmp_path, esls=[{"device_id": "esl-1", "barcode": B}])
    labels = again.labels()
    assert list(labels) == ["esl-1"]
    assert labels["esl-1"]["barcode"] == B
    assert again.gw.store.twin("esl-1")["desired"]["barcode"] == B
    again.close()


@pytest.mark.parametrize(
    ("esls", "message"),
    [
        ([{"device_id": "esl-1", "barcode": "999"}], "not in the planogram: 999"),
        ([{"device_id": "esl-1", "barcode": A}] * 2, "esl-1 listed more than once"),
    ],
)
def test_bad_label_config_is_refused(tmp_path, esls, message):
    with pytest.raises(ValueError, match=message):
        LabelBench(tmp_path, esls=esls)


def test_receipts_charge_the_catalog_price(tmp_path):
    bench = Bench(tmp_path, _planogram())
    bench.tick(1)
    bench.gw.set_price(A, 199)
    bench.gate("entry", "tok-1")
    bench.change("shelf-1", 0, -800)  # two juices
    bench.gate("exit", "tok-1")
    bench.tick(0.4)
    [receipt] = bench.receipts
    [line] = receipt.lines
    assert (line.barcode, line.quantity, line.unit_price_minor) == (A, 2, 199)
    assert receipt.total_minor == 398
    bench.store.close()


def test_price_api(bench, tmp_path):
    client = TestClient(
        create_app(bench.cfg.database.path, store_id="s-1", actions=bench.gw, staff_token="t0k")
    )
    good = {"Authorization": "Bearer t0k"}
    url = f"/api/v1/products/{A}/price"
    assert client.put(url, json={"price_minor": 199}).status_code == 401
    assert client.put(url, json={"price_minor": -1}, headers=good).status_code == 422
    assert client.put(url, json={"price_minor": 1.5}, headers=good).status_code == 422
    assert client.put(url, json={"price_minor": 1, "x": 1}, headers=good).status_code == 422
    missing = client.put("/api/v1/products/999/price", json={"price_minor": 1}, headers=good)
    assert missing.status_code == 404
    assert "unknown product" in missing.json()["detail"]
    resp = client.put(url, json={"price_minor": 199}, headers=good)
    assert resp.status_code == 200, resp.text
    assert resp.json()["labels"] == ["esl-1", "esl-2"]
    body = client.get("/api/v1/esl", headers=good).json()
    assert body["total"] == 3
    assert body["in_sync"] == 0
    by_id = {item["device_id"]: item for item in body["items"]}
    assert by_id["esl-2"]["desired_price_minor"] == 199
    assert by_id["esl-3"]["desired_price_minor"] == 300
    paths = client.get("/openapi.json").json()["paths"]
    assert "/api/v1/esl" in paths
    assert "/api/v1/products/{barcode}/price" in paths
