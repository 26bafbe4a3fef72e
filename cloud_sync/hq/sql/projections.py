"""What an ingested event changes in HQ's read tables (transactions, stock, alerts, ...)."""

from __future__ import annotations

import json
from typing import Any

from cloud_sync.hq.sql.engines import Tx
from cloud_sync.wire import (
    KIND_ADJUSTMENT,
    KIND_ALERT,
    KIND_DEVICE_STATE,
    KIND_HEARTBEAT,
    KIND_REFUND,
    KIND_STOCK_LEVEL,
    KIND_SYNC_REPORT,
    KIND_TEMPERATURE,
    KIND_TRANSACTION,
    AdjustmentPayload,
    AlertPayload,
    DeviceStatePayload,
    DeviceTelemetryPayload,
    OutboxEvent,
    StockLevelPayload,
    SyncReportPayload,
    TransactionPayload,
)

#: Payload fields stored as the same-named columns of each read table.
_TRANSACTION = {"receipt_id", "session_token", "currency", "total_minor", "issued_ms"}
_STOCK = {"barcode", "name", "quantity", "low_threshold"}
_ADJUSTMENT = {
    "adjustment_id",
    "receipt_id",
    "barcode",
    "quantity",
    "amount_minor",
    "currency",
    "created_ms",
}
_ALERT = {"alert_id", "kind", "state", "device_id", "plate", "raised_ms"}
_HEARTBEAT = {"device_id", "device_type", "firmware", "battery_pct"}
_SYNC_REPORT = {"kind", "version", "status", "reason", "running_version"}


def _put(
    tx: Tx,
    table: str,
    row: dict[str, Any],
    key: tuple[str, ...],
    newer: str | None = None,
    keep: tuple[str, ...] = (),
) -> None:
    """Insert ``row``.  On a clash of ``key``: keep the stored row (``newer`` None), or,
    where the row's ``newer`` column is at least the stored one (a snapshot: the newest
    wins, whatever order they arrive in), take its other columns; a ``keep`` column
    only where the new value is not null."""
    sql = (
        f"INSERT INTO {table} ({', '.join(row)}) VALUES ({', '.join('?' * len(row))})"
        f" ON CONFLICT ({', '.join(key)})"
    )
    if newer is None:
        sql += " DO NOTHING"
    else:
        sets = ", ".join(
            f"{c} = coalesce(excluded.{c}, {table}.{c})" if c in keep else f"{c} = excluded.{c}"
            for c in row
            if c not in key
        )
        sql += (
            f" DO UPDATE SET {sets}"
            f" WHERE {table}.{newer} IS NULL OR excluded.{newer} >= {table}.{newer}"
        )
    tx.execute(sql, tuple(row.values()))


def project(tx: Tx, store_id: str, event: OutboxEvent, now_ms: int) -> None:
    """Write what ``event`` says into its read table (a column named as the payload's
    field holds its value); a payload that does not validate raises ``ValidationError``."""
    kind, payload, mine = event.kind, event.payload, {"store_id": store_id}
    if kind == KIND_TRANSACTION:
        t = TransactionPayload.model_validate(payload)
        row = {
            **mine,
            "event_id": event.event_id,
            **t.model_dump(include=_TRANSACTION),
            "line_count": len(t.lines),
            "lines": json.dumps([line.model_dump() for line in t.lines]),
            "received_ms": now_ms,
        }
        _put(tx, "hq_transactions", row, ("store_id", "event_id"))
    elif kind == KIND_STOCK_LEVEL:
        s = StockLevelPayload.model_validate(payload)
        row = {**mine, **s.model_dump(include=_STOCK), "ts_ms": event.ts_ms}
        keep = ("name", "low_threshold")
        _put(tx, "hq_stock", row, ("store_id", "barcode"), "ts_ms", keep)
    elif kind in (KIND_ADJUSTMENT, KIND_REFUND):
        a = AdjustmentPayload.model_validate(payload)
        row = {
            **mine,
            "event_id": event.event_id,
            "kind": kind,
            **a.model_dump(include=_ADJUSTMENT),
            "received_ms": now_ms,
        }
        _put(tx, "hq_adjustments", row, ("store_id", "event_id"))
    elif kind == KIND_ALERT:
        al = AlertPayload.model_validate(payload)
        row = {**mine, **al.model_dump(include=_ALERT)}
        row.update(detail=json.dumps(al.detail, sort_keys=True), ts_ms=event.ts_ms)
        _put(tx, "hq_alerts", row, ("store_id", "alert_id"), "ts_ms")
    elif kind == KIND_DEVICE_STATE:
        d = DeviceStatePayload.model_validate(payload)
        row = {**mine, **d.model_dump(include={"device_id", "device_type", "state"})}
        row.update(state_reason=d.reason, state_ms=event.ts_ms)
        _put(tx, "hq_devices", row, ("store_id", "device_id"), "state_ms", ("device_type",))
    elif kind == KIND_HEARTBEAT:
        h = DeviceTelemetryPayload.model_validate(payload)
        row = {**mine, **h.model_dump(include=_HEARTBEAT), "heartbeat_ms": event.ts_ms}
        _put(tx, "hq_devices", row, ("store_id", "device_id"), "heartbeat_ms", ("device_type",))
    elif kind == KIND_TEMPERATURE:
        DeviceTelemetryPayload.model_validate(payload)  # checked; kept in hq_events only
    elif kind == KIND_SYNC_REPORT:
        r = SyncReportPayload.model_validate(payload)
        row = {**mine, **r.model_dump(include=_SYNC_REPORT)}
        row.update(ts_ms=event.ts_ms, received_ms=now_ms)
        _put(tx, "hq_sync_reports", row, ("store_id", "kind", "version"), "ts_ms")
