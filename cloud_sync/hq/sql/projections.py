"""What an ingested event changes in HQ's read tables (transactions, stock, alerts, ...)."""

from __future__ import annotations

import json

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


def project(tx: Tx, store_id: str, event: OutboxEvent, now_ms: int) -> None:
    if event.kind == KIND_TRANSACTION:
        t = TransactionPayload.model_validate(event.payload)
        tx.execute(
            "INSERT INTO hq_transactions (store_id, event_id, receipt_id, session_token,"
            " currency, total_minor, issued_ms, line_count, lines, received_ms)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (store_id, event_id) DO NOTHING",
            (
                store_id,
                event.event_id,
                t.receipt_id,
                t.session_token,
                t.currency,
                t.total_minor,
                t.issued_ms,
                len(t.lines),
                json.dumps([line.model_dump() for line in t.lines]),
                now_ms,
            ),
        )
    elif event.kind == KIND_STOCK_LEVEL:
        s = StockLevelPayload.model_validate(event.payload)
        # A level is a snapshot: the newest one wins, whatever order they arrive in.
        tx.execute(
            "INSERT INTO hq_stock (store_id, barcode, name, quantity, low_threshold, ts_ms)"
            " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (store_id, barcode) DO UPDATE SET"
            " name = coalesce(excluded.name, hq_stock.name),"
            " quantity = excluded.quantity,"
            " low_threshold = coalesce(excluded.low_threshold, hq_stock.low_threshold),"
            " ts_ms = excluded.ts_ms WHERE excluded.ts_ms >= hq_stock.ts_ms",
            (store_id, s.barcode, s.name, s.quantity, s.low_threshold, event.ts_ms),
        )
    elif event.kind in (KIND_ADJUSTMENT, KIND_REFUND):
        a = AdjustmentPayload.model_validate(event.payload)
        tx.execute(
            "INSERT INTO hq_adjustments (store_id, event_id, kind, adjustment_id, receipt_id,"
            " barcode, quantity, amount_minor, currency, created_ms, received_ms)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (store_id, event_id) DO NOTHING",
            (
                store_id,
                event.event_id,
                event.kind,
                a.adjustment_id,
                a.receipt_id,
                a.barcode,
                a.quantity,
                a.amount_minor,
                a.currency,
                a.created_ms,
                now_ms,
            ),
        )
    elif event.kind == KIND_ALERT:
        al = AlertPayload.model_validate(event.payload)
        tx.execute(
            "INSERT INTO hq_alerts (store_id, alert_id, kind, state, device_id, plate,"
            " detail, raised_ms, ts_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (store_id, alert_id) DO UPDATE SET kind = excluded.kind,"
            " state = excluded.state, device_id = excluded.device_id,"
            " plate = excluded.plate, detail = excluded.detail,"
            " raised_ms = excluded.raised_ms, ts_ms = excluded.ts_ms"
            " WHERE excluded.ts_ms >= hq_alerts.ts_ms",
            (
                store_id,
                al.alert_id,
                al.kind,
                al.state,
                al.device_id,
                al.plate,
                json.dumps(al.detail, sort_keys=True),
                al.raised_ms,
                event.ts_ms,
            ),
        )
    elif event.kind == KIND_DEVICE_STATE:
        d = DeviceStatePayload.model_validate(event.payload)
        tx.execute(
            "INSERT INTO hq_devices (store_id, device_id, device_type, state, state_reason,"
            " state_ms) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (store_id, device_id)"
            " DO UPDATE SET device_type = coalesce(excluded.device_type,"
            " hq_devices.device_type), state = excluded.state,"
            " state_reason = excluded.state_reason, state_ms = excluded.state_ms"
            " WHERE hq_devices.state_ms IS NULL OR excluded.state_ms >= hq_devices.state_ms",
            (store_id, d.device_id, d.device_type, d.state, d.reason, event.ts_ms),
        )
    elif event.kind in (KIND_HEARTBEAT, KIND_TEMPERATURE):
        h = DeviceTelemetryPayload.model_validate(event.payload)
        if event.kind == KIND_HEARTBEAT:
            tx.execute(
                "INSERT INTO hq_devices (store_id, device_id, device_type, firmware,"
                " battery_pct, heartbeat_ms) VALUES (?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (store_id, device_id) DO UPDATE SET"
                " device_type = coalesce(excluded.device_type, hq_devices.device_type),"
                " firmware = excluded.firmware, battery_pct = excluded.battery_pct,"
                " heartbeat_ms = excluded.heartbeat_ms WHERE hq_devices.heartbeat_ms IS NULL"
                " OR excluded.heartbeat_ms >= hq_devices.heartbeat_ms",
                (store_id, h.device_id, h.device_type, h.firmware, h.battery_pct, event.ts_ms),
            )
    elif event.kind == KIND_SYNC_REPORT:
        r = SyncReportPayload.model_validate(event.payload)
        tx.execute(
            "INSERT INTO hq_sync_reports (store_id, kind, version, status, reason,"
            " running_version, ts_ms, received_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (store_id, kind, version) DO UPDATE SET status = excluded.status,"
            " reason = excluded.reason, running_version = excluded.running_version,"
            " ts_ms = excluded.ts_ms, received_ms = excluded.received_ms"
            " WHERE excluded.ts_ms >= hq_sync_reports.ts_ms",
            (
                store_id,
                r.kind,
                r.version,
                r.status,
                r.reason,
                r.running_version,
                event.ts_ms,
                now_ms,
            ),
        )
