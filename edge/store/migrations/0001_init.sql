-- 0001: the walking skeleton's tables.
CREATE TABLE devices (
    device_id     TEXT PRIMARY KEY,
    device_type   TEXT NOT NULL,
    firmware      TEXT,
    birth_count   INTEGER NOT NULL DEFAULT 0,
    state         TEXT NOT NULL DEFAULT 'unknown',
    last_seq      INTEGER,
    last_seen_ms  INTEGER,
    seq_gaps      INTEGER NOT NULL DEFAULT 0,
    duplicates    INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE sessions (
    token         TEXT PRIMARY KEY,
    state         TEXT NOT NULL CHECK (state IN ('open', 'closed')),
    entered_ms    INTEGER NOT NULL,
    exited_ms     INTEGER,
    entry_gate    TEXT NOT NULL,
    exit_gate     TEXT
);

CREATE TABLE cart_lines (
    session_token TEXT NOT NULL REFERENCES sessions(token),
    barcode       TEXT NOT NULL,
    quantity      INTEGER NOT NULL,
    PRIMARY KEY (session_token, barcode)
);

CREATE TABLE receipts (
    receipt_id    TEXT PRIMARY KEY,
    session_token TEXT NOT NULL UNIQUE REFERENCES sessions(token),
    currency      TEXT NOT NULL,
    total_minor   INTEGER NOT NULL CHECK (total_minor >= 0),
    issued_ms     INTEGER NOT NULL
);

CREATE TABLE receipt_lines (
    receipt_id       TEXT NOT NULL REFERENCES receipts(receipt_id),
    line_no          INTEGER NOT NULL,
    barcode          TEXT NOT NULL,
    name             TEXT NOT NULL,
    quantity         INTEGER NOT NULL CHECK (quantity > 0),
    unit_price_minor INTEGER NOT NULL CHECK (unit_price_minor >= 0),
    line_total_minor INTEGER NOT NULL CHECK (line_total_minor >= 0),
    PRIMARY KEY (receipt_id, line_no)
);

-- Everything the checkout engine decided, in order: weight events, cart changes, gates.
CREATE TABLE events (
    event_id      TEXT PRIMARY KEY,
    ts_ms         INTEGER NOT NULL,
    kind          TEXT NOT NULL,
    device_id     TEXT,
    session_token TEXT,
    body          TEXT NOT NULL
);
CREATE INDEX events_session ON events(session_token);

CREATE TABLE dead_letters (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    received_ms   INTEGER NOT NULL,
    topic         TEXT NOT NULL,
    payload       BLOB NOT NULL,
    reason        TEXT NOT NULL
);
