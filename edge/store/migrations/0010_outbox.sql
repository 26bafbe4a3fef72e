-- 0010: the outbox (store-and-forward to HQ). A row is written in the same
-- transaction as the domain rows it reports; the sender marks it sent only
-- after HQ acknowledged its event id. Order is kept per stream by seq.
-- class: money (transactions, refunds: never evicted), state, telemetry
-- (evicted first when the disk budget is reached).
CREATE TABLE outbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id TEXT NOT NULL UNIQUE,
    stream TEXT NOT NULL,
    kind TEXT NOT NULL,
    class TEXT NOT NULL CHECK (class IN ('money', 'state', 'telemetry')),
    ts_ms INTEGER NOT NULL,
    created_ms INTEGER NOT NULL,
    payload TEXT NOT NULL,
    size_bytes INTEGER NOT NULL CHECK (size_bytes > 0),
    sent_ms INTEGER
);
CREATE INDEX outbox_unsent ON outbox (sent_ms, seq);
CREATE INDEX outbox_class ON outbox (class, sent_ms, seq);
-- Counters that survive restarts: bytes held, evicted rows and bytes, the
-- last acknowledged position.
CREATE TABLE outbox_counters (
    name TEXT PRIMARY KEY,
    value INTEGER NOT NULL
) WITHOUT ROWID;
