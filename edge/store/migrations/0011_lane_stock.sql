-- 0011: stock per lane (the plates of one product on a shelf), estimated from weight.
-- tare_g is what the lane weighs with no units on it (trays, other products):
-- learned from the first settled weight and the planogram's stock, or from a staff count.
-- restock_at NULL: no alerts for this lane.
CREATE TABLE lane_stock (
    device_id     TEXT NOT NULL,
    barcode       TEXT NOT NULL,
    plates        TEXT NOT NULL,
    unit_weight_g REAL NOT NULL,
    planned_units INTEGER NOT NULL,
    restock_at    INTEGER,
    refilled_at   INTEGER,
    tare_g        REAL,
    level_g       REAL,
    units         INTEGER,
    updated_ms    INTEGER NOT NULL,
    PRIMARY KEY (device_id, barcode)
) WITHOUT ROWID;
