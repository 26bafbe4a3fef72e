"""HQ's API over real HTTP: idempotent ingest, keys, the admin token, fleet, paging, stock."""

import gzip
import json
import threading
import uuid

import httpx
import pytest
from typer.testing import CliRunner

from cloud_sync.hq.auth import hash_key
from cloud_sync.hq.db import HqDatabase
from cloud_sync.hq.server import HqServer
from edge.cli import app
from tests.cloud_sync.helpers import add_store

runner = CliRunner()


def _event(kind="transaction", seq=1, event_id=None, stream=None, ts_ms=1_000, **payload):
    if kind == "transaction" and not payload:
        payload = {
            "receipt_id": f"r-{seq}",
            "session_token": f"tok-{seq}",
            "currency": "EUR",
            "total_minor": 250 * seq,
            "issued_ms": 1_000 + seq,
            "lines": [
                {
                    "barcode": "A",
                    "name": "a",
                    "quantity": seq,
                    "unit_price_minor": 250,
                    "line_total_minor": 250 * seq,
                }
            ],
        }
    return {
        "event_id": event_id or uuid.uuid4().hex,
        "stream": stream or {"transaction": "transactions"}.get(kind, "other"),
        "kind": kind,
        "seq": seq,
        "ts_ms": ts_ms,
        "created_ms": ts_ms,
        "payload": payload,
    }


def _batch(store_id, events):
    return {"store_id": store_id, "batch_id": uuid.uuid4().hex, "events": events}


def _heartbeat(store_id, devices=None, oldest=None, rows=0):
    return {
        "store_id": store_id,
        "sent_ms": 5,
        "versions": {"gateway": "0.1.0"},
        "devices": devices if devices is not None else {"online": 3},
        "backlog": {
            "rows": rows,
            "bytes": 100 * rows,
            "oldest_unsent_age_s": oldest,
            "last_acked_seq": 7,
            "evicted_rows": 0,
            "evicted_bytes": 0,
            "held_bytes": 100,
            "budget_bytes": 1000,
        },
    }


def test_ingest_is_idempotent(hq):
    key = add_store(hq.db, "s-1")
    events = [_event(seq=i) for i in range(1, 6)]
    with hq.as_store(key) as client:
        first = client.post("/api/v1/ingest", json=_batch("s-1", events)).json()
        assert first["stored"] == 5
        assert first["duplicates"] == 0
        assert first["acked"] == [e["event_id"] for e in events]
        # The same events again (a retry after a lost answer), with one new one.
        again = client.post("/api/v1/ingest", json=_batch("s-1", [*events, _event(seq=6)])).json()
        assert again["stored"] == 1
        assert again["duplicates"] == 5
        assert len(again["acked"]) == 6
    items, total = hq.db.transactions("s-1", 100, 0)
    assert total == 6
    assert sorted(i["event_id"] for i in items) == sorted(
        [e["event_id"] for e in events] + [again["acked"][-1]]
    )
    assert hq.db.event_count("s-1") == 6


