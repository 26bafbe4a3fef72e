"""Cameras to typed detections and tracks (issue 6). No MQTT, no SQL here."""
