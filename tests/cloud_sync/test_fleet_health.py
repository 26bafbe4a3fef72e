"""A store's health line: never ok unheard, stale when late, honest about its backlog."""

from __future__ import annotations

from dataclasses import replace

from cloud_sync.hq.db import FleetRow
from cloud_sync.hq.fleet import health

ROW = FleetRow(
    store_id="s-1",
    name=None,
    received_ms=100_000,
    sent_ms=100_000,
    backlog_rows=0,
    backlog_bytes=0,
    oldest_unsent_age_s=None,
    last_acked_seq=10,
    evicted_rows=0,
    versions={},
    devices={"online": 3},
    transactions=1,
)


def _health(row: FleetRow, now_ms: int = 110_000) -> tuple[str, str]:
    return health(row, now_ms, stale_after_s=60, backlog_warn_s=300)


def test_health_lines():
    assert _health(replace(ROW, received_ms=None))[0] == "unknown"
    assert _health(ROW, now_ms=200_000)[0] == "stale"
    assert _health(ROW) == ("ok", "heartbeat on time, backlog drained")
    moving = replace(ROW, backlog_rows=11, oldest_unsent_age_s=0.5)
    assert _health(moving) == ("ok", "heartbeat on time, 11 rows on their way (none late)")
    late = replace(ROW, backlog_rows=11, oldest_unsent_age_s=400)
    assert _health(late)[0] == "degraded"
    assert _health(replace(ROW, devices={"online": 2, "offline": 1}))[0] == "degraded"
