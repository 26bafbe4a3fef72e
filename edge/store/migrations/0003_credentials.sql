-- 0003: the device registry's provisioning and MQTT credentials (hashes only).
CREATE TABLE credentials (
    username      TEXT PRIMARY KEY,
    device_id     TEXT NOT NULL,
    role          TEXT NOT NULL CHECK (role IN ('device', 'gateway')),
    password_hash TEXT NOT NULL,
    created_ms    INTEGER NOT NULL
);
ALTER TABLE devices ADD COLUMN store_id TEXT;
ALTER TABLE devices ADD COLUMN provisioned_ms INTEGER;
