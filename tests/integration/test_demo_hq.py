"""The demo against an HQ started separately, which is down for part of the run.

After the drain, HQ holds exactly the gateway's transactions: none missing,
none twice (HQ keeps one row per event id; the receipts are compared by id).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import urllib.request

from edge.mqtt.broker import free_port
from edge.store.repo import Store
from tests.integration.conftest import wait_for


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "edge.cli", *args]


def _start_hq(db, port: int, env: dict[str, str]) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        _cli("hq", "--db", str(db), "--port", str(port)),
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    wait_for(lambda: _answers(port), timeout=20, what="HQ to listen")
    return proc


def _answers(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1):
            return True
    except OSError:
        return False


def _hq_transactions(port: int, store_id: str, token: str) -> list[dict]:
    items: list[dict] = []
    while True:
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/api/v1/transactions?store_id={store_id}"
            f"&limit=100&offset={len(items)}",
            headers={"Authorization": f"Bearer {token}"},
        )
        with urllib.request.urlopen(request, timeout=5) as response:
            page = json.load(response)
        items += page["items"]
        if len(items) >= page["total"] or not page["items"]:
            return items


def _receipt_count(db) -> int:
    """Receipts the demo's gateway has issued (read from its database)."""
    store = Store.open(db, readonly=True)
    try:
        return store.receipt_count()
    finally:
        store.close()


def test_hq_down_for_part_of_a_demo_run_still_gets_every_transaction_once(tmp_path):
    admin = "test-admin-token"
    env = {**os.environ, "STOREEDGE_HQ_ADMIN_TOKEN": admin, "STOREEDGE_LOG_LEVEL": "WARNING"}
    hq_db, port, store_id = tmp_path / "hq.db", free_port(), "store-hq-test"
    added = subprocess.run(
        _cli("hq", "stores", "add", "--db", str(hq_db), "--id", store_id, "--json"),
        capture_output=True,
        text=True,
        check=True,
        env=env,
        timeout=60,
    )
    key = json.loads(added.stdout)["api_key"]
    hq = _start_hq(hq_db, port, env)
    demo = subprocess.Popen(
        _cli(
            "demo",
            "--duration",
            "30",
            "--json",
            "--api-port",
            str(free_port()),
            "--mqtt-port",
            "0",
            "--hq-url",
            f"http://127.0.0.1:{port}",
            "--store-id",
            store_id,
            "--drain",
            "30",
            "--data-dir",
            str(tmp_path / "gw"),
        ),
        env={**env, "STOREEDGE_HQ_STORE_KEY": key},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    gw_db = tmp_path / "gw" / "gateway.db"
    try:
        wait_for(
            lambda: _hq_transactions(port, store_id, admin),
            timeout=60,
            what="HQ to hold the store's first transaction",
        )
        hq.send_signal(signal.SIGKILL)  # HQ gone without warning ...
        hq.wait(timeout=10)
        issued = _receipt_count(gw_db)
        wait_for(  # ... while shoppers keep leaving
            lambda: _receipt_count(gw_db) >= issued + 2,
            timeout=60,
            what="two receipts issued while HQ is down",
        )
        hq = _start_hq(hq_db, port, env)
        out, err = demo.communicate(timeout=150)
    finally:
        demo.kill()
        hq.terminate()
        hq.wait(timeout=10)
    assert demo.returncode == 0, err[-3000:]
    lines = [json.loads(line) for line in out.splitlines() if line.strip()]
    summary = lines[-1]
    receipts = {ln["receipt_id"] for ln in lines if ln["type"] == "receipt"}
    assert summary["transactions"] == len(receipts) >= 3
    assert summary["outbox_unsent"] == 0
    hq = _start_hq(hq_db, port, env)
    try:
        held = _hq_transactions(port, store_id, admin)
    finally:
        hq.terminate()
        hq.wait(timeout=10)
    assert len(held) == summary["transactions"]  # none missing, none twice
    assert {t["receipt_id"] for t in held} == receipts
    assert len({t["event_id"] for t in held}) == len(held)
