"""`storeedge demo` as a user runs it: a subprocess, embedded broker, JSON lines out."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request

from edge.mqtt.broker import free_port


def _demo_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "edge.cli", "demo", *args]


def test_demo_json_every_receipt_matches_the_ground_truth(tmp_path):
    api_port = free_port()
    proc = subprocess.run(
        _demo_cmd("--duration", "20", "--json", "--api-port", str(api_port), "--mqtt-port", "0"),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, "STOREEDGE_LOG_LEVEL": "WARNING"},
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = [json.loads(line) for line in proc.stdout.splitlines() if line.strip()]
    assert [ln["type"] for ln in lines[:2]] == ["hq", "started"]  # a local HQ by default
    summary = lines[-1]
    assert summary["type"] == "summary"
    receipts = [ln for ln in lines if ln["type"] == "receipt"]
    assert summary["receipts"] == len(receipts) >= 2
    assert summary["shoppers"] == len(receipts)
    assert all(r["correct"] for r in receipts), receipts
    assert summary["receipts_correct"] == summary["receipts"]
    assert summary["dead_letters"] == 0
    # Every transaction reached the demo's own HQ, and the outbox drained.
    assert summary["transactions"] == summary["receipts"]
    assert summary["hq_transactions"] == summary["transactions"]
    assert summary["outbox_unsent"] == 0
    assert summary["charged"] == summary["receipts"] - sum(
        1 for r in receipts if r["total_minor"] == 0
    )  # every receipt above zero was charged to the shopper's card, once
    for r in receipts:
        assert r["total_minor"] == sum(ln["line_total_minor"] for ln in r["lines"])
        assert isinstance(r["total_minor"], int)
    assert "Traceback" not in proc.stderr


def test_demo_serves_the_api_and_stops_cleanly_on_sigterm(tmp_path):
    api_port = free_port()
    proc = subprocess.Popen(
        _demo_cmd(
            "--json", "--api-port", str(api_port), "--mqtt-port", "0", "--data-dir", str(tmp_path)
        ),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        hq = json.loads(proc.stdout.readline())
        assert hq["type"] == "hq"
        assert hq["fleet"].startswith("http://127.0.0.1:")
        started = json.loads(proc.stdout.readline())
        assert started["api"] == f"http://127.0.0.1:{api_port}"
        deadline = time.monotonic() + 30
        health = None
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"{started['api']}/healthz", timeout=2) as resp:
                    health = json.load(resp)
                break
            except OSError:
                time.sleep(0.2)
        assert health is not None
        assert health["status"] == "ok"
        devices: dict = {"total": 0}
        deadline = time.monotonic() + 20
        while devices["total"] < 5 and time.monotonic() < deadline:
            time.sleep(0.3)
            request = urllib.request.Request(
                f"{started['api']}/api/v1/devices",
                headers={"Authorization": f"Bearer {started['staff_token']}"},
            )
            with urllib.request.urlopen(request, timeout=2) as resp:
                devices = json.load(resp)
        assert {d["device_id"] for d in devices["items"]} >= {"shelf-1", "gate-exit"}
        with urllib.request.urlopen(f"{started['api']}/", timeout=2) as resp:
            assert b"storeedge" in resp.read()
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err[-3000:]
    assert json.loads(out.splitlines()[-1])["type"] == "summary"
    assert "Traceback" not in err
    assert (tmp_path / "gateway.db").exists()