def test_concurrent_retries_store_once(hq):
    key = add_store(hq.db, "s-1")
    events = [_event(seq=i) for i in range(1, 41)]
    answers = []

    def post(batch):
        with hq.as_store(key) as client:
            answers.append(client.post("/api/v1/ingest", json=batch).json())

    threads = [
        threading.Thread(target=post, args=(_batch("s-1", events[i % 2 :] + events[: i % 2]),))
        for i in range(6)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(a["stored"] for a in answers) == 40
    assert sum(a["duplicates"] for a in answers) == 5 * 40
    assert all(len(a["acked"]) == 40 for a in answers)
    assert hq.db.transactions("s-1", 1000, 0)[1] == 40


def test_gzip_body(hq):
    key = add_store(hq.db, "s-1")
    body = gzip.compress(json.dumps(_batch("s-1", [_event()])).encode())
    with hq.as_store(key) as client:
        r = client.post(
            "/api/v1/ingest",
            content=body,
            headers={"Content-Encoding": "gzip", "Content-Type": "application/json"},
        )
        assert r.status_code == 200, r.text
        assert r.json()["stored"] == 1
        bad = client.post(
            "/api/v1/ingest", content=b"\x1f\x8bnot gzip", headers={"Content-Encoding": "gzip"}
        )
        assert bad.status_code == 400
        truncated = client.post(
            "/api/v1/ingest", content=body[: len(body) // 2], headers={"Content-Encoding": "gzip"}
        )
        assert truncated.status_code == 400
        other = client.post("/api/v1/ingest", content=body, headers={"Content-Encoding": "br"})
        assert other.status_code == 415


def test_the_same_event_id_in_two_stores_is_two_events(hq):
    k1, k2 = add_store(hq.db, "s-1"), add_store(hq.db, "s-2")
    event = _event(event_id="same-id")
    for key, store in ((k1, "s-1"), (k2, "s-2")):
        with hq.as_store(key) as client:
            assert client.post("/api/v1/ingest", json=_batch(store, [event])).json()["stored"] == 1


def test_store_keys(hq):
    key = add_store(hq.db, "s-1")
    add_store(hq.db, "s-2")
    batch = _batch("s-1", [_event()])
    assert httpx.post(hq.url + "/api/v1/ingest", json=batch).status_code == 401
    with hq.as_store("sk_wrong") as client:
        assert client.post("/api/v1/ingest", json=batch).status_code == 401
    with httpx.Client(base_url=hq.url, headers={"Authorization": f"Basic {key}"}) as client:
        assert client.post("/api/v1/ingest", json=batch).status_code == 401
    with hq.as_store(key) as client:
        # A key speaks for its own store only.
        assert client.post("/api/v1/ingest", json=_batch("s-2", [_event()])).status_code == 403
        assert client.post("/api/v1/heartbeat", json=_heartbeat("s-2")).status_code == 403
        # ... and is no admin token.
        assert client.get("/api/v1/fleet").status_code == 401
    assert hq.db.event_count("s-1") == 0
    assert hq.db.event_count("s-2") == 0


def test_admin_token(hq):
    for headers in ({}, {"Authorization": "Bearer nope"}, {"Authorization": "admin-secret-token"}):
        r = httpx.get(hq.url + "/api/v1/fleet", headers=headers)
        assert r.status_code == 401
        assert r.headers["www-authenticate"] == "Bearer"
    for path in ("/api/v1/transactions", "/api/v1/stock?barcode=A", "/api/v1/stores"):
        assert httpx.get(hq.url + path).status_code == 401
    with hq.admin() as admin:
        assert admin.get("/api/v1/fleet").status_code == 200
        created = admin.post("/api/v1/stores", json={"store_id": "s-9", "name": "Nine"})
        assert created.status_code == 201
        assert admin.post("/api/v1/stores", json={"store_id": "s-9"}).status_code == 409
        assert [s["store_id"] for s in admin.get("/api/v1/stores").json()["items"]] == ["s-9"]
    with hq.as_store(created.json()["api_key"]) as client:
        assert client.post("/api/v1/ingest", json=_batch("s-9", [_event()])).status_code == 200


def test_no_admin_token_configured_means_no_admin(tmp_path):
    server = HqServer(tmp_path / "hq.db", admin_token=None).start()
    try:
        r = httpx.get(server.url + "/api/v1/fleet", headers={"Authorization": "Bearer x"})
        assert r.status_code == 503
        assert "STOREEDGE_HQ_ADMIN_TOKEN" in r.text
    finally:
        server.stop()


def test_fleet_health(hq):
    keys = {s: add_store(hq.db, s) for s in ("s-fresh", "s-late", "s-never", "s-offline")}

    def fleet():
        with hq.admin() as admin:
            return {s["store_id"]: s for s in admin.get("/api/v1/fleet").json()["stores"]}

    with hq.as_store(keys["s-late"]) as client:
        assert client.post("/api/v1/heartbeat", json=_heartbeat("s-late")).status_code == 200
    hq.clock.now_ms += 61_000  # past stale_after_s = 60
    for store, devices in (("s-fresh", {"online": 3}), ("s-offline", {"online": 2, "offline": 1})):
        with hq.as_store(keys[store]) as client:
            beat = _heartbeat(store, devices=devices)
            assert client.post("/api/v1/heartbeat", json=beat).status_code == 200
    stores = fleet()
    assert stores["s-fresh"]["health"] == "ok"
    assert stores["s-fresh"]["devices_online"] == 3
    assert stores["s-fresh"]["devices_offline"] == 0
    assert stores["s-fresh"]["versions"] == {"gateway": "0.1.0"}
    assert stores["s-fresh"]["last_acked_seq"] == 7
    assert stores["s-fresh"]["heartbeat_age_s"] == 0
    assert stores["s-late"]["health"] == "stale"
    assert stores["s-late"]["heartbeat_age_s"] == 61
    assert stores["s-never"]["health"] == "unknown"  # never heard from: never OK
    assert stores["s-never"]["last_heartbeat_ms"] is None
    assert stores["s-never"]["devices_online"] is None
    assert stores["s-offline"]["health"] == "degraded"
    assert "offline" in stores["s-offline"]["health_reason"]
    # A backlog that does not drain makes a store degraded too.
    with hq.as_store(keys["s-fresh"]) as client:
        client.post("/api/v1/heartbeat", json=_heartbeat("s-fresh", oldest=900.0, rows=40))
    assert fleet()["s-fresh"]["health"] == "degraded"
    assert fleet()["s-fresh"]["backlog_rows"] == 40
    # Time passes without a heartbeat: the freshest store goes stale as well.
    hq.clock.now_ms += 60_001
    assert {s["health"] for s in fleet().values()} == {"stale", "unknown"}


def test_transactions_are_paged(hq):
    k1, k2 = add_store(hq.db, "s-1"), add_store(hq.db, "s-2")
    with hq.as_store(k1) as client:
        client.post("/api/v1/ingest", json=_batch("s-1", [_event(seq=i) for i in range(1, 24)]))
    with hq.as_store(k2) as client:
        client.post("/api/v1/ingest", json=_batch("s-2", [_event(seq=i) for i in range(1, 4)]))
    seen = []
    with hq.admin() as admin:
        for offset in range(0, 30, 10):
            page = admin.get(
                "/api/v1/transactions", params={"store_id": "s-1", "limit": 10, "offset": offset}
            ).json()
            assert page["total"] == 23
            seen.extend(page["items"])
        assert len(seen) == 23
        assert len({t["event_id"] for t in seen}) == 23
        assert [t["issued_ms"] for t in seen] == sorted(t["issued_ms"] for t in seen)
        first = seen[0]
        assert first["store_id"] == "s-1"
        assert first["total_minor"] == 250
        assert first["currency"] == "EUR"
        assert first["lines"][0]["barcode"] == "A"
        assert admin.get("/api/v1/transactions").json()["total"] == 26
        assert admin.get("/api/v1/transactions", params={"limit": 0}).status_code == 422
        assert admin.get("/api/v1/transactions", params={"limit": 1001}).status_code == 422


def test_a_bad_payload_is_set_aside_and_acknowledged(hq, caplog):
    key = add_store(hq.db, "s-1")
    bad = _event(receipt_id="r-1", currency="EUR", total_minor=-5, session_token="t", issued_ms=1)
    good = _event(seq=2)
    with hq.as_store(key) as client:
        ack = client.post("/api/v1/ingest", json=_batch("s-1", [bad, good])).json()
    assert ack["acked"] == [bad["event_id"], good["event_id"]]
    assert [r["event_id"] for r in ack["rejected"]] == [bad["event_id"]]
    assert hq.db.transactions("s-1", 10, 0)[1] == 1


def test_a_malformed_batch_is_refused_whole(hq):
    key = add_store(hq.db, "s-1")
    with hq.as_store(key) as client:
        r = client.post("/api/v1/ingest", json={"store_id": "s-1", "events": "nope"})
        assert r.status_code == 422
        r = client.post("/api/v1/ingest", content=b"{not json")
        assert r.status_code == 422


def _stock(barcode, quantity, seq, ts_ms, low=None, name=None):
    payload = {"barcode": barcode, "quantity": quantity}
    if low is not None:
        payload["low_threshold"] = low
    if name is not None:
        payload["name"] = name
    return _event(kind="stock_level", seq=seq, stream="stock", ts_ms=ts_ms, **payload)


def test_stock_across_stores_and_transfer_suggestions(hq):
    keys = {s: add_store(hq.db, s) for s in ("s-low", "s-plenty", "s-ok", "s-some")}
    levels = {
        "s-low": [_stock("A", 1, 1, 10, low=5, name="Apple"), _stock("B", 50, 2, 10)],
        "s-plenty": [_stock("A", 40, 1, 10, low=5)],
        "s-ok": [_stock("A", 8, 1, 10, low=5)],
        "s-some": [_stock("A", 4, 1, 10, low=5), _stock("A", 20, 2, 20, low=5)],
    }
    for store, events in levels.items():
        with hq.as_store(keys[store]) as client:
            assert client.post("/api/v1/ingest", json=_batch(store, events)).status_code == 200
    # An older snapshot arriving late does not overwrite a newer one.
    with hq.as_store(keys["s-some"]) as client:
        client.post("/api/v1/ingest", json=_batch("s-some", [_stock("A", 0, 3, 15, low=5)]))
    with hq.admin() as admin:
        a = admin.get("/api/v1/stock", params={"barcode": "A"}).json()
        by_store = {s["store_id"]: s for s in a["stores"]}
        assert {s: v["quantity"] for s, v in by_store.items()} == {
            "s-low": 1,
            "s-plenty": 40,
            "s-ok": 8,
            "s-some": 20,
        }
        assert a["total_quantity"] == 69
        assert by_store["s-low"]["low"] is True
        assert by_store["s-ok"]["low"] is False
        # s-low needs 2*5-1 = 9; s-plenty has 40-10 = 30 spare, s-some 20-10 = 10.
        assert a["transfers"] == [
            {
                "barcode": "A",
                "name": "Apple",
                "from_store": "s-plenty",
                "to_store": "s-low",
                "quantity": 9,
                "from_quantity": 40,
                "to_quantity": 1,
            }
        ]
        assert admin.get("/api/v1/stock/transfers").json()["items"] == a["transfers"]
        b = admin.get("/api/v1/stock", params={"barcode": "B"}).json()
        assert b["transfers"] == []  # nobody is low on B
        assert admin.get("/api/v1/stock", params={"barcode": "none"}).json()["stores"] == []
        assert admin.get("/api/v1/stock").status_code == 422


def test_fleet_page_needs_no_cdn(hq):
    r = httpx.get(hq.url + "/fleet")
    assert r.status_code == 200
    assert "text/html" in r.headers["content-type"]
    page = r.text
    assert "/api/v1/fleet" in page
    assert "<script src" not in page
    assert "<link" not in page
    assert "http://" not in page
    assert "https://" not in page
    assert httpx.get(hq.url + "/", follow_redirects=False).headers["location"] == "/fleet"


def test_cli_stores_add(tmp_path):
    db = str(tmp_path / "hq.db")
    out = runner.invoke(app, ["hq", "stores", "add", "--db", db, "--id", "store-7", "--json"])
    assert out.exit_code == 0, out.output
    created = json.loads(out.stdout)
    assert created["store_id"] == "store-7"
    assert created["api_key"].startswith("sk_")
    again = runner.invoke(app, ["hq", "stores", "add", "--db", db, "--id", "store-7"])
    assert again.exit_code == 2
    assert "already exists" in again.stderr
    bad = runner.invoke(app, ["hq", "stores", "add", "--db", db, "--id", "no spaces"])
    assert bad.exit_code == 2
    listed = runner.invoke(app, ["hq", "stores", "list", "--db", db, "--json"])
    assert json.loads(listed.stdout) == [{"store_id": "store-7", "name": None}]
    hq_db = HqDatabase.open(db)
    try:
        assert hq_db.store_for_key(hash_key(created["api_key"])) == "store-7"
        assert hq_db.store_for_key(hash_key("sk_other")) is None
    finally:
        hq_db.close()
    rotated = runner.invoke(app, ["hq", "stores", "rotate-key", "--db", db, "--id", "store-7"])
    assert rotated.exit_code == 0
    hq_db = HqDatabase.open(db)
    try:
        assert hq_db.store_for_key(hash_key(created["api_key"])) is None  # the old key is dead
        assert hq_db.store_for_key(hash_key(rotated.stdout.strip())) == "store-7"
    finally:
        hq_db.close()


@pytest.mark.parametrize("args", [["hq"], ["hq", "--port", "1"]])
def test_cli_hq_needs_a_database(args):
    r = runner.invoke(app, args)
    assert r.exit_code == 2
    assert "--db" in r.stderr
