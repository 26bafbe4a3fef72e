-- 0012: the shopper side: check-ins (whose session is whose), disputes of receipt
-- lines, payments with their idempotency keys, and online orders picked in store.
CREATE TABLE checkins (
    session_token TEXT PRIMARY KEY,      -- the signed check-in token the entry gate reads
    shopper_id    TEXT NOT NULL,
    issued_ms     INTEGER NOT NULL,
    expires_ms    INTEGER NOT NULL,
    used_ms       INTEGER,               -- the entry gate accepted it (once only)
    gate          TEXT
);
CREATE INDEX checkins_shopper ON checkins(shopper_id, issued_ms);

CREATE TABLE disputes (
    dispute_id    TEXT PRIMARY KEY,
    receipt_id    TEXT NOT NULL REFERENCES receipts(receipt_id),
    line_no       INTEGER NOT NULL,
    shopper_id    TEXT NOT NULL,
    review_id     TEXT NOT NULL REFERENCES review_items(review_id),
    quantity      INTEGER NOT NULL CHECK (quantity > 0),
    reason        TEXT NOT NULL,
    created_ms    INTEGER NOT NULL,
    UNIQUE (receipt_id, line_no)         -- a line is disputed once
);

-- Every charge and refund; the idempotency key (receipt, adjustment or order id) is
-- sent to the provider too, so a retry never charges twice.
CREATE TABLE payments (
    payment_id      TEXT PRIMARY KEY,
    idempotency_key TEXT NOT NULL UNIQUE,
    kind            TEXT NOT NULL CHECK (kind IN ('charge', 'refund')),
    receipt_id      TEXT REFERENCES receipts(receipt_id),
    order_id        TEXT,
    shopper_id      TEXT NOT NULL,
    amount_minor    INTEGER NOT NULL CHECK (amount_minor > 0),
    currency        TEXT NOT NULL,
    status          TEXT NOT NULL CHECK (status IN ('pending', 'succeeded', 'declined')),
    provider        TEXT NOT NULL,
    provider_ref    TEXT,
    attempts        INTEGER NOT NULL DEFAULT 0,
    detail          TEXT NOT NULL DEFAULT '',
    created_ms      INTEGER NOT NULL,
    updated_ms      INTEGER NOT NULL
);
CREATE INDEX payments_status ON payments(status, created_ms);
CREATE INDEX payments_receipt ON payments(receipt_id);

CREATE TABLE orders (
    order_id      TEXT PRIMARY KEY,
    shopper_id    TEXT NOT NULL,
    client_ref    TEXT,                  -- the app's own key: placing twice is one order
    state         TEXT NOT NULL CHECK (state IN ('placed', 'ready', 'collected')),
    currency      TEXT NOT NULL,
    total_minor   INTEGER NOT NULL CHECK (total_minor >= 0),
    created_ms    INTEGER NOT NULL,
    ready_ms      INTEGER,
    collected_ms  INTEGER,
    ready_by      TEXT,
    route         TEXT NOT NULL,         -- JSON: the pick list in walking order
    UNIQUE (shopper_id, client_ref)
);
CREATE INDEX orders_state ON orders(state, created_ms);

CREATE TABLE order_lines (
    order_id         TEXT NOT NULL REFERENCES orders(order_id),
    line_no          INTEGER NOT NULL,
    barcode          TEXT NOT NULL,
    name             TEXT NOT NULL,
    quantity         INTEGER NOT NULL CHECK (quantity > 0),
    in_stock         INTEGER,            -- units the shelves held when it was placed
    unit_price_minor INTEGER NOT NULL CHECK (unit_price_minor >= 0),
    line_total_minor INTEGER NOT NULL CHECK (line_total_minor >= 0),
    PRIMARY KEY (order_id, line_no)
);
