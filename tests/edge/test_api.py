from fastapi.testclient import TestClient

from edge.api.app import create_app
from edge.store.repo import ReceiptRow, Store
from tests.edge.helpers import Bench
from tests.edge.test_engine import B, _planogram

STAFF = {"Authorization": "Bearer s3cret"}


def _client(tmp_path, health=None, staff_token="s3cret"):
    path = tmp_path / "g.db"
    store = Store.open(path)
    store.open_session("tok-a", "gate-entry", 1)
    store.change_cart("tok-a", "111", 2, 2, "shelf-1", {})
    store.open_session("tok-b", "gate-entry", 3)
    store.close_with_receipt("tok-b", "gate-exit", 4, "EUR", [ReceiptRow("222", "Pasta", 2, 229)])
    store.record_birth("shelf-1", "shelf", "sim-1.0.0", 0, 0, 5)
    store.dead_letter("t", b"x", "payload is not JSON", 6)
    store.close()
    return TestClient(
        create_app(path, store_id="s-1", health=health, staff_token=staff_token), headers=STAFF
    )


def test_sessions_receipts_devices(tmp_path):
    client = _client(tmp_path)
    sessions = client.get("/api/v1/sessions", params={"state": "open"}).json()
    assert [(s["token"], s["cart"]) for s in sessions["items"]] == [("tok-a", {"111": 2})]
    receipts = client.get("/api/v1/receipts").json()["items"]
    assert receipts[0]["total_minor"] == 458
    assert receipts[0]["lines"][0]["quantity"] == 2
    one = client.get(f"/api/v1/receipts/{receipts[0]['receipt_id']}")
    assert one.status_code == 200
    assert client.get("/api/v1/receipts/nope").status_code == 404
    devices = client.get("/api/v1/devices").json()["items"]
    assert devices[0]["device_id"] == "shelf-1"
    assert devices[0]["state"] == "online"
    dead = client.get("/api/v1/dead-letters").json()
    assert dead["total"] == 1
    assert dead["items"][0]["reason"] == "payload is not JSON"


def test_bad_query_is_a_clear_422(tmp_path):
    client = _client(tmp_path)
    assert client.get("/api/v1/sessions", params={"state": "maybe"}).status_code == 422


def test_html_page_lists_sessions_and_receipts(tmp_path):
    client = _client(tmp_path)
    page = client.get("/", headers={"Authorization": ""})  # the page shell is public
    assert page.status_code == 200
    assert "tok-a" not in page.text  # ... and holds no data: its panels need the token
    assert "tok-a" in client.get("/dashboard/panels/sessions").text
    assert "4.58 EUR" in client.get("/dashboard/panels/receipts").text


def test_openapi_and_health(tmp_path):
    client = _client(tmp_path, health=lambda: {"ok": False, "mqtt_connected": False})
    paths = client.get("/openapi.json").json()["paths"]
    for route in ("/healthz", "/api/v1/sessions", "/api/v1/receipts", "/api/v1/devices"):
        assert route in paths
    assert client.get("/docs").status_code == 200
    assert client.get("/healthz").status_code == 503


def test_review_queue_resolve_needs_the_staff_token(tmp_path):
    bench = Bench(tmp_path, _planogram())
    bench.tick(1)
    bench.gate("entry", "tok-1")
    bench.gate("entry", "tok-2")
    bench.change("shelf-1", 1, -600)
    client = TestClient(
        create_app(tmp_path / "g.db", store_id="s-1", actions=bench.gw, staff_token="s3cret")
    )
    [item] = client.get("/api/v1/review", headers=STAFF).json()["items"]
    assert item["reason"] == "several shoppers in the store and no positions"
    url = f"/api/v1/review/{item['review_id']}/resolve"
    decision = {"barcode": B, "quantity": 1, "session_token": "tok-1"}
    assert client.post(url, json=decision).status_code == 401
    bad = {"Authorization": "Bearer nope"}
    assert client.post(url, json=decision, headers=bad).status_code == 401
    good = {"Authorization": "Bearer s3cret"}
    assert client.post(url, json={"quantity": 1}, headers=good).status_code == 422
    resp = client.post(url, json=decision, headers=good)
    assert resp.status_code == 200, resp.text
    assert resp.json()["applied_to"] == "cart"
    assert client.post(url, json=decision, headers=good).status_code == 409
    assert (
        client.post("/api/v1/review/nope/resolve", json=decision, headers=good).status_code == 404
    )
    assert client.get("/api/v1/review", headers=good).json()["total"] == 0
    resolved = client.get("/api/v1/review", params={"status": "resolved"}, headers=good)
    assert resolved.json()["total"] == 1
    assert bench.store.cart("tok-1") == {B: 1}
    bench.store.close()


def test_staff_actions_are_refused_without_a_configured_token(tmp_path):
    client = _client(tmp_path, staff_token=None)
    resp = client.post(
        "/api/v1/review/x/resolve",
        json={"dismiss": True},
        headers={"Authorization": "Bearer anything"},
    )
    assert resp.status_code == 403


def test_twin_api_reads_and_sets_desired_with_the_staff_token(tmp_path):
    bench = Bench(tmp_path, _planogram())
    client = TestClient(
        create_app(tmp_path / "g.db", store_id="s-1", actions=bench.gw, staff_token="s3cret")
    )
    url = "/api/v1/devices/gate-in/twin"
    assert client.get(url, headers=STAFF).json()["desired"] == {}
    body = {"settings": {"heartbeat_s": 2}}
    assert client.put(url + "/desired", json=body).status_code == 401
    good = {"Authorization": "Bearer s3cret"}
    resp = client.put(url + "/desired", json=body, headers=good)
    assert resp.status_code == 200, resp.text
    assert resp.json()["pending"] == {"heartbeat_s": 2}
    assert client.get(url, headers=good).json()["version"] == 1
    assert (
        client.put("/api/v1/devices/nobody/twin/desired", json=body, headers=good).status_code
        == 404
    )
    assert client.put(url + "/desired", json={"settings": {}}, headers=good).status_code == 422
    bench.store.close()
