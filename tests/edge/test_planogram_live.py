"""HQ's planogram and catalog applied live: a running gateway (its worker thread, fed
through its inbox) swaps the planogram in every part that holds it in one worker
step; picks after it are inferred with the new weights and receipted with the new
names, carts keep their lines, and the swap itself makes no weight event."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

from cloud_sync.downsync import Deferred
from cloud_sync.wire import SyncDocument
from devices.layout import Planogram
from edge.downsync import APPLIED_LIVE
from edge.mqtt.link import Received
from tests.edge.helpers import Bench

A, B, C = "100", "200", "300"
WEIGHT_EVENTS = ("cart_change", "small_change", "unattributed_change")
T = TypeVar("T")


def _planogram(**extra: Any) -> Planogram:
    return Planogram.model_validate(
        {
            "products": [
                {"barcode": A, "name": "cola", "unit_weight_g": 350, "price_minor": 149},
                {"barcode": B, "name": "rice", "unit_weight_g": 1000, "price_minor": 289},
            ],
            "shelves": [
                {
                    "device_id": "shelf-1",
                    "plates": [
                        {"plate": 0, "barcode": A, "stock": 6},
                        {"plate": 1, "barcode": B, "stock": 3},
                    ],
                }
            ],
            **extra,
        }
    )


def _with_tea() -> dict[str, Any]:
    """HQ's planogram: tea on plate 2, which held nothing so far."""
    data = _planogram().model_dump()
    data["products"].append(
        {"barcode": C, "name": "green tea", "unit_weight_g": 100, "price_minor": 250}
    )
    data["shelves"][0]["plates"].append({"plate": 2, "barcode": C, "stock": 5})
    return data


def _doc(kind: str, version: int, body: dict[str, Any]) -> SyncDocument:
    return SyncDocument(kind=kind, version=version, scope="*", published_ms=0, body=body)


class RunningBench(Bench):
    """A gateway whose worker thread runs, fed through its inbox (as by MQTT)."""

    def __init__(self, tmp_path: Path, planogram: Planogram) -> None:
        super().__init__(tmp_path, planogram)
        self.gw._worker.start()

    def send(self, topic: str, body: dict[str, Any]) -> bool:
        device = topic.split("/")[3]
        self.seq[device] = self.seq.get(device, 0) + 1
        payload = json.dumps({"seq": self.seq[device], "ts": self.now, **body}).encode()
        self.gw.inbox.put(Received(topic, payload, 0, 1))
        return True

    def drain(self) -> None:
        """Until the worker has handled everything sent so far."""
        deadline = time.monotonic() + 10
        while not self.gw.inbox.empty():
            assert time.monotonic() < deadline, "the worker does not keep up"
            time.sleep(0.01)
        self.gw.call(lambda: None)  # runs after the message being handled

    def tick(self, seconds: float = 0.2, where: dict[str, tuple[float, ...]] | None = None):
        super().tick(seconds, where)
        self.drain()

    def read(self, query: Callable[[], T]) -> T:
        """A read of the store, on the worker (its one connection)."""
        return self.gw.call(query)

    def cart(self, token: str) -> dict[str, int]:
        return self.read(lambda: self.store.cart(token))

    def weight_outcomes(self) -> list[tuple[str, Any]]:
        def read() -> list[tuple[str, Any]]:
            events = [
                (e["kind"], e["body"].get("barcode"))
                for kind in WEIGHT_EVENTS
                for e in self.store.events(kind)
            ]
            return events + [("review", r["review_id"]) for r in self.store.reviews(status=None)]

        return self.read(read)


@pytest.fixture
def running(tmp_path) -> Iterator[RunningBench]:
    b = RunningBench(tmp_path, _planogram())
    b.planogram = Planogram.model_validate(_with_tea())  # the shelf has three plates
    b.loads[("shelf-1", 2)] = 800.0
    try:
        yield b
    finally:
        if b.gw._worker.is_alive():  # the test did not stop it
            b.gw.stop()


def test_a_new_catalog_and_planogram_apply_live_on_a_running_gateway(running, tmp_path):
    b, gw = running, running.gw
    b.tick(1)
    b.gate("entry", "tok-1")
    b.change("shelf-1", 1, -1000)  # rice, before the swap
    assert b.cart("tok-1") == {B: 1}
    detector = gw.engine.shelves["shelf-1"]
    plate0 = detector.plates[0]
    before = b.weight_outcomes()

    # HQ: cola is now "cola zero", 500 g, 1.79; and tea on the empty plate 2
    catalog = {"products": [{"barcode": A, "name": "cola zero", "unit_weight_g": 500}]}
    catalog["products"][0]["price_minor"] = 179
    gw.downsync.apply(_doc("catalog", 1, catalog))
    gw.downsync.apply(_doc("planogram", 1, _with_tea()))

    assert gw.planogram.product(A).name == "cola zero"
    assert gw.engine.planogram is gw.planogram is gw.prices.planogram
    assert gw.staff.planogram is gw.shoppers.planogram is gw.planogram
    spots = gw.shoppers.floor.locate(C)  # the guidance's floor plan, built again
    assert [(s.shelf, s.plate) for s in spots] == [("shelf-1", 2)]
    assert ("shelf-1", C) in gw.staff.restock.lanes
    assert gw.engine.shelves["shelf-1"].plates[0] is plate0  # what the plates hold stays
    assert len(gw.engine.shelves["shelf-1"].plates) == 3
    assert gw.downsync.versions() == {"catalog": "1", "planogram": "1"}
    reports = [r["payload"] for r in b.read(lambda: gw.store.outbox_rows(kind="sync_report"))]
    assert [(r["kind"], r["status"], r["reason"]) for r in reports] == [
        ("catalog", "applied", APPLIED_LIVE),
        ("planogram", "applied", APPLIED_LIVE),
    ]

    b.tick(2)  # the new plate settles: its first level is no change
    assert b.weight_outcomes() == before
    assert detector is not gw.engine.shelves["shelf-1"]  # resized, same plates

    b.change("shelf-1", 0, -500)  # one cola at its new weight (350 g would not fit)
    b.change("shelf-1", 2, -100)  # a tea from the new plate
    assert b.cart("tok-1") == {A: 1, B: 1, C: 1}
    assert b.read(b.store.reviews) == []
    b.gate("exit", "tok-1")
    b.tick(0.4)
    [receipt] = b.receipts
    lines = {line.barcode: (line.name, line.unit_price_minor) for line in receipt.lines}
    assert lines == {A: ("cola zero", 179), B: ("rice", 289), C: ("green tea", 250)}

    # the running planogram is what a restart starts with
    gw.stop()
    again = Bench(tmp_path, _planogram())
    try:
        assert again.gw.planogram.product(A).unit_weight_g == 500
        assert again.gw.planogram.shelf("shelf-1").plate_count == 3
    finally:
        again.store.close()


