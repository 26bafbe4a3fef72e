"""A store's health as HQ sees it.  HQ never says ``ok`` for a store it has not
heard from recently: no heartbeat yet is ``unknown``, a late one ``stale``."""

from __future__ import annotations

from cloud_sync.hq.db import FleetRow
from cloud_sync.wire import FleetStore, Health, SyncKindState

#: Default: a heartbeat older than this makes a store stale (the sender beats every 15 s).
STALE_AFTER_S = 60.0
#: Default: an outbox whose oldest unsent row is older than this is a degraded store.
BACKLOG_WARN_S = 300.0


def health(
    row: FleetRow,
    now_ms: int,
    stale_after_s: float,
    backlog_warn_s: float,
    sync: dict[str, SyncKindState] | None = None,
) -> tuple[Health, str]:
    if row.received_ms is None:
        return "unknown", "no heartbeat received yet"
    age_s = (now_ms - row.received_ms) / 1000
    if age_s > stale_after_s:
        return "stale", f"last heartbeat {age_s:.0f} s ago (stale after {stale_after_s:.0f} s)"
    oldest = row.oldest_unsent_age_s
    if oldest is not None and oldest > backlog_warn_s:
        return "degraded", f"{row.backlog_rows} rows not yet at HQ, the oldest {oldest:.0f} s old"
    offline = row.devices.get("offline", 0)
    if offline:
        return "degraded", f"{offline} device(s) offline"
    for kind, state in sorted((sync or {}).items()):
        if state.status in {"refused", "rolled_back"} and state.status_version == state.published:
            what = "refused" if state.status == "refused" else "rolled back"
            return "degraded", f"{kind} version {state.status_version} {what}: {state.reason}"
    if row.backlog_rows:
        return "ok", f"heartbeat on time, {row.backlog_rows} rows on their way (none late)"
    return "ok", "heartbeat on time, backlog drained"


def fleet_store(
    row: FleetRow,
    now_ms: int,
    stale_after_s: float,
    backlog_warn_s: float,
    sync: dict[str, SyncKindState] | None = None,
) -> FleetStore:
    status, reason = health(row, now_ms, stale_after_s, backlog_warn_s, sync)
    heard = row.received_ms is not None
    return FleetStore(
        store_id=row.store_id,
        name=row.name,
        health=status,
        health_reason=reason,
        last_heartbeat_ms=row.received_ms,
        heartbeat_age_s=None if row.received_ms is None else (now_ms - row.received_ms) / 1000,
        backlog_rows=row.backlog_rows,
        backlog_bytes=row.backlog_bytes,
        oldest_unsent_age_s=row.oldest_unsent_age_s,
        last_acked_seq=row.last_acked_seq,
        evicted_rows=row.evicted_rows,
        versions=row.versions,
        devices=row.devices,
        devices_online=row.devices.get("online", 0) if heard else None,
        devices_offline=row.devices.get("offline", 0) if heard else None,
        transactions=row.transactions,
        alerts_open=row.alerts_open,
        sync=sync or {},
    )
