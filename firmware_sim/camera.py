"""Cameras on the wire: a simulated camera that publishes JPEG frames of a recording, and
the camera tracker device that publishes shopper floor positions (``telemetry/positions``)
for the gateway's shopper association.

Both are :class:`~firmware_sim.device.SimDevice` s (birth, state, last will, commands);
topics and payloads come from :mod:`devices.protocol`.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import cv2
from paho.mqtt.enums import MQTTErrorCode

from devices.protocol import (
    DeviceType,
    Positions,
    TrackPosition,
    camera_frame_topic,
    encode_camera_frame,
    positions_topic,
)
from firmware_sim.device import SimDevice, now_ms

logger = logging.getLogger(__name__)


class CameraTracker(SimDevice):
    """Publishes the floor positions of a camera's tracks, one message per frame."""

    def __init__(
        self,
        store_id: str,
        device_id: str,
        host: str,
        port: int,
        *,
        username: str | None = None,
        password: str | None = None,
    ) -> None:
        super().__init__(
            store_id,
            device_id,
            host,
            port,
            device_type=DeviceType.CAMERA,
            username=username,
            password=password,
        )
        self.sent = 0

    def publish_positions(self, tracks: Sequence[TrackPosition], ts_ms: int | None = None) -> None:
        message = Positions(
            seq=self.next_seq(), ts=ts_ms if ts_ms is not None else now_ms(), positions=list(tracks)
        )
        self.publish(positions_topic(self.store_id, self.device_id), message, qos=0)
        self.sent += 1


class SimCamera(SimDevice):
    """Publishes a recording's frames as JPEG over MQTT at its frame rate (or ``fps``)."""

    def __init__(
        self,
        store_id: str,
        device_id: str,
        host: str,
        port: int,
        video: Path,
        *,
        fps: float | None = None,
        loop: bool = False,
        jpeg_quality: int = 80,
        username: str | None = None,
        password: str | None = None,
    ) -> None:
        super().__init__(
            store_id,
            device_id,
            host,
            port,
            device_type=DeviceType.CAMERA,
            username=username,
            password=password,
        )
        self.video = video
        self.fps = fps
        self.loop = loop
        self.jpeg_quality = jpeg_quality
        #: Frames handed to the MQTT client; those lost to a dropped link do not count.
        self.sent = 0
        self.finished = threading.Event()
        self._halt_frames = threading.Event()
        self._frames = threading.Thread(target=self._run, name=f"{device_id}-frames", daemon=True)

    def start(self, timeout: float = 10.0) -> None:
        super().start(timeout)
        self._frames.start()

    def stop(self) -> None:
        self._halt_frames.set()
        self._frames.join(timeout=5)
        super().stop()

    def _run(self) -> None:
        topic = camera_frame_topic(self.store_id, self.device_id)
        while not self._halt_frames.is_set():
            cap = cv2.VideoCapture(str(self.video))
            if not cap.isOpened():
                logger.error("camera %s: cannot open %s", self.device_id, self.video)
                break
            rate = self.fps or cap.get(cv2.CAP_PROP_FPS) or 10.0
            period = 1.0 / rate
            next_t = time.monotonic()
            while not self._halt_frames.is_set():
                ok, image = cap.read()
                if not ok:
                    break
                ok, jpeg = cv2.imencode(
                    ".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, self.jpeg_quality]
                )
                if ok and self.connected:
                    payload = encode_camera_frame(self.next_seq(), now_ms(), jpeg.tobytes())
                    info = self.publish_bytes(topic, payload, qos=0)
                    if info.rc == MQTTErrorCode.MQTT_ERR_SUCCESS:
                        self.sent += 1
                next_t += period
                self._halt_frames.wait(max(0.0, next_t - time.monotonic()))
            cap.release()
            if not self.loop:
                break
        self.finished.set()
