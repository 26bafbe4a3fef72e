-- 0009: the price catalog and the electronic shelf labels that show it.
-- A price row is the current price of a barcode, set by staff or HQ; a barcode
-- without one sells at its planogram price.
CREATE TABLE prices (
    barcode     TEXT PRIMARY KEY,
    price_minor INTEGER NOT NULL CHECK (price_minor >= 0),  -- integer minor units
    version     INTEGER NOT NULL DEFAULT 1,                 -- grows with every change
    updated_ms  INTEGER NOT NULL
) WITHOUT ROWID;

-- Which label shows which product (from the config), and its last answer to a
-- config command (what it shows is in its twin).
CREATE TABLE esl_labels (
    device_id   TEXT PRIMARY KEY,
    barcode     TEXT NOT NULL,
    name        TEXT NOT NULL,
    ack_ms      INTEGER,
    ack_ok      INTEGER,
    ack_detail  TEXT
) WITHOUT ROWID;
CREATE INDEX esl_labels_barcode ON esl_labels(barcode);
