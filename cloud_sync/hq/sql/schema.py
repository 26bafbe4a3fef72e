"""HQ's tables (portable SQL: SQLite and PostgreSQL)."""

from __future__ import annotations

SCHEMA = (
    """CREATE TABLE IF NOT EXISTS hq_stores (
        store_id TEXT PRIMARY KEY,
        name TEXT,
        key_hash TEXT NOT NULL UNIQUE,
        created_ms BIGINT NOT NULL
    )""",
    """CREATE TABLE IF NOT EXISTS hq_events (
        store_id TEXT NOT NULL,
        event_id TEXT NOT NULL,
        stream TEXT NOT NULL,
        kind TEXT NOT NULL,
        seq BIGINT NOT NULL,
        ts_ms BIGINT NOT NULL,
        created_ms BIGINT NOT NULL,
        received_ms BIGINT NOT NULL,
        payload TEXT NOT NULL,
        PRIMARY KEY (store_id, event_id)
    )""",
    "CREATE INDEX IF NOT EXISTS hq_events_stream ON hq_events (store_id, stream, seq)",
    """CREATE TABLE IF NOT EXISTS hq_transactions (
        store_id TEXT NOT NULL,
        event_id TEXT NOT NULL,
        receipt_id TEXT NOT NULL,
        session_token TEXT NOT NULL,
        currency TEXT NOT NULL,
        total_minor BIGINT NOT NULL,
        issued_ms BIGINT NOT NULL,
        line_count INTEGER NOT NULL,
        lines TEXT NOT NULL,
        received_ms BIGINT NOT NULL,
        PRIMARY KEY (store_id, event_id)
    )""",
    "CREATE INDEX IF NOT EXISTS hq_transactions_order"
    " ON hq_transactions (store_id, issued_ms, event_id)",
    "CREATE INDEX IF NOT EXISTS hq_transactions_all ON hq_transactions (issued_ms, event_id)",
    """CREATE TABLE IF NOT EXISTS hq_rejected (
        store_id TEXT NOT NULL,
        event_id TEXT NOT NULL,
        kind TEXT NOT NULL,
        reason TEXT NOT NULL,
        received_ms BIGINT NOT NULL,
        PRIMARY KEY (store_id, event_id)
    )""",
    """CREATE TABLE IF NOT EXISTS hq_gateways (
        store_id TEXT PRIMARY KEY,
        received_ms BIGINT NOT NULL,
        sent_ms BIGINT NOT NULL,
        backlog_rows BIGINT NOT NULL,
        backlog_bytes BIGINT NOT NULL,
        oldest_unsent_age_s DOUBLE PRECISION,
        last_acked_seq BIGINT,
        evicted_rows BIGINT NOT NULL,
        versions TEXT NOT NULL,
        devices TEXT NOT NULL
    )""",
    """CREATE TABLE IF NOT EXISTS hq_stock (
        store_id TEXT NOT NULL,
        barcode TEXT NOT NULL,
        name TEXT,
        quantity BIGINT NOT NULL,
        low_threshold BIGINT,
        ts_ms BIGINT NOT NULL,
        PRIMARY KEY (store_id, barcode)
    )""",
    "CREATE INDEX IF NOT EXISTS hq_stock_barcode ON hq_stock (barcode)",
    # Money after the receipt: extra charges and refunds decided in review.
    """CREATE TABLE IF NOT EXISTS hq_adjustments (
        store_id TEXT NOT NULL,
        event_id TEXT NOT NULL,
        kind TEXT NOT NULL,
        adjustment_id TEXT NOT NULL,
        receipt_id TEXT NOT NULL,
        barcode TEXT NOT NULL,
        quantity BIGINT NOT NULL,
        amount_minor BIGINT NOT NULL,
        currency TEXT NOT NULL,
        created_ms BIGINT NOT NULL,
        received_ms BIGINT NOT NULL,
        PRIMARY KEY (store_id, event_id)
    )""",
    "CREATE INDEX IF NOT EXISTS hq_adjustments_receipt ON hq_adjustments (store_id, receipt_id)",
    # Each store's alerts as last reported (the newest report wins).
    """CREATE TABLE IF NOT EXISTS hq_alerts (
        store_id TEXT NOT NULL,
        alert_id TEXT NOT NULL,
        kind TEXT NOT NULL,
        state TEXT NOT NULL,
        device_id TEXT,
        plate BIGINT,
        detail TEXT NOT NULL,
        raised_ms BIGINT NOT NULL,
        ts_ms BIGINT NOT NULL,
        PRIMARY KEY (store_id, alert_id)
    )""",
    "CREATE INDEX IF NOT EXISTS hq_alerts_state ON hq_alerts (store_id, state)",
    # Each store's devices: state changes and heartbeats (the newest of each wins).
    """CREATE TABLE IF NOT EXISTS hq_devices (
        store_id TEXT NOT NULL,
        device_id TEXT NOT NULL,
        device_type TEXT,
        state TEXT,
        state_reason TEXT,
        state_ms BIGINT,
        firmware TEXT,
        battery_pct DOUBLE PRECISION,
        heartbeat_ms BIGINT,
        PRIMARY KEY (store_id, device_id)
    )""",
    # Down-sync: versioned documents for every store ('*') or one, and what each
    # store did with them.
    """CREATE TABLE IF NOT EXISTS hq_documents (
        kind TEXT NOT NULL,
        version BIGINT NOT NULL,
        scope TEXT NOT NULL,
        body TEXT NOT NULL,
        note TEXT,
        published_ms BIGINT NOT NULL,
        PRIMARY KEY (kind, version)
    )""",
    "CREATE INDEX IF NOT EXISTS hq_documents_scope ON hq_documents (kind, scope, version)",
    """CREATE TABLE IF NOT EXISTS hq_sync_reports (
        store_id TEXT NOT NULL,
        kind TEXT NOT NULL,
        version BIGINT NOT NULL,
        status TEXT NOT NULL,
        reason TEXT NOT NULL,
        running_version BIGINT,
        ts_ms BIGINT NOT NULL,
        received_ms BIGINT NOT NULL,
        PRIMARY KEY (store_id, kind, version)
    )""",
)
