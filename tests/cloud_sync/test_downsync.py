"""Down-sync against a real HQ: versioned documents, the gateway applies, refuses or
rolls back each one, says so through the outbox, and HQ's fleet view shows it."""

from __future__ import annotations

import httpx
import pytest
from typer.testing import CliRunner

from cloud_sync.downsync import Fetcher, FetcherConfig
from cloud_sync.hq.db import HqDatabase
from cloud_sync.sender import Sender, SenderConfig
from devices.layout import Planogram
from edge.app import Gateway
from edge.cli import app
from edge.config import parse_config
from edge.downsync import APPLIED_LIVE, Probe
from tests.cloud_sync.helpers import add_store

STORE = "s-1"
A, B = "100", "200"


@pytest.fixture
def hq_target(request, tmp_path):
    """SQLite, unless a test asks for both (``BOTH``): PostgreSQL where there is one."""
    if getattr(request, "param", "sqlite") == "sqlite":
        return str(tmp_path / "hq.db")
    return str(request.getfixturevalue("postgres_url"))


BOTH = pytest.mark.parametrize("hq_target", ["sqlite", "postgresql"], indirect=True)


def _planogram() -> Planogram:
    return Planogram.model_validate(
        {
            "products": [
                {"barcode": A, "name": "cola", "unit_weight_g": 350, "price_minor": 149},
                {"barcode": B, "name": "rice", "unit_weight_g": 1000, "price_minor": 289},
            ],
            "shelves": [
                {
                    "device_id": "shelf-1",
                    "plates": [{"plate": 0, "barcode": A, "stock": 6}, {"plate": 1, "barcode": B}],
                }
            ],
        }
    )


class Store:
    """A gateway (not started: no MQTT) that knows HQ, with a fetcher driven by hand."""

    def __init__(self, tmp_path, hq, key: str, probation_s: float = 0.0) -> None:
        self.hq = hq
        self.key = key
        self.now = 1_000_000
        self.cfg = parse_config(
            {
                "store_id": STORE,
                "planogram": "x.yaml",
                "gates": [{"device_id": "gate-in", "direction": "entry"}],
                "esls": [
                    {"device_id": "esl-1", "barcode": A},
                    {"device_id": "esl-2", "barcode": B},
                ],
                "database": {"path": str(tmp_path / "g.db")},
                "hq": {"url": hq.url, "api_key": key, "config_probation_s": probation_s},
            },
            base_dir=tmp_path,
            env={},
        )
        self.gw = self.start_gateway()

    def start_gateway(self) -> Gateway:
        gw = Gateway(self.cfg, planogram=_planogram(), clock_ms=lambda: self.now)
        gw.prices.sync()
        gw.downsync.check_every_s = 0.01
        self.fetcher = Fetcher(
            gw.downsync, FetcherConfig(hq_url=self.hq.url, store_id=STORE, api_key=self.key)
        )
        return gw

    def fetch(self) -> None:
        self.fetcher.step()

    def ship(self) -> None:
        """The outbox to HQ, with a heartbeat that carries the versions that run."""
        assert self.gw.hq is not None
        self.gw.hq.versions = self.gw.downsync.versions
        config = SenderConfig(
            hq_url=self.hq.url, store_id=STORE, api_key=self.key, batch_max_age_s=0, poll_s=0.02
        )
        sender = Sender(self.gw.store, config, self.gw.hq._status)
        sender.start()
        try:
            assert sender.wait_drained(30)
        finally:
            sender.stop()

    def reports(self) -> list[dict]:
        return [r["payload"] for r in self.gw.store.outbox_rows(kind="sync_report")]

    def close(self) -> None:
        self.fetcher.stop()
        self.gw.store.close()
        if self.gw.hq is not None:
            self.gw.hq.stop()


@pytest.fixture
def store(tmp_path, hq):
    s = Store(tmp_path, hq, add_store(hq.db, STORE))
    yield s
    s.close()


def publish(hq, kind: str, body: dict, store_id: str | None = STORE) -> dict:
    with hq.admin() as admin:
        resp = admin.post(f"/api/v1/sync/{kind}", json={"store_id": store_id, "body": body})
    assert resp.status_code == 201, resp.text
    return resp.json()


# --------------------------------------------------------------------------- HQ


