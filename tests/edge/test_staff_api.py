"""Staff routes: stock, cold chain, weight trace, the dashboard's panels and stream,
/metrics; each for staff (and HQ), refused without a token."""

import re

import pytest
from fastapi.testclient import TestClient

from edge.api.app import create_app
from edge.api.dashboard import gondola_of, lane_state, sparkline, trace_chart
from edge.store.repo import Store
from tests.edge.test_staff_restock import COLA, COLA_G, _planogram, bench  # noqa: F401

STAFF = {"Authorization": "Bearer s3cret"}
HQ = {"Authorization": "Bearer hq-s3cret"}


@pytest.fixture
def client(bench):  # noqa: F811
    app = create_app(
        bench.gw.config.database.path,
        store_id="s-1",
        actions=bench.gw,
        staff_token="s3cret",
        hq_token="hq-s3cret",
        staff=bench.gw.staff,
    )
    return TestClient(app, headers=STAFF)


def _low_cola(bench):  # noqa: F811
    for _ in range(4):
        bench.change("shelf-1", 0, -COLA_G)


def test_stock_lists_lanes_with_their_estimate(bench, client):  # noqa: F811
    _low_cola(bench)
    body = client.get("/api/v1/stock").json()
    cola = next(i for i in body["items"] if i["barcode"] == COLA)
    assert (cola["units"], cola["restock_at"], cola["low"]) == (2, 2, True)
    assert body["low"] == 1
    assert client.get("/api/v1/stock", headers=HQ).status_code == 200
    assert client.get("/api/v1/stock", headers={"Authorization": ""}).status_code == 401


def test_counting_a_lane_is_a_staff_action(bench, client):  # noqa: F811
    url = f"/api/v1/stock/shelf-1/{COLA}/count"
    assert client.post(url, json={"units": 3}, headers=HQ).status_code == 403
    resp = client.post(url, json={"units": 3, "staff": "ann"})
    assert resp.status_code == 200
    assert resp.json()["units"] == 3
    assert client.post(url, json={"units": "3"}).status_code == 422  # strict
    assert client.post(url, json={"units": 3, "extra": 1}).status_code == 422
    assert client.post("/api/v1/stock/shelf-9/x/count", json={"units": 1}).status_code == 404


def test_cold_chain_units_and_their_temperature_log(bench, client):  # noqa: F811
    for i, celsius in enumerate((4.0, 4.2, 9.5)):
        bench.store.record_temperature("fridge-9", 1000 + i, celsius, False)
    units = client.get("/api/v1/cold-chain").json()["items"]
    assert units == [
        {
            "device_id": "fridge-9",
            "name": "fridge-9",
            "max_c": 8.0,
            "after_s": 900.0,
            "last": {"ts_ms": 1002, "celsius": 9.5, "door_open": False},
            "above_since_ms": 1002,
            "state": "above",
            "alert_id": None,
        }
    ]
    log = client.get("/api/v1/cold-chain/fridge-9/temperatures", params={"since_ms": 1001})
    assert [r["celsius"] for r in log.json()["items"]] == [4.2, 9.5]


def test_weight_trace_of_a_shelf(bench, client):  # noqa: F811
    body = client.get("/api/v1/shelves/shelf-1/trace").json()
    assert body["plates"] == 4
    assert len(body["points"]) == 5  # one second of batches
    assert abs(body["points"][-1]["grams"][1] - 1000.0) < 3  # the bench's plates
    since = body["points"][2]["ts_ms"]
    later = client.get("/api/v1/shelves/shelf-1/trace", params={"since_ms": since}).json()
    assert len(later["points"]) == 2
    assert client.get("/api/v1/shelves/nope/trace").status_code == 404


def test_trace_without_a_running_gateway_is_503(tmp_path):
    app = create_app(tmp_path / "g.db", store_id="s-1", staff_token="s3cret")
    client = TestClient(app, headers=STAFF)
    Store.open(tmp_path / "g.db").close()
    assert client.get("/api/v1/shelves/shelf-1/trace").status_code == 503
    assert "not running" in client.get("/dashboard/panels/map").text


