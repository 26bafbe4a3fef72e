-- 0005: device twins (desired and reported settings).
CREATE TABLE twins (
    device_id   TEXT PRIMARY KEY,
    desired     TEXT NOT NULL DEFAULT '{}',   -- JSON object
    reported    TEXT NOT NULL DEFAULT '{}',   -- JSON object
    version     INTEGER NOT NULL DEFAULT 0,   -- grows with every change of desired
    updated_ms  INTEGER NOT NULL
);