@BOTH
def test_hq_publishes_versions_per_kind_for_one_store_or_all(hq):
    key = add_store(hq.db, STORE)
    add_store(hq.db, "s-2")
    assert publish(hq, "prices", {"prices": {A: 100}}, None)["version"] == 1
    assert publish(hq, "prices", {"prices": {A: 110}}, "s-2")["version"] == 2
    assert publish(hq, "config", {"inference": {}}, STORE)["version"] == 1
    with hq.as_store(key) as client:
        docs = client.get("/api/v1/sync").json()["documents"]
        # s-1 gets the every-store price list, not s-2's own
        assert {(d["kind"], d["version"], d["scope"]) for d in docs} == {
            ("prices", 1, "*"),
            ("config", 1, STORE),
        }
        assert client.get("/api/v1/sync", params={"prices": 1, "config": 1}).json() == {
            "store_id": STORE,
            "documents": [],
        }
    with hq.admin() as admin:
        bad = admin.post("/api/v1/sync/prices", json={"body": {"prices": {A: -1}}})
        assert bad.status_code == 422
        assert "greater than or equal to 0" in bad.text
        assert admin.post("/api/v1/sync/firmware", json={"body": {}}).status_code == 404
        nobody = admin.post("/api/v1/sync/prices", json={"store_id": "s-9", "body": {}})
        assert nobody.status_code in {404, 422}
        listed = admin.get("/api/v1/sync/documents", params={"kind": "prices"}).json()["items"]
        assert [d["version"] for d in listed] == [2, 1]
    # store keys cannot publish, and the admin token is no store key
    with hq.as_store(key) as client:
        assert client.post("/api/v1/sync/prices", json={"body": {}}).status_code == 401
    assert httpx.get(f"{hq.url}/api/v1/sync").status_code == 401


# --------------------------------------------------------------------------- prices


def test_prices_apply_in_one_go_reach_the_labels_and_hq_sees_them(store, hq):
    doc = publish(hq, "prices", {"prices": {A: 199, B: 289}})
    store.fetch()
    gw = store.gw
    assert (gw.prices.price_minor(A), gw.prices.price_minor(B)) == (199, 289)
    assert gw.store.twin("esl-1")["desired"]["price_minor"] == 199  # the label's twin
    assert [e["body"]["barcode"] for e in gw.store.events("price_change")] == [A]  # B unchanged
    [report] = store.reports()
    assert report == {
        "kind": "prices",
        "version": doc["version"],
        "status": "applied",
        "reason": "1 price(s) changed",
        "running_version": doc["version"],
    }
    store.fetch()  # nothing new: nothing applied twice
    assert len(store.reports()) == 1
    store.ship()
    with hq.admin() as admin:
        [s] = admin.get("/api/v1/fleet").json()["stores"]
        assert s["versions"]["prices"] == str(doc["version"])
        assert s["sync"]["prices"] == {
            "published": doc["version"],
            "running": doc["version"],
            "status": "applied",
            "status_version": doc["version"],
            "reason": "1 price(s) changed",
        }
        assert s["health"] == "ok"


def test_a_price_list_with_an_unknown_product_is_refused_whole(store, hq):
    doc = publish(hq, "prices", {"prices": {A: 99, "999": 5}})
    store.fetch()
    assert store.gw.prices.price_minor(A) == 149  # nothing changed
    [report] = store.reports()
    assert report["status"] == "refused"
    assert "999" in report["reason"]
    store.fetch()  # a refused version is not fetched again
    assert len(store.reports()) == 1
    store.ship()
    with hq.admin() as admin:
        [s] = admin.get("/api/v1/fleet").json()["stores"]
        assert s["health"] == "degraded"
        assert f"prices version {doc['version']} refused" in s["health_reason"]


# --------------------------------------------------------------------------- config


@pytest.mark.parametrize(
    ("body", "named"),
    [
        ({"detector": {"settle_sd_g": -1}}, "detector.settle_sd_g: Input should be greater than 0"),
        ({"detectr": {"settle_sd_g": 3}}, "detectr: Extra inputs are not permitted"),
        ({"inference": {"min_confidence": 0.7, "typo": 1}}, "inference.typo"),
        ({"mqtt": {"keepalive_s": 60}}, "mqtt: cannot be changed from HQ while the gateway runs"),
    ],
)
def test_a_config_that_fails_validation_is_refused_naming_the_key(store, hq, body, named):
    publish(hq, "config", body)
    before = store.gw.config
    store.fetch()
    assert store.gw.config == before
    [report] = store.reports()
    assert report["status"] == "refused"
    assert named in report["reason"]
    assert report["running_version"] is None


