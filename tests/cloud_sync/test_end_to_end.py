"""Proof: a real HQ process, the real sender, a TCP fault proxy between them, crashes.

After every scenario HQ holds exactly the gateway's transactions: none missing,
none twice (by event id and by receipt id).
"""

import os
import random
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from cloud_sync.hq.db import HqDatabase
from cloud_sync.sender import Sender, SenderConfig
from edge.store.repo import ReceiptRow, Store
from tests.cloud_sync.faultproxy import FaultProxy
from tests.cloud_sync.helpers import ROOT, HqProcess, add_store, hq_transactions
from tests.integration.conftest import wait_for

STORE = "s-e2e"
CHILD = Path(__file__).with_name("gateway_child.py")


def _config(url: str, key: str, **kw) -> SenderConfig:
    defaults = {
        "batch_max_rows": 10,
        "batch_max_age_s": 0.0,
        "poll_s": 0.01,
        "heartbeat_s": 0.2,
        "backoff_base_s": 0.02,
        "backoff_max_s": 0.2,
        "request_timeout_s": 10,
    }
    return SenderConfig(hq_url=url, store_id=STORE, api_key=key, **{**defaults, **kw})


def _write(store: Store, n: int, tag: str) -> None:
    for i in range(n):
        token = f"{tag}-{i}"
        store.open_session(token, "gate-in", i)
        store.close_with_receipt(token, "gate-out", i, "EUR", [ReceiptRow("A", "a", 1, 100 + i)])
        if i % 7 == 0:  # device state changes share the outbox (another stream)
            store.record_state(f"shelf-{i % 3}", "shelf", "offline" if i % 2 else "online", i)


def assert_exact(hq: HqProcess, gateway_db: Path) -> int:
    """HQ holds exactly the gateway's transactions; returns how many."""
    store = Store.open(gateway_db)
    try:
        assert store.outbox_backlog().rows == 0
        outbox_ids = sorted(r["event_id"] for r in store.outbox_rows(kind="transaction"))
        receipts = sorted(r["receipt_id"] for r in store.receipts(limit=1_000_000))
    finally:
        store.close()
    items, total = hq_transactions(f"http://127.0.0.1:{hq.port}", STORE)
    hq_ids = [str(i["event_id"]) for i in items]
    assert len(hq_ids) == total == len(set(hq_ids)), "a transaction is at HQ twice"
    assert sorted(hq_ids) == outbox_ids, "HQ's transactions differ from the outbox's"
    assert sorted(str(i["receipt_id"]) for i in items) == receipts
    assert len(receipts) == len(outbox_ids)  # every receipt has exactly its one outbox row
    return total


def _new_store_key(db: Path) -> str:
    hq_db = HqDatabase.open(db)
    try:
        return add_store(hq_db, STORE)
    finally:
        hq_db.close()


def test_hq_down_for_part_of_the_run_then_drained(hq_process, tmp_path):
    key = _new_store_key(tmp_path / "hq.db")
    hq_process.start()
    proxy = FaultProxy(hq_process.address)
    gateway_db = tmp_path / "g.db"
    writer = Store.open(gateway_db)
    sender = Sender(Store.open(gateway_db), _config(proxy.url, key))
    sender.start()
    try:
        _write(writer, 30, "before")
        wait_for(lambda: sender.stats.events_acked >= 10, 30, "the first batches")
        hq_process.stop()  # HQ is stopped ...
        _write(writer, 40, "during")  # ... while the store goes on selling
        wait_for(lambda: sender.stats.consecutive_failures >= 3, 30, "the sender to notice")
        assert writer.outbox_backlog().rows > 0
        hq_process.start()  # ... and back (on another port: the proxy follows)
        proxy.upstream = hq_process.address
        _write(writer, 30, "after")
        assert sender.wait_drained(60)
    finally:
        sender.stop()
        proxy.close()
        writer.close()
    assert sender.stats.failures >= 3
    assert assert_exact(hq_process, gateway_db) == 100


def test_hq_killed_in_the_middle_of_a_batch(hq_process, tmp_path):
    key = _new_store_key(tmp_path / "hq.db")
    hq_process.start()
    proxy = FaultProxy(hq_process.address)
    gateway_db = tmp_path / "g.db"
    writer = Store.open(gateway_db)
    sender = Sender(Store.open(gateway_db), _config(proxy.url, key))
    try:
        # 1. HQ dies while a batch is half-way in: it committed nothing of it.
        proxy.hold_request(b"/api/v1/ingest", after=300)
        sender.start()
        _write(writer, 25, "a")
        assert proxy.request_held.wait(30)
        hq_process.kill()
        proxy.release()
        hq_process.start()
        proxy.upstream = hq_process.address
        assert sender.wait_drained(60)
        # 2. HQ dies after committing a batch, before its answer reaches the gateway.
        proxy.hold_response(b"/api/v1/ingest")
        _write(writer, 25, "b")
        assert proxy.response_held.wait(30)
        hq_process.kill()
        proxy.release()
        proxy.drop_all()
        hq_process.start()
        proxy.upstream = hq_process.address
        assert sender.wait_drained(60)
    finally:
        sender.stop()
        proxy.close()
        writer.close()
    assert sender.stats.duplicates > 0  # the committed batch went again; HQ kept it once
    assert assert_exact(hq_process, gateway_db) == 50


