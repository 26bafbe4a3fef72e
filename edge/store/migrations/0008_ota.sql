-- 0008: OTA firmware updates (signed images, staged rollouts, per-device progress).
CREATE TABLE ota_images (
    device_type   TEXT NOT NULL,
    version       TEXT NOT NULL,
    sha256        TEXT NOT NULL,
    size          INTEGER NOT NULL,
    manifest      TEXT NOT NULL,              -- JSON of the signed manifest
    image         BLOB NOT NULL,
    registered_ms INTEGER NOT NULL,
    PRIMARY KEY (device_type, version)
);
CREATE TABLE ota_rollouts (
    rollout_id   TEXT PRIMARY KEY,
    device_type  TEXT NOT NULL,
    version      TEXT NOT NULL,
    state        TEXT NOT NULL,               -- canary, rolling, done, halted
    reason       TEXT,                        -- why it halted
    canary_share REAL NOT NULL,
    created_ms   INTEGER NOT NULL,
    updated_ms   INTEGER NOT NULL,
    FOREIGN KEY (device_type, version) REFERENCES ota_images (device_type, version)
);
-- state: pending, offered, installing, booted, verifying, confirmed, failed, rolled_back
CREATE TABLE ota_rollout_devices (
    rollout_id      TEXT NOT NULL REFERENCES ota_rollouts (rollout_id),
    device_id       TEXT NOT NULL,
    wave            TEXT NOT NULL,            -- canary, rest
    position        INTEGER NOT NULL,         -- offer order within the rollout
    state           TEXT NOT NULL,
    from_version    TEXT,
    detail          TEXT NOT NULL DEFAULT '',
    since_ms        INTEGER NOT NULL,         -- when it entered its state
    booted_ms       INTEGER,                  -- when it came back on the new version
    confirm_sent_ms INTEGER,                  -- when the gateway asked it to keep it
    PRIMARY KEY (rollout_id, device_id)
);
CREATE INDEX ota_rollout_devices_by_device ON ota_rollout_devices (device_id, state);
