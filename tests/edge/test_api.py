from fastapi.testclient import TestClient

from edge.api.app import create_app
from edge.store.repo import ReceiptRow, Store


def _client(tmp_path, health=None):
    path = tmp_path / "g.db"
    store = Store.open(path)
    store.open_session("tok-a", "gate-entry", 1)
    store.change_cart("tok-a", "111", 2, 2, "shelf-1", {})
    store.open_session("tok-b", "gate-entry", 3)
    store.close_with_receipt("tok-b", "gate-exit", 4, "EUR", [ReceiptRow("222", "Pasta", 2, 229)])
    store.record_birth("shelf-1", "shelf", "sim-1.0.0", 0, 0, 5)
    store.dead_letter("t", b"x", "payload is not JSON", 6)
    store.close()
    return TestClient(create_app(path, store_id="s-1", health=health))


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
    page = _client(tmp_path).get("/")
    assert page.status_code == 200
    assert "tok-a" in page.text
    assert "4.58 EUR" in page.text


def test_openapi_and_health(tmp_path):
    client = _client(tmp_path, health=lambda: {"ok": False, "mqtt_connected": False})
    paths = client.get("/openapi.json").json()["paths"]
    for route in ("/healthz", "/api/v1/sessions", "/api/v1/receipts", "/api/v1/devices"):
        assert route in paths
    assert client.get("/docs").status_code == 200
    assert client.get("/healthz").status_code == 503
