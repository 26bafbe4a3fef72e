-- 0004: device health from heartbeats.
ALTER TABLE devices ADD COLUMN uptime_s REAL;
ALTER TABLE devices ADD COLUMN battery_pct REAL;
ALTER TABLE devices ADD COLUMN rssi_dbm INTEGER;
ALTER TABLE devices ADD COLUMN last_heartbeat_ms INTEGER;
ALTER TABLE devices ADD COLUMN offline_reason TEXT;
