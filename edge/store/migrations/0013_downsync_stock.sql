-- 0013: down-sync from HQ (what was sent, what runs) and the stock estimate per
-- product that HQ's stock view is fed from.
--
-- sync_state: per kind of document (catalog, planogram, prices, config) the
-- version that runs now (NULL: the local files') with its body, and the newest
-- version looked at (applied, refused or rolled back), so a refused one is not
-- fetched again.
CREATE TABLE sync_state (
    kind            TEXT PRIMARY KEY,
    running_version INTEGER,
    running_body    TEXT,
    seen_version    INTEGER NOT NULL,
    updated_ms      INTEGER NOT NULL
) WITHOUT ROWID;

-- Every outcome, as it was reported to HQ.
CREATE TABLE sync_history (
    id      INTEGER PRIMARY KEY AUTOINCREMENT,
    kind    TEXT NOT NULL,
    version INTEGER NOT NULL,
    status  TEXT NOT NULL CHECK (status IN ('applied', 'refused', 'rolled_back')),
    reason  TEXT NOT NULL,
    ts_ms   INTEGER NOT NULL
);

-- Units of each product in the store as last reported to HQ: the sum of its
-- lanes in lane_stock, and the sum of their restock thresholds.
CREATE TABLE stock_levels (
    barcode       TEXT PRIMARY KEY,
    name          TEXT NOT NULL,
    quantity      INTEGER NOT NULL CHECK (quantity >= 0),
    low_threshold INTEGER,
    updated_ms    INTEGER NOT NULL
) WITHOUT ROWID;