def test_a_config_applies_live_and_keeps_what_the_detectors_hold(store, hq):
    gw = store.gw
    shelf = gw.engine.shelves["shelf-1"]
    shelf.plates[0].baseline_g = 2100.0
    doc = publish(
        hq,
        "config",
        {
            "inference": {"min_confidence": 0.8},
            "detector": {"min_delta_g": 12},
            "devices": {"missed_heartbeats": 5},
        },
    )
    gw.liveness.expect_every("shelf-1", 20_000)
    assert gw.liveness.limit_ms("shelf-1") == 60_000  # 3 missed 20 s heartbeats
    store.fetch()
    assert gw.liveness.limit_ms("shelf-1") == 100_000  # 5 of them, from HQ's config
    assert gw.config.inference.min_confidence == 0.8
    assert gw.engine._inference.min_confidence == 0.8
    new_shelf = gw.engine.shelves["shelf-1"]
    assert new_shelf is not shelf
    assert new_shelf.plates[0].baseline_g == 2100.0  # the settled level carries over
    assert new_shelf._min_delta == 12
    [report] = store.reports()
    assert (report["status"], report["running_version"]) == ("applied", doc["version"])
    assert gw.downsync.versions() == {"config": str(doc["version"])}


@BOTH
def test_a_config_that_makes_the_gateway_unhealthy_is_rolled_back_and_hq_told(tmp_path, hq):
    store = Store(tmp_path, hq, add_store(hq.db, STORE), probation_s=5.0)
    try:
        gw = store.gw
        good = publish(hq, "config", {"inference": {"min_confidence": 0.7}})
        healthy = [True]
        gw.downsync.probe = lambda: Probe(healthy[0], 0, "" if healthy[0] else "mqtt_connected")
        gw.downsync.probation_s = 0.05
        store.fetch()
        assert gw.config.inference.min_confidence == 0.7
        bad = publish(hq, "config", {"inference": {"min_confidence": 0.2}})
        gw.downsync.probation_s = 5.0
        checks = iter([True, False, False, False])  # fine at first, then unhealthy

        def probe() -> Probe:
            ok = next(checks, False)
            return Probe(ok, 0, "" if ok else "mqtt_connected")

        gw.downsync.probe = probe
        store.fetch()
        # the previous settings are back, and so is the previous version
        assert gw.config.inference.min_confidence == 0.7
        assert gw.engine._inference.min_confidence == 0.7
        assert gw.downsync.versions() == {"config": str(good["version"])}
        reports = store.reports()
        assert [(r["version"], r["status"]) for r in reports] == [
            (good["version"], "applied"),
            (bad["version"], "applied"),
            (bad["version"], "rolled_back"),
        ]
        assert "became unhealthy (mqtt_connected)" in reports[-1]["reason"]
        assert reports[-1]["running_version"] == good["version"]
        store.fetch()  # not fetched (and applied) again
        assert len(store.reports()) == 3
        store.ship()
        with hq.admin() as admin:
            [s] = admin.get("/api/v1/fleet").json()["stores"]
            state = s["sync"]["config"]
            assert (state["published"], state["running"]) == (bad["version"], good["version"])
            assert (state["status"], state["status_version"]) == ("rolled_back", bad["version"])
            assert s["health"] == "degraded"
            assert "rolled back" in s["health_reason"]
            status = admin.get("/api/v1/sync/status", params={"store_id": STORE}).json()
            assert {(r["version"], r["status"]) for r in status["reports"]} == {
                (good["version"], "applied"),
                (bad["version"], "rolled_back"),
            }
    finally:
        store.close()


def test_more_devices_offline_after_a_config_rolls_it_back(store, hq):
    gw = store.gw
    gw.downsync.probation_s = 5.0
    offline = iter([0, 0, 2, 2])
    gw.downsync.probe = lambda: Probe(True, next(offline, 2))
    publish(hq, "config", {"devices": {"offline_after_s": 1}})
    store.fetch()
    assert gw.config.devices.offline_after_s == 30
    [_, report] = store.reports()
    assert report["status"] == "rolled_back"
    assert report["reason"] == "2 more device(s) offline than before"
    assert report["running_version"] is None


# --------------------------------------------------------------------------- planogram, restart


