"""The shopper app's API: a shopper sees only their own sessions, carts, receipts,
disputes, orders and payments; a disputed line goes to review and comes back as a
refund; online orders become pick lists for staff; product search and guidance."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from edge.api.app import create_app
from tests.edge.helpers import Bench
from tests.edge.test_engine import A, B, C, _planogram

STAFF = {"Authorization": "Bearer staff-t0ken"}


class Shop:
    def __init__(self, tmp_path) -> None:
        self.bench = Bench(tmp_path, _planogram(), shoppers={"secret": "s" * 32})
        self.bench.tick(1)
        gw = self.bench.gw
        self.client = TestClient(
            create_app(
                tmp_path / "g.db",
                store_id="s-1",
                actions=gw,
                staff_token="staff-t0ken",
                signer=gw.shoppers.signer,
                shoppers=gw.shoppers,
            )
        )

    def sign_up(self) -> dict[str, str]:
        resp = self.client.post("/api/v1/shoppers")
        assert resp.status_code == 201, resp.text
        return {"Authorization": f"Bearer {resp.json()['token']}"}

    def visit(self, app: dict[str, str], *grams: tuple[int, float]) -> str:
        """Check in through the API, change plates (plate, grams), leave; the receipt id."""
        resp = self.client.post("/api/v1/checkin", headers=app)
        assert resp.status_code == 201, resp.text
        token = resp.json()["session_token"]
        self.bench.gate("entry", token)
        for plate, delta in grams:
            self.bench.change("shelf-1", plate, delta)
        cart = self.get("/api/v1/cart", app)
        assert cart["session_token"] == token
        self.bench.gate("exit", token)
        self.bench.tick(2)
        return self.bench.receipts[-1].receipt_id

    def get(self, url: str, headers: dict[str, str], **params: Any) -> Any:
        resp = self.client.get(url, headers=headers, params=params)
        assert resp.status_code == 200, resp.text
        return resp.json()


@pytest.fixture
def shop(tmp_path):
    s = Shop(tmp_path)
    yield s
    s.bench.store.close()


def test_a_shopper_sees_only_their_own(shop) -> None:
    ana, bo = shop.sign_up(), shop.sign_up()
    ana_receipt = shop.visit(ana, (0, -800))  # two apple juices
    bo_receipt = shop.visit(bo, (1, -600))  # a bread
    mine = shop.get("/api/v1/receipts", ana)["items"]
    assert [r["receipt_id"] for r in mine] == [ana_receipt]
    assert mine[0]["lines"][0]["quantity"] == 2
    assert shop.client.get(f"/api/v1/receipts/{bo_receipt}", headers=ana).status_code == 404
    assert shop.get(f"/api/v1/receipts/{ana_receipt}", ana)["total_minor"] == 500
    sessions = shop.get("/api/v1/sessions", ana)["items"]
    assert len(sessions) == 1
    assert sessions[0]["state"] == "closed"
    assert shop.get("/api/v1/cart", ana)["session_token"] is None  # not in the store
    # staff see the store's
    assert {r["receipt_id"] for r in shop.get("/api/v1/receipts", STAFF)["items"]} == {
        ana_receipt,
        bo_receipt,
    }
    shop.bench.gw.shoppers.payments.settle_pending()
    assert [p["amount_minor"] for p in shop.get("/api/v1/payments", ana)["items"]] == [500]
    assert len(shop.get("/api/v1/payments", STAFF)["items"]) == 2
    receipt = shop.get(f"/api/v1/receipts/{bo_receipt}", bo)
    assert [p["status"] for p in receipt["payments"]] == ["succeeded"]


def test_a_disputed_line_goes_to_review_and_comes_back_as_a_refund(shop) -> None:
    ana, bo = shop.sign_up(), shop.sign_up()
    receipt_id = shop.visit(ana, (0, -800), (1, -600))  # 2 x apple juice, 1 bread
    url = f"/api/v1/receipts/{receipt_id}/lines/1/dispute"
    body = {"quantity": 1, "reason": "I took only one juice"}
    assert shop.client.post(url, json=body, headers=bo).status_code == 404  # not bo's
    assert shop.client.post(url, json=body, headers=STAFF).status_code == 403
    resp = shop.client.post(url, json=body, headers=ana)
    assert resp.status_code == 201, resp.text
    review_id = resp.json()["review_id"]
    assert shop.client.post(url, json=body, headers=ana).status_code == 409  # once per line
    bad = shop.client.post(f"/api/v1/receipts/{receipt_id}/lines/9/dispute", json=body, headers=ana)
    assert bad.status_code == 404
    [item] = shop.get("/api/v1/review", STAFF)["items"]
    assert item["review_id"] == review_id
    assert item["reason"] == "shopper disputes receipt line 1: I took only one juice"
    assert item["body"]["candidates"][0]["barcode"] == A
    token = item["session_token"]
    resolved = shop.client.post(
        f"/api/v1/review/{review_id}/resolve",
        json={"barcode": A, "quantity": 1, "session_token": token},
        headers=STAFF,
    )
    assert resolved.status_code == 200, resolved.text
    assert resolved.json()["applied_to"] == "refund"
    [dispute] = shop.get("/api/v1/disputes", ana)["items"]
    assert (dispute["state"], dispute["refund_minor"]) == ("refunded", -250)
    assert shop.get("/api/v1/disputes", bo)["items"] == []
    receipt = shop.get(f"/api/v1/receipts/{receipt_id}", ana)
    assert receipt["adjusted_total_minor"] == 800 - 250
    shop.bench.gw.shoppers.payments.settle_pending()
    payments = {p["kind"]: p for p in shop.get("/api/v1/payments", ana)["items"]}
    assert payments["charge"]["amount_minor"] == 800
    assert payments["refund"]["amount_minor"] == 250
    assert payments["refund"]["idempotency_key"].startswith("adjustment:")
    assert payments["refund"]["status"] == "succeeded"
    # the other line: staff find the shopper was right to be charged
    resp = shop.client.post(
        f"/api/v1/receipts/{receipt_id}/lines/2/dispute", json={"reason": "no"}, headers=ana
    )
    shop.client.post(
        f"/api/v1/review/{resp.json()['review_id']}/resolve",
        json={"dismiss": True},
        headers=STAFF,
    )
    states = {d["line_no"]: d["state"] for d in shop.get("/api/v1/disputes", ana)["items"]}
    assert states == {1: "refunded", 2: "rejected"}


def test_an_online_order_becomes_a_pick_list_and_the_shopper_is_told(shop) -> None:
    told: list[tuple[str, bytes]] = []
    shop.bench.gw.shoppers._publish = lambda topic, payload: told.append((topic, payload))
    ana, bo = shop.sign_up(), shop.sign_up()
    shop.visit(bo, (1, -600))  # now the shelves know how much bread is left: 4
    order = {"items": {C: 1, A: 2, B: 1}, "client_ref": "app-1"}
    resp = shop.client.post("/api/v1/orders", json=order, headers=ana)
    assert resp.status_code == 201, resp.text
    placed = resp.json()
    assert placed["state"] == "placed"
    assert placed["total_minor"] == 280 + 2 * 250 + 300
    stops = [s["barcode"] for s in placed["route"]["stops"]]
    assert stops == [A, B, C]  # plates 0, 1, 3 of the shelf: walking order
    assert [line["barcode"] for line in placed["lines"]] == stops
    again = shop.client.post("/api/v1/orders", json=order, headers=ana).json()
    assert again["order_id"] == placed["order_id"]  # the same client_ref: the same order
    too_many = shop.client.post("/api/v1/orders", json={"items": {B: 4}}, headers=bo)
    assert too_many.status_code == 409  # 4 on the shelf, 1 promised to ana
    assert too_many.json()["detail"]["short"][0] == {"barcode": B, "wanted": 4, "available": 3}
    unknown = shop.client.post("/api/v1/orders", json={"items": {"999": 1}}, headers=bo)
    assert unknown.status_code == 404
    order_url = f"/api/v1/orders/{placed['order_id']}"
    assert shop.client.get(order_url, headers=bo).status_code == 404
    assert shop.client.post(order_url + "/ready", headers=ana).status_code == 403
    [listed] = shop.get("/api/v1/orders", STAFF, state="placed")["items"]
    assert listed["order_id"] == placed["order_id"]
    ready = shop.client.post(order_url + "/ready", json={"staff": "eve"}, headers=STAFF)
    assert ready.status_code == 200, ready.text
    assert ready.json()["state"] == "ready"
    assert shop.client.post(order_url + "/ready", headers=STAFF).status_code == 409
    assert shop.get(order_url, ana)["state"] == "ready"
    topic, payload = told[-1]
    assert topic.endswith(f"/gateway/order/{placed['shopper_id']}")
    assert b'"state":"ready"' in payload
    shop.client.post(order_url + "/collected", headers=STAFF)
    assert shop.get(order_url, ana)["state"] == "collected"
    shop.bench.gw.shoppers.payments.settle_pending()
    [charge] = shop.get(order_url, ana)["payments"]
    assert charge["idempotency_key"] == f"order:{placed['order_id']}"
    assert charge["status"] == "succeeded"


def test_product_search_locations_directions_and_recommendations(shop) -> None:
    ana = shop.sign_up()
    found = shop.get("/api/v1/products", ana, q="BREAD")["items"]
    assert [p["barcode"] for p in found] == [B]
    [where] = found[0]["locations"]
    assert (where["shelf"], where["plate"], where["side"]) == ("shelf-1", 1, "south")
    assert where["walk_m"] > 0
    assert shop.get("/api/v1/products", ana, q="20")["items"][0]["barcode"] == B  # barcode prefix
    assert shop.get("/api/v1/products", STAFF, q="juice")["items"][0]["barcode"] == A
    one = shop.get(f"/api/v1/products/{C}", ana)
    assert one["directions"]["steps"][-1].startswith("gondola shelf-1, plate 3")
    assert shop.client.get("/api/v1/products/999", headers=ana).status_code == 404
    shop.visit(ana, (0, -400), (1, -600))
    shop.visit(ana, (0, -400), (3, -402))
    recs = shop.get("/api/v1/recommendations", ana, barcode=A)
    assert [r["barcode"] for r in recs["bought_together"]] == [B, C]
    top = recs["popular_now"][0]
    assert top == {"barcode": A, "units": 2, "receipts": 2, "name": "apple juice"}
    walk = shop.client.post("/api/v1/route", json={"items": [C, "nope", A]}, headers=ana).json()
    assert [s["barcode"] for s in walk["stops"]] == [A, C]
    assert walk["not_found"] == ["nope"]
    assert walk["total_m"] >= walk["stops"][0]["walk_m"] + walk["stops"][1]["walk_m"]