def _start_child(gateway_db: Path, url: str, key: str, count: int) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, str(CHILD), str(gateway_db), url, STORE, key, str(count)],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        stdin=subprocess.DEVNULL,
        text=True,
    )


def _read_until(child: subprocess.Popen[str], line_prefix: str) -> None:
    assert child.stdout is not None
    for line in child.stdout:
        if line.startswith(line_prefix):
            return
    pytest.fail(f"the gateway child ended before printing {line_prefix!r}")


def _sigkill(child: subprocess.Popen[str]) -> None:
    child.send_signal(signal.SIGKILL)
    child.wait(timeout=10)
    if child.stdout is not None:
        child.stdout.close()


def _drain(gateway_db: Path, url: str, key: str) -> Sender:
    sender = Sender(Store.open(gateway_db), _config(url, key))
    sender.start()
    try:
        assert sender.wait_drained(60)
    finally:
        sender.stop()
    return sender


def test_gateway_killed_between_writing_a_receipt_and_sending_it(hq_process, tmp_path):
    key = _new_store_key(tmp_path / "hq.db")
    hq_process.start()
    proxy = FaultProxy(hq_process.address)
    gateway_db = tmp_path / "g.db"
    try:
        # HQ unreachable: receipts pile up; SIGKILL lands while the gateway is writing.
        proxy.refuse = True
        child = _start_child(gateway_db, proxy.url, key, 10_000)
        try:
            _read_until(child, "written 40 ")
        finally:
            _sigkill(child)
        proxy.refuse = False
        _drain(gateway_db, proxy.url, key)
        first = assert_exact(hq_process, gateway_db)
        assert first >= 40
        # HQ committed a batch; the gateway is killed before it hears the ack.
        proxy.hold_response(b"/api/v1/ingest")
        child = _start_child(gateway_db, proxy.url, key, 15)
        try:
            assert proxy.response_held.wait(30)
        finally:
            _sigkill(child)
        proxy.release()
        proxy.drop_all()
        sender = _drain(gateway_db, proxy.url, key)
        assert sender.stats.duplicates > 0
        assert assert_exact(hq_process, gateway_db) > first
    finally:
        proxy.close()


@pytest.mark.slow
def test_chaos_many_kills_while_the_store_sells(hq_process, tmp_path):
    """A writer thread sells without pause while HQ is stopped, killed mid-request,
    killed after commit, and the network refuses, over and over."""
    rng = random.Random(5)
    key = _new_store_key(tmp_path / "hq.db")
    hq_process.start()
    proxy = FaultProxy(hq_process.address)
    gateway_db = tmp_path / "g.db"
    writer = Store.open(gateway_db)
    stop = threading.Event()

    def sell() -> None:
        n = 0
        while not stop.is_set():
            _write(writer, 5, f"w{n}")
            n += 1

    thread = threading.Thread(target=sell)
    sender = Sender(Store.open(gateway_db), _config(proxy.url, key, batch_max_rows=25))
    sender.start()
    thread.start()
    try:
        for _ in range(8):
            fault = rng.choice(["stop", "kill_request", "kill_response", "refuse"])
            if fault == "refuse":
                proxy.refuse = True
                failures = sender.stats.failures
                wait_for(lambda f=failures: sender.stats.failures > f, 30, "a refused try")
                proxy.refuse = False
                continue
            if fault == "kill_request":
                proxy.hold_request(b"/api/v1/ingest", after=rng.randint(1, 2000))
                assert proxy.request_held.wait(30)
            elif fault == "kill_response":
                proxy.hold_response(b"/api/v1/ingest")
                assert proxy.response_held.wait(30)
            if fault == "stop":
                hq_process.stop()
            else:
                hq_process.kill()
            proxy.release()
            proxy.drop_all()
            hq_process.start()
            proxy.upstream = hq_process.address
        stop.set()
        thread.join()
        assert sender.wait_drained(120)
    finally:
        stop.set()
        sender.stop()
        proxy.close()
        writer.close()
    assert assert_exact(hq_process, gateway_db) > 100
