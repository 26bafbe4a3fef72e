"""Device side of the wire: protocol, store layout and (later) registry, twins, OTA."""
