-- 0002: the review queue, and adjustments to receipts already issued.
CREATE TABLE review_items (
    review_id     TEXT PRIMARY KEY,
    created_ms    INTEGER NOT NULL,
    device_id     TEXT NOT NULL,
    reason        TEXT NOT NULL,
    delta_g       REAL NOT NULL,
    session_token TEXT,            -- the shopper, when the doubt is about the product
    body          TEXT NOT NULL,   -- plates, candidates, ranked shoppers (JSON)
    status        TEXT NOT NULL DEFAULT 'open'
                  CHECK (status IN ('open', 'resolved', 'dismissed')),
    resolved_ms   INTEGER,
    resolved_by   TEXT,
    resolution    TEXT             -- JSON: barcode, quantity, session_token
);
CREATE INDEX review_status ON review_items(status, created_ms);

CREATE TABLE receipt_adjustments (
    adjustment_id    TEXT PRIMARY KEY,
    receipt_id       TEXT NOT NULL REFERENCES receipts(receipt_id),
    review_id        TEXT REFERENCES review_items(review_id),
    barcode          TEXT NOT NULL,
    name             TEXT NOT NULL,
    quantity         INTEGER NOT NULL,   -- > 0 charged extra, < 0 refunded
    unit_price_minor INTEGER NOT NULL CHECK (unit_price_minor >= 0),
    amount_minor     INTEGER NOT NULL,   -- quantity * unit price, signed
    created_ms       INTEGER NOT NULL
);
CREATE INDEX adjustments_receipt ON receipt_adjustments(receipt_id);
