"""Every kind of row the gateway sends HQ: written with its domain row in ONE
transaction, shipped by the real sender, and shown in HQ's views."""

import sqlite3

import pytest

from cloud_sync.sender import Sender, SenderConfig
from cloud_sync.wire import GatewayStatus
from devices.layout import Planogram
from edge.store.repo import ReceiptRow, Store
from tests.cloud_sync.helpers import add_store
from tests.edge.helpers import Bench

STORE = "s-1"
COLA, RICE = "100", "200"


@pytest.fixture
def hq_target(request, tmp_path):
    """SQLite, unless a test asks for both (``BOTH``): PostgreSQL where there is one."""
    if getattr(request, "param", "sqlite") == "sqlite":
        return str(tmp_path / "hq.db")
    return str(request.getfixturevalue("postgres_url"))


BOTH = pytest.mark.parametrize("hq_target", ["sqlite", "postgresql"], indirect=True)


@pytest.fixture
def store(tmp_path):
    s = Store.open(tmp_path / "g.db")
    yield s
    s.close()


def _ship(hq, store: Store, key: str, devices: dict[str, int] | None = None) -> Sender:
    config = SenderConfig(
        hq_url=hq.url,
        store_id=STORE,
        api_key=key,
        batch_max_age_s=0.0,
        poll_s=0.02,
        heartbeat_s=3600,
        backoff_base_s=0.05,
        backoff_max_s=0.2,
    )
    sender = Sender(store, config, lambda: GatewayStatus(devices=devices or {"online": 2}))
    sender.start()
    try:
        assert sender.wait_drained(30)
    finally:
        sender.stop()
    return sender


def _rows(store: Store, kind: str) -> list[dict]:
    return store.outbox_rows(kind=kind)


def test_alert_changes_are_state_rows_in_the_alerts_stream(store):
    alert, _ = store.open_alert("restock", "shelf-1", 0, {"units": 1}, 10)
    store.update_alert_detail(alert["alert_id"], {"units": 0}, 11)
    store.ack_alert(alert["alert_id"], 12, "ann")
    store.resolve_alert("restock", "shelf-1", 0, 13)
    rows = _rows(store, "alert")
    assert [r["payload"]["state"] for r in rows] == ["open", "open", "acked", "resolved"]
    assert {(r["stream"], r["class"]) for r in rows} == {("alerts", "state")}
    assert rows[1]["payload"]["detail"] == {"units": 0}
    assert rows[2]["payload"]["by"] == "ann"
    assert [r["ts_ms"] for r in rows] == [10, 11, 12, 13]


def test_heartbeats_and_temperatures_are_telemetry(store):
    health = {"uptime_s": 5, "firmware": "1.2", "battery_pct": 80.0, "rssi_dbm": None}
    store.record_heartbeat("shelf-1", "shelf", 100, health)
    store.record_temperature("fridge-1", 101, 4.5, False)
    [beat] = _rows(store, "heartbeat")
    [temp] = _rows(store, "temperature")
    assert (beat["stream"], beat["class"]) == ("telemetry", "telemetry")
    assert beat["payload"] == {"device_id": "shelf-1", "device_type": "shelf", **health}
    assert (temp["stream"], temp["class"]) == ("telemetry", "telemetry")
    assert temp["payload"] == {"device_id": "fridge-1", "celsius": 4.5, "door_open": False}


@pytest.mark.parametrize(
    "write",
    [
        lambda s: s.record_heartbeat("d", "shelf", 1, {"uptime_s": 1, "firmware": "1"}),
        lambda s: s.record_temperature("fridge-1", 1, 4.0, None),
        lambda s: s.open_alert("restock", "shelf-1", 0, {}, 1),
    ],
    ids=["heartbeat", "temperature", "alert"],
)
def test_a_failed_outbox_write_takes_its_domain_row_with_it(store, write):
    before = (store.devices(), store.temperatures("fridge-1"), store.alerts())

    def broken(*args, **kwargs):
        raise sqlite3.OperationalError("disk full")

    store.enqueue = broken  # the outbox row cannot be written ...
    with pytest.raises(sqlite3.OperationalError):
        write(store)
    del store.enqueue
    # ... so neither is the domain row
    assert (store.devices(), store.temperatures("fridge-1"), store.alerts()) == before
    assert store.outbox_rows() == []


def _issued_receipt(store: Store) -> str:
    store.open_session("tok-1", "gate-in", 1)
    return store.close_with_receipt("tok-1", "gate-out", 2, "EUR", [ReceiptRow(COLA, "c", 2, 150)])


def _resolve(store: Store, delta: int, review_body: dict | None = None) -> str:
    review = store.add_review("shelf-1", 3, review_body or {"delta_g": -350.0}, "unsure", "tok-1")
    decision = {"barcode": COLA, "quantity": abs(delta), "session_token": "tok-1"}
    return store.resolve_review_into_receipt(review, 4, "ann", decision, delta, "cola", 150)


def test_review_adjustments_and_refunds_are_money(store):
    receipt = _issued_receipt(store)
    extra = _resolve(store, 1)
    refund = _resolve(store, -2)
    [charge] = _rows(store, "adjustment")
    [back] = _rows(store, "refund")
    for row, adjustment, amount in ((charge, extra, 150), (back, refund, -300)):
        assert (row["stream"], row["class"]) == ("transactions", "money")
        assert row["event_id"] == adjustment  # stable: the adjustment's own id
        assert row["payload"]["receipt_id"] == receipt
        assert row["payload"]["amount_minor"] == amount
        assert row["payload"]["currency"] == "EUR"


