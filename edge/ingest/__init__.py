"""From raw MQTT messages to handler calls: decoding, dead letters, duplicate suppression."""