def test_a_shelf_mid_change_holds_back_a_planogram_that_resizes_it(tmp_path):
    b = Bench(tmp_path, _planogram())
    b.tick(1)
    b.gw.downsync.quiet_wait_s = 0
    b.loads[("shelf-1", 0)] -= 350
    b.tick(0.2)  # a hand on plate 0: not settled yet
    assert b.gw.engine.shelves["shelf-1"].in_motion
    with pytest.raises(Deferred, match="a change in progress on shelf-1"):
        b.gw.downsync.apply(_doc("planogram", 1, _with_tea()))
    assert C not in {p.barcode for p in b.gw.planogram.products}
    assert b.store.outbox_rows(kind="sync_report") == []  # nothing recorded: asked again
    assert b.store.sync_seen() == {}
    # a catalog changes no shelf: it never waits
    b.gw.downsync.apply(_doc("catalog", 1, {"products": [{"barcode": B, "name": "basmati"}]}))
    assert b.gw.planogram.product(B).name == "basmati"
    b.tick(1.4)  # the change settles (and is handled with what was known then)
    b.gw.downsync.apply(_doc("planogram", 1, _with_tea()))
    assert b.gw.planogram.product(C).name == "green tea"
    assert b.gw.planogram.product(B).name == "basmati"  # the catalog stays on top
    b.store.close()


def test_a_removed_shelf_is_forgotten_and_a_new_one_becomes_known(tmp_path):
    data = _planogram().model_dump()
    data["shelves"].append({"device_id": "shelf-2", "plates": [{"plate": 0, "barcode": B}]})
    b = Bench(tmp_path, Planogram.model_validate(data))
    b.tick(1)
    moved = _planogram().model_dump()
    moved["shelves"][0]["device_id"] = "shelf-3"
    b.gw.downsync.apply(_doc("planogram", 1, moved))
    gw = b.gw
    assert set(gw.engine.shelves) == {"shelf-3"}
    assert gw.dispatcher.known_devices.get("shelf-3") == "shelf"
    assert "shelf-1" not in gw.dispatcher.known_devices
    assert "shelf-2" not in gw.dispatcher.known_devices
    assert gw.dispatcher.known_devices["gate-in"] == "gate"
    # the removed shelves were online; their silence from now on is no news
    assert gw.liveness.state("shelf-1") is None
    assert gw.liveness.state("shelf-2") is None
    silent = gw.liveness.check(gw.engine.clock_ms() + 3_600_000)
    assert "shelf-1" not in silent
    assert "shelf-2" not in silent
    b.store.close()


@pytest.mark.parametrize(
    ("kind", "body", "named"),
    [
        ("planogram", {**_with_tea(), "shelvs": []}, "planogram.shelvs: Extra inputs"),
        (
            "planogram",
            {**_with_tea(), "products": _with_tea()["products"][:2]},
            "shelf shelf-1 plate 2: unknown barcode '300'",
        ),
        ("catalog", {"products": [{"barcode": A, "unit_weight_g": -1}]}, "unit_weight_g"),
    ],
)
def test_a_planogram_that_does_not_validate_is_refused_naming_the_key(tmp_path, kind, body, named):
    b = Bench(tmp_path, _planogram())
    before = b.gw.planogram
    b.gw.downsync.apply(_doc(kind, 1, body))
    assert b.gw.planogram is before
    assert b.gw.engine.planogram is before
    [report] = [r["payload"] for r in b.store.outbox_rows(kind="sync_report")]
    assert report["status"] == "refused"
    assert named in report["reason"]
    assert report["running_version"] is None
    assert b.gw.downsync.versions() == {}
    b.store.close()


def test_a_failed_commit_puts_the_previous_planogram_back(tmp_path):
    b = Bench(tmp_path, _planogram())
    gw = b.gw
    before = gw.planogram

    def fail() -> None:
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        gw.apply_planogram(Planogram.model_validate(_with_tea()), fail)
    assert gw.planogram is before
    assert gw.engine.planogram is before
    assert gw.prices.planogram is before
    assert C not in gw.engine.live.products
    assert len(gw.engine.shelves["shelf-1"].plates) == 2
    b.store.close()
