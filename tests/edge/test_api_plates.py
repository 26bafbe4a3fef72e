"""The calibration and alerts API against a gateway that is not started (actions inline)."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from edge.api.app import create_app
from edge.config import CalibrationConfig
from tests.edge.helpers import Bench
from tests.edge.test_engine import _planogram

STAFF = {"Authorization": "Bearer s3cret"}
URL = "/api/v1/calibration/shelf-1/1"


@pytest.fixture
def bench(tmp_path):
    b = Bench(tmp_path, _planogram())
    b.tick(1)
    yield b
    b.store.close()


@pytest.fixture
def client(bench, tmp_path):
    app = create_app(tmp_path / "g.db", store_id="s-1", actions=bench.gw, staff_token="s3cret")
    return TestClient(app)


def test_routes_are_documented(client):
    paths = client.get("/openapi.json").json()["paths"]
    for route in (
        "/api/v1/alerts",
        "/api/v1/alerts/{alert_id}/ack",
        "/api/v1/calibration",
        "/api/v1/calibration/{device_id}/{plate}",
        "/api/v1/calibration/{device_id}/{plate}/span",
        "/api/v1/calibration/{device_id}/{plate}/{action}",
    ):
        assert route in paths


def test_guided_steps_need_the_staff_token_and_follow_the_flow(client, bench):
    status = client.get(URL, headers=STAFF).json()
    assert (status["step"], status["factors"]) == ("idle", None)
    assert "start" in status["instructions"]
    assert client.post(URL + "/start").status_code == 401
    resp = client.post(URL + "/start", headers=STAFF)
    assert resp.status_code == 200, resp.text
    assert resp.json()["step"] == "empty_plate"
    assert "Take everything off" in client.get(URL, headers=STAFF).json()["instructions"]
    assert client.post(URL + "/start", headers=STAFF).status_code == 409
    assert client.post(URL + "/finish", headers=STAFF).status_code == 409  # wrong step
    assert client.post(URL + "/span", json={"known_g": 500}, headers=STAFF).status_code == 409
    assert client.post(URL + "/span", json={"known_g": 0}, headers=STAFF).status_code == 422
    assert client.post(URL + "/jump", headers=STAFF).status_code == 422
    plates = bench.gw.plates
    plates.cfg = plates.cfg.model_copy(
        update={"calibration": CalibrationConfig(measure_timeout_s=0.1)}
    )
    resp = client.post(URL + "/tare", headers=STAFF)  # no samples arrive: it cannot settle
    assert resp.status_code == 409
    assert "did not settle" in resp.json()["detail"]
    resp = client.post(URL + "/cancel", headers=STAFF)
    assert resp.status_code == 200
    assert resp.json()["step"] == "idle"
    assert bench.store.event_count("calibration_cancelled") == 1


def test_factors_by_command(client, bench):
    body = {"tare_raw": 700.0, "span": 0.4, "staff": "ana"}
    assert client.put(URL, json=body).status_code == 401
    resp = client.put(URL, json=body, headers=STAFF)
    assert resp.status_code == 200, resp.text
    assert resp.json()["factors"]["span"] == 0.4
    assert bench.gw.plates.calibrator.factors["shelf-1"][1].tare_raw == 700.0
    listed = client.get("/api/v1/calibration", headers=STAFF).json()
    assert [(f["device_id"], f["plate"], f["span"]) for f in listed["items"]] == [
        ("shelf-1", 1, 0.4)
    ]
    assert client.put(URL, json={**body, "span": 0}, headers=STAFF).status_code == 422
    assert client.put(URL, json={"tare_raw": 1.0}, headers=STAFF).status_code == 422
    bad = client.put("/api/v1/calibration/gate-in/0", json=body, headers=STAFF)
    assert bad.status_code == 404
    assert client.put("/api/v1/calibration/shelf-1/7", json=body, headers=STAFF).status_code == 404
    assert client.get("/api/v1/calibration/shelf-1/-1", headers=STAFF).status_code == 422
    resp = client.delete(URL, headers=STAFF)
    assert resp.status_code == 200
    assert resp.json()["factors"] is None
    assert client.get("/api/v1/calibration", headers=STAFF).json()["total"] == 0


def test_alerts_list_filter_and_ack(client, bench):
    store = bench.store
    stuck, _ = store.open_alert("maintenance", "shelf-1", 3, {"conditions": ["stuck"]}, 10)
    store.open_alert("restock", "shelf-1", 0, {}, 20)
    gone, _ = store.open_alert("maintenance", "shelf-1", 0, {}, 5)
    store.resolve_alert("maintenance", "shelf-1", 0, 30)
    everything = client.get("/api/v1/alerts", headers=STAFF).json()
    assert everything["total"] == 3
    open_maintenance = client.get(
        "/api/v1/alerts", params={"state": "open", "kind": "maintenance"}, headers=STAFF
    )
    assert [a["alert_id"] for a in open_maintenance.json()["items"]] == [stuck["alert_id"]]
    assert open_maintenance.json()["items"][0]["detail"] == {"conditions": ["stuck"]}
    assert client.get("/api/v1/alerts", params={"state": "later"}, headers=STAFF).status_code == 422
    url = f"/api/v1/alerts/{stuck['alert_id']}/ack"
    assert client.post(url).status_code == 401
    resp = client.post(url, json={"staff": "ana"}, headers=STAFF)
    assert resp.status_code == 200, resp.text
    assert resp.json()["state"] == "acked"
    assert client.post(url, headers=STAFF).status_code == 200  # again: no change
    active = client.get("/api/v1/alerts", params={"state": "active"}, headers=STAFF)
    assert active.json()["total"] == 2
    gone_url = f"/api/v1/alerts/{gone['alert_id']}/ack"
    assert client.post(gone_url, headers=STAFF).status_code == 409
    assert client.post("/api/v1/alerts/nope/ack", headers=STAFF).status_code == 404
    [acked] = store.events("alert_acked")
    assert acked["body"] == {"alert_id": stuck["alert_id"], "by": "ana"}


def test_without_a_running_gateway_reads_work_and_actions_are_503(tmp_path, bench):
    client = TestClient(create_app(tmp_path / "g.db", store_id="s-1", staff_token="s3cret"))
    assert client.get(URL, headers=STAFF).json()["step"] is None
    assert client.get("/api/v1/alerts", headers=STAFF).json()["total"] == 0
    assert client.post(URL + "/start", headers=STAFF).status_code == 503
    assert client.post("/api/v1/alerts/x/ack", headers=STAFF).status_code == 503