def test_money_is_never_evicted_even_refunds(store):
    _issued_receipt(store)
    _resolve(store, -1)
    store.set_outbox_budget(1)  # far too small: everything but money goes
    store.record_heartbeat("d", "shelf", 1, {"uptime_s": 1, "firmware": "1"})
    assert [r["kind"] for r in store.outbox_rows()] == ["transaction", "refund"]
    assert store.outbox_counters()["evicted_telemetry"] == 1


def _stock_planogram() -> Planogram:
    return Planogram.model_validate(
        {
            "products": [
                {"barcode": COLA, "name": "cola", "unit_weight_g": 350, "price_minor": 149},
                {"barcode": RICE, "name": "rice", "unit_weight_g": 1000, "price_minor": 289},
            ],
            "shelves": [
                {
                    "device_id": "shelf-1",
                    "plates": [
                        {"plate": 0, "barcode": COLA, "stock": 6, "restock_at": 2},
                        {"plate": 1, "barcode": RICE, "stock": 8},
                    ],
                },
                {"device_id": "shelf-2", "plates": [{"plate": 0, "barcode": RICE, "stock": 4}]},
            ],
        }
    )


def _levels(store: Store) -> list[tuple[str, int, int | None]]:
    return [
        (r["payload"]["barcode"], r["payload"]["quantity"], r["payload"]["low_threshold"])
        for r in _rows(store, "stock_level")
    ]


def test_stock_levels_per_product_follow_the_lanes_after_each_shelf_event(tmp_path):
    bench = Bench(tmp_path, _stock_planogram())
    try:
        bench.tick(1)
        bench.gw.staff.tick()  # the first settled weights: the planogram's stock
        bench.gw.stock_report.report()
        # per product, summed over its lanes (rice: 8 + 4), thresholds summed too
        assert sorted(_levels(bench.store)) == [(COLA, 6, 2), (RICE, 12, 3)]
        assert {r["stream"] for r in _rows(bench.store, "stock_level")} == {"stock"}
        bench.gate("entry", "tok-1")
        bench.change("shelf-1", 0, -2 * 350.0)  # two colas: reported after the shelf event
        assert _levels(bench.store)[-1] == (COLA, 4, 2)
        assert bench.store.cart("tok-1") == {COLA: 2}
        n = len(_rows(bench.store, "stock_level"))
        bench.gw.stock_report.report()  # nothing changed: nothing new for HQ
        bench.tick(1)
        assert len(_rows(bench.store, "stock_level")) == n
        levels = {r["barcode"]: r["quantity"] for r in bench.store.stock_levels()}
        assert levels == {COLA: 4, RICE: 12}
    finally:
        bench.store.close()


@BOTH
def test_hq_ingests_every_kind_and_its_views_show_them(hq, store):
    key = add_store(hq.db, STORE)
    receipt = _issued_receipt(store)
    _resolve(store, -1)  # a refund of one cola
    alert, _ = store.open_alert("cold_chain", "fridge-1", None, {"celsius": 9.0}, 20)
    other, _ = store.open_alert("restock", "shelf-1", 0, {"units": 1}, 21)
    store.resolve_alert("restock", "shelf-1", 0, 22)
    store.record_state("fridge-1", "fridge", "online", 23)
    store.record_heartbeat("fridge-1", "fridge", 24, {"uptime_s": 9, "firmware": "2.0"})
    store.record_temperature("fridge-1", 25, 9.0, None)
    with store.transaction():  # a kind HQ does not know yet is kept as an event
        store.enqueue("other", "novelty", {"x": 1}, ts_ms=26)
    store.db.execute(
        "INSERT INTO lane_stock (device_id, barcode, plates, unit_weight_g, planned_units,"
        " restock_at, refilled_at, tare_g, level_g, units, updated_ms)"
        " VALUES ('shelf-1', ?, '[0]', 350, 6, 2, 4, 0, 350, 1, 27)",
        (COLA,),
    )
    store.report_stock_levels({COLA: "cola"}, 27)
    sender = _ship(hq, store, key)
    assert sender.stats.rejected == 0
    with hq.admin() as admin:
        [tx] = admin.get("/api/v1/transactions", params={"store_id": STORE}).json()["items"]
        assert tx["receipt_id"] == receipt
        assert (tx["total_minor"], tx["adjusted_total_minor"]) == (300, 150)
        [adj] = admin.get("/api/v1/adjustments", params={"store_id": STORE}).json()["items"]
        assert (adj["kind"], adj["amount_minor"], adj["receipt_id"]) == ("refund", -150, receipt)
        alerts = admin.get("/api/v1/alerts", params={"store_id": STORE}).json()["items"]
        assert {a["alert_id"]: a["state"] for a in alerts} == {
            alert["alert_id"]: "open",
            other["alert_id"]: "resolved",
        }
        [fleet] = admin.get("/api/v1/fleet").json()["stores"]
        assert fleet["alerts_open"] == 1
        [device] = admin.get("/api/v1/devices", params={"store_id": STORE}).json()["items"]
        assert device["device_id"] == "fridge-1"
        assert device["state"] == "online"
        assert (device["firmware"], device["heartbeat_ms"]) == ("2.0", 24)
        stock = admin.get("/api/v1/stock", params={"barcode": COLA}).json()
        [level] = stock["stores"]
        assert (level["store_id"], level["quantity"], level["low"]) == (STORE, 1, True)
    for kind in ("temperature", "heartbeat", "novelty", "alert", "refund", "stock_level"):
        assert hq.db.event_count(STORE, kind) >= 1, kind