def test_planogram_and_catalog_apply_live_and_run_again_after_a_restart(store, hq):
    planogram = _planogram().model_dump()
    planogram["products"].append(
        {"barcode": "300", "name": "tea", "unit_weight_g": 100, "price_minor": 250}
    )
    planogram["shelves"][0]["plates"].append({"plate": 2, "barcode": "300", "stock": 5})
    p = publish(hq, "planogram", planogram)
    c = publish(hq, "catalog", {"products": [{"barcode": A, "name": "cola zero"}]})
    cfg = publish(hq, "config", {"inference": {"min_confidence": 0.75}})
    store.fetch()
    gw = store.gw
    reasons = {r["kind"]: (r["status"], r["reason"]) for r in store.reports()}
    assert reasons["planogram"] == ("applied", APPLIED_LIVE)
    assert reasons["catalog"] == ("applied", APPLIED_LIVE)
    assert gw.planogram.product(A).name == "cola zero"  # live
    assert gw.engine.planogram is gw.planogram
    assert "300" in gw.engine.live.products
    assert len(gw.engine.shelves["shelf-1"].plates) == 3
    assert gw.downsync.versions() == {
        "catalog": str(c["version"]),
        "config": str(cfg["version"]),
        "planogram": str(p["version"]),
    }
    store.close()

    store.gw = again = store.start_gateway()  # the gateway starts again on the same database
    assert again.planogram.product(A).name == "cola zero"
    assert again.planogram.product("300").name == "tea"
    assert "300" in again.engine.live.products
    assert again.config.inference.min_confidence == 0.75
    assert again.downsync.versions() == {
        "catalog": str(c["version"]),
        "config": str(cfg["version"]),
        "planogram": str(p["version"]),
    }


def test_a_planogram_waits_for_a_busy_shelf_and_what_follows_waits_with_it(store, hq):
    gw = store.gw
    gw.downsync.quiet_wait_s = 0
    plate = gw.engine.shelves["shelf-1"].plates[0]
    plate._disturbed = True  # a hand on the shelf the planogram gives a third plate
    planogram = _planogram().model_dump()
    planogram["products"].append(
        {"barcode": "300", "name": "tea", "unit_weight_g": 100, "price_minor": 250}
    )
    planogram["shelves"][0]["plates"].append({"plate": 2, "barcode": "300"})
    p = publish(hq, "planogram", planogram)
    prices = publish(hq, "prices", {"prices": {"300": 199}})  # needs the new planogram
    store.fetch()
    assert store.reports() == []  # deferred: nothing recorded, asked again
    assert gw.downsync.versions() == {}
    plate._disturbed = False
    store.fetch()
    assert [(r["kind"], r["version"], r["status"]) for r in store.reports()] == [
        ("planogram", p["version"], "applied"),
        ("prices", prices["version"], "applied"),
    ]
    assert gw.prices.price_minor("300") == 199


@pytest.mark.parametrize(
    ("kind", "body", "named"),
    [
        ("planogram", {"products": [{"barcode": A}], "shelves": [{}]}, "planogram.products.0.name"),
        ("catalog", {"products": [{"barcode": B, "price_minor": -1}]}, "planogram.products"),
        ("catalog", {"products": [{"barcode": A, "colour": "red"}]}, "colour"),
    ],
)
def test_a_planogram_or_catalog_that_does_not_validate_is_refused(store, hq, kind, body, named):
    publish(hq, kind, body)
    store.fetch()
    [report] = store.reports()
    assert report["status"] == "refused"
    assert named in report["reason"]
    assert store.gw.downsync.versions() == {}


def test_a_planogram_without_a_labelled_product_is_refused(store, hq):
    planogram = _planogram().model_dump()
    planogram["products"] = [p for p in planogram["products"] if p["barcode"] != B]
    planogram["shelves"][0]["plates"] = planogram["shelves"][0]["plates"][:1]
    publish(hq, "planogram", planogram)
    store.fetch()
    [report] = store.reports()
    assert report["status"] == "refused"
    assert report["reason"] == f"esls: the shelf labels show products it lacks: {B}"


def test_the_publish_command_writes_a_new_version(tmp_path):
    db = HqDatabase.open(tmp_path / "hq.db")
    add_store(db, STORE)
    db.close()
    doc = tmp_path / "prices.yaml"
    doc.write_text(f'prices:\n  "{A}": 199\n')
    runner = CliRunner()
    args = ["hq", "publish", "--db", str(tmp_path / "hq.db"), "--kind", "prices"]
    out = runner.invoke(app, [*args, "--file", str(doc), "--store-id", STORE])
    assert out.exit_code == 0, out.output
    assert out.output.strip() == '{"kind": "prices", "version": 1, "scope": "s-1"}'
    doc.write_text(f'prices:\n  "{A}": -5\n')
    bad = runner.invoke(app, [*args, "--file", str(doc)])
    assert bad.exit_code == 2
    assert "greater than or equal to 0" in bad.output
    db = HqDatabase.open(tmp_path / "hq.db")
    try:
        assert [d.version for d in db.changes_for(STORE, {})] == [1]
    finally:
        db.close()
