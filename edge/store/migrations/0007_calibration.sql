-- 0007: load-cell calibration factors per plate, and the generic alerts table.
CREATE TABLE plate_calibration (
    device_id   TEXT NOT NULL,
    plate       INTEGER NOT NULL,
    tare_raw    REAL NOT NULL,              -- raw reading of the empty plate
    span        REAL NOT NULL,              -- grams per raw unit
    updated_ms  INTEGER NOT NULL,
    PRIMARY KEY (device_id, plate)
) WITHOUT ROWID;

CREATE TABLE alerts (
    alert_id    TEXT PRIMARY KEY,           -- ULID
    kind        TEXT NOT NULL,              -- maintenance, restock, cold_chain, ...
    device_id   TEXT NOT NULL,
    plate       INTEGER,                    -- NULL where the alert is about a whole device
    state       TEXT NOT NULL CHECK (state IN ('open', 'acked', 'resolved')),
    raised_ms   INTEGER NOT NULL,
    acked_ms    INTEGER,
    resolved_ms INTEGER,
    detail      TEXT NOT NULL DEFAULT '{}'  -- JSON object
);

-- At most one alert that is not resolved per (kind, device, plate); -1 stands for "no plate".
CREATE UNIQUE INDEX alerts_one_active
    ON alerts (kind, device_id, COALESCE(plate, -1))
    WHERE state != 'resolved';

CREATE INDEX alerts_by_state ON alerts (state, raised_ms);