def test_metrics(bench, client):  # noqa: F811
    bench.gate("entry", "tok-1")
    bench.change("shelf-1", 0, -COLA_G)
    bench.gate("exit", "tok-1")
    bench.tick(2)
    _low_cola(bench)
    bench.store.add_review("shelf-1", 1, {"delta_g": -5}, "unclear", None)
    text = client.get("/metrics").text
    assert client.get("/metrics", headers=HQ).status_code == 200
    assert client.get("/metrics", headers={"Authorization": ""}).status_code == 401

    def value(name: str) -> float:
        match = re.search(rf"^{re.escape(name)} (\S+)$", text, re.MULTILINE)
        assert match, f"{name} not in /metrics"
        return float(match.group(1))

    assert value('storeedge_messages_total{kind="telemetry/weight"}') > 10
    assert value('storeedge_messages_total{kind="event/gate"}') == 2
    assert (
        value("storeedge_weight_samples_total")
        == value('storeedge_messages_total{kind="telemetry/weight"}') / 2 * (4 + 1) * 12
    )  # two shelves: 4 plates and 1, 12 samples each
    assert value("storeedge_pick_to_cart_seconds_count") == 1
    assert value("storeedge_exit_to_receipt_seconds_count") == 1
    assert value('storeedge_pick_to_cart_seconds_bucket{le="+Inf"}') == 1
    assert value("storeedge_review_queue_length") == 1
    assert value('storeedge_alerts_active{kind="restock"}') == 1
    assert value('storeedge_alerts_raised_total{kind="restock"}') == 1
    assert value("storeedge_lanes_low") == 1
    assert value("storeedge_outbox_backlog_rows") >= 1  # the receipt, for HQ
    assert value('storeedge_devices{state="online"}') == 4  # two shelves, two gates
    assert value("storeedge_dead_letters_total") == 0


def test_the_page_is_public_and_its_panels_need_a_token(bench, client):  # noqa: F811
    page = client.get("/", headers={"Authorization": ""})
    assert page.status_code == 200
    assert "default-src 'self'" in page.headers["content-security-policy"]
    assert '<script src="/static/dashboard.js"' in page.text
    assert "cdn" not in page.text.lower()
    assert client.get("/static/dashboard.js").status_code == 200
    for panel in ("map", "alerts", "review", "sessions", "receipts", "devices", "coldchain"):
        assert client.get(f"/dashboard/panels/{panel}").status_code == 200, panel
        url = f"/dashboard/panels/{panel}"
        assert client.get(url, headers={"Authorization": ""}).status_code == 401
        assert client.get(url, headers=HQ).status_code == 200
    assert client.get("/dashboard/panels/nope").status_code == 422
    cookie = TestClient(client.app, cookies={"storeedge_token": "s3cret"})
    assert cookie.get("/dashboard/panels/alerts").status_code == 200  # what the page sends


def test_map_alerts_and_trace_panels_show_the_low_lane(bench, client):  # noqa: F811
    _low_cola(bench)
    page = client.get("/dashboard/panels/map").text
    assert 'data-shelf="shelf-1"' in page
    assert re.search(r'class="lane low" data-plate="0"', page)
    assert re.search(r'class="lane ok" data-plate="1"', page)
    assert re.search(r'class="lane empty"', page) is None  # every plate holds a product
    alerts = client.get("/dashboard/panels/alerts").text
    assert "cola" in alerts
    assert "data-ack=" in alerts
    trace = client.get("/dashboard/panels/trace", params={"shelf": "shelf-2"}).text
    assert 'data-trace="shelf-2"' in trace
    assert "<polyline" in trace


def test_the_stream_names_the_panels_that_changed(bench, client):  # noqa: F811
    with client.stream("GET", "/api/v1/stream") as resp:
        assert resp.headers["content-type"].startswith("text/event-stream")
        lines = resp.iter_lines()
        assert next(line for line in lines if line.startswith("event:")) == "event: hello"
        bench.gate("entry", "tok-1")
        _low_cola(bench)
        seen: set[str] = set()
        for line in lines:
            if line.startswith("event:"):
                seen.add(line.split(": ", 1)[1])
            if {"sessions", "alerts", "map"} <= seen:
                break
    with client.stream("GET", "/api/v1/stream", headers={"Authorization": ""}) as resp:
        assert resp.status_code == 401


def test_map_layout_helpers():
    assert gondola_of("g3-s2") == "g3"
    assert gondola_of("shelf-1") == "shelves"
    lane = {"units": 2, "restock_at": 2, "planned_units": 10}
    assert lane_state(lane) == "low"
    assert lane_state({**lane, "units": 5}) == "half"
    assert lane_state({**lane, "units": 6}) == "ok"
    assert lane_state({**lane, "units": None}) == "unknown"
    assert lane_state(None) == "unknown"
    assert trace_chart([(0, (1.0,))]) is None
    chart = trace_chart([(0, (100.0, 5.0)), (1000, (90.0, 5.0))])
    assert chart is not None
    assert len(chart["lines"]) == 2
    assert sparkline([(0, 4.0), (60_000, 9.0)], 7.0) is not None
