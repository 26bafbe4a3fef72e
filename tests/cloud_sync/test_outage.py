"""Proof: a day-long HQ outage, time-compressed, with a small disk budget.

A day of store traffic (receipts, review refunds, device heartbeats, fridge
readings, device state changes, alerts), stamped with fake times across 24 hours,
is written through the gateway's own store methods while HQ is unreachable and
the real sender keeps trying.  Then HQ comes up and the outbox drains:

* every money row (transactions, refunds) arrives, exactly once;
* the outbox never held more than its budget (money alone stays under it here);
* evictions were counted, and every telemetry row either reached HQ or is
  counted as evicted: nothing vanished unaccounted.

The default suite runs a light day (a few seconds); ``-m slow`` a busy one.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from cloud_sync.hq.auth import hash_key, new_api_key
from cloud_sync.hq.server import HqServer
from cloud_sync.sender import Sender, SenderConfig
from edge.store.repo import ReceiptRow, Store
from tests.cloud_sync.helpers import ADMIN, free_port, hq_transactions
from tests.integration.conftest import wait_for

STORE = "s-outage"
DAY_MS = 24 * 3600 * 1000
T0 = 1_700_000_000_000


@dataclass(frozen=True)
class Traffic:
    receipt_every_s: int
    devices: int
    heartbeat_every_s: int
    fridges: int
    reading_every_s: int
    state_every_s: int
    budget_bytes: int


@dataclass
class Written:
    receipts: list[str]
    refunds: list[str]
    telemetry: int = 0
    max_held: int = 0


def write_day(store: Store, traffic: Traffic) -> Written:
    """24 hours of traffic with fake timestamps, in time order, through the store's
    own methods (each domain row with its outbox row in one transaction)."""
    out = Written([], [])
    health = {"uptime_s": 0, "firmware": "1.4.2", "battery_pct": 77.5, "rssi_dbm": -61}
    budget = traffic.budget_bytes
    alert_id = None
    for second in range(0, DAY_MS // 1000, 60):  # minute by minute
        ts = T0 + second * 1000
        if second % traffic.heartbeat_every_s == 0:
            for d in range(traffic.devices):
                store.record_heartbeat(
                    f"shelf-{d}", "shelf", ts + d, {**health, "uptime_s": second}
                )
                out.telemetry += 1
        if second % traffic.reading_every_s == 0:
            for f in range(traffic.fridges):
                store.record_temperature(f"fridge-{f}", ts + f, 3.5 + (second % 7) / 10, False)
                out.telemetry += 1
        if second % traffic.state_every_s == 0:
            state = "offline" if (second // traffic.state_every_s) % 2 else "online"
            store.record_state("gate-in", "gate", state, ts, "said offline")
        if second % traffic.receipt_every_s == 0:
            token = f"tok-{second}"
            store.open_session(token, "gate-in", ts)
            lines = [ReceiptRow("4000417025005", "mineral water", 1 + second % 3, 119)]
            out.receipts.append(store.close_with_receipt(token, "gate-out", ts + 1, "EUR", lines))
            if len(out.receipts) % 50 == 0:  # now and then a refund after review
                review = store.add_review("shelf-0", ts + 2, {"delta_g": 700.0}, "unsure", token)
                decision = {"barcode": "4000417025005", "quantity": 1, "session_token": token}
                out.refunds.append(
                    store.resolve_review_into_receipt(
                        review, ts + 3, "staff", decision, -1, "mineral water", 119
                    )
                )
        if second % (6 * 3600) == 0:  # a cold-chain alert four times a day
            if alert_id is None:
                alert, _ = store.open_alert("cold_chain", "fridge-0", None, {"c": 9.0}, ts)
                alert_id = alert["alert_id"]
            else:
                store.resolve_alert("cold_chain", "fridge-0", None, ts)
                alert_id = None
        held = store.outbox_counters().get("held_bytes", 0)
        out.max_held = max(out.max_held, held)
        assert held <= budget, f"outbox at {held} bytes, over its budget of {budget}"
    return out


def run_outage(tmp_path: Path, traffic: Traffic) -> None:
    port = free_port()  # HQ will listen here; nothing does during the outage
    key = new_api_key()
    store = Store.open(tmp_path / "gateway.db")
    store.set_outbox_budget(traffic.budget_bytes)
    sender_store = Store.open(tmp_path / "gateway.db")  # the sender's own connection
    sender_store.set_outbox_budget(traffic.budget_bytes)
    config = SenderConfig(
        hq_url=f"http://127.0.0.1:{port}",
        store_id=STORE,
        api_key=key,
        batch_max_rows=1000,
        batch_max_age_s=0.0,
        poll_s=0.05,
        heartbeat_s=0.2,
        backoff_base_s=0.05,
        backoff_max_s=0.5,
        maintain_s=0.5,
        request_timeout_s=5,
    )
    sender = Sender(sender_store, config)
    sender.start()
    hq: HqServer | None = None
    try:
        written = write_day(store, traffic)
        assert sender.stats.events_acked == 0
        assert sender.stats.failures > 0
        counters = store.outbox_counters()
        assert counters["evicted_telemetry"] > 0, "the budget should have evicted telemetry"
        assert counters.get("evicted_money", 0) == 0
        backlog = store.outbox_backlog()
        assert backlog.rows > 0
        assert backlog.oldest_unsent_age_s is not None
        held = int(
            store.db.execute("SELECT coalesce(sum(size_bytes), 0) FROM outbox").fetchone()[0]
        )
        assert held == counters["held_bytes"] <= traffic.budget_bytes  # the counter tells true

        hq = HqServer(tmp_path / "hq.db", port=port, admin_token=ADMIN)
        hq.db.add_store(STORE, "outage store", hash_key(key), 0)
        hq.start()
        sender.flush()
        assert sender.wait_drained(120), "the outbox did not drain"

        # every money row arrived, exactly once
        items, total = hq_transactions(hq.url, STORE)
        ids = [str(i["receipt_id"]) for i in items]
        assert total == len(ids) == len(set(ids)) == len(written.receipts)
        assert sorted(ids) == sorted(written.receipts)
        with httpx.Client(base_url=hq.url, headers={"Authorization": f"Bearer {ADMIN}"}) as c:
            adjustments = c.get("/api/v1/adjustments", params={"store_id": STORE}).json()["items"]
            refunds = [a["adjustment_id"] for a in adjustments]
            assert sorted(refunds) == sorted(written.refunds)
            assert len(set(refunds)) == len(refunds)
            # telemetry: every row reached HQ or was counted evicted
            counters = store.outbox_counters()
            at_hq = hq.db.event_count(STORE, "heartbeat") + hq.db.event_count(STORE, "temperature")
            assert at_hq + counters["evicted_telemetry"] == written.telemetry
            assert at_hq > 0

            def fleet_evicted() -> int | None:
                [s] = c.get("/api/v1/fleet").json()["stores"]
                return s["evicted_rows"]

            wait_for(
                lambda: fleet_evicted() == counters["evicted_rows"],
                what="HQ's fleet view to count the evictions",
            )
            assert fleet_evicted() == counters["evicted_rows"] > 0  # HQ sees the evictions
        assert written.max_held <= traffic.budget_bytes
    finally:
        sender.stop()
        store.close()
        sender_store.close()
        if hq is not None:
            hq.stop()


def test_a_day_offline_on_a_small_budget_loses_no_money(tmp_path):
    run_outage(
        tmp_path,
        Traffic(
            receipt_every_s=180,  # 480 receipts and 9 refunds
            devices=6,
            heartbeat_every_s=120,  # 4,320 heartbeats
            fridges=2,
            reading_every_s=120,  # 1,440 readings
            state_every_s=900,
            budget_bytes=512 * 1024,
        ),
    )


@pytest.mark.slow
def test_a_busy_day_offline_on_a_small_budget_loses_no_money(tmp_path):
    run_outage(
        tmp_path,
        Traffic(
            receipt_every_s=60,  # 1,440 receipts
            devices=30,
            heartbeat_every_s=60,  # 43,200 heartbeats
            fridges=4,
            reading_every_s=60,  # 5,760 readings
            state_every_s=300,
            budget_bytes=2 * 1024 * 1024,
        ),
    )
