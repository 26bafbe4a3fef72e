-- 0006: fridge and freezer temperatures (the cold-chain log kept for inspection).
CREATE TABLE temperature_log (
    device_id TEXT NOT NULL,
    ts_ms INTEGER NOT NULL,
    celsius REAL NOT NULL,
    door_open INTEGER,
    PRIMARY KEY (device_id, ts_ms)
) WITHOUT ROWID;
