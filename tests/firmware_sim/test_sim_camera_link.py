"""Raw payloads and camera frames through ``SimDevice.publish_bytes``: a cut link loses
them, a restored one sends again (real Mosquitto, a plain paho subscriber)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode

from devices.protocol import DeviceType, camera_frame_topic, decode_camera_frame
from firmware_sim.camera import SimCamera
from firmware_sim.device import SimDevice
from tests.integration.conftest import wait_for
from tests.vision.helpers import walking_scene, write_video

pytestmark = pytest.mark.integration

#: Long enough for a 20 fps camera to try several frames.
QUIET_S = 0.5


class Payloads:
    """Every payload published on one topic, in arrival order."""

    def __init__(self, host: str, port: int, topic: str) -> None:
        self.payloads: list[bytes] = []
        self._topic = topic
        self._lock = threading.Lock()
        subscribed = threading.Event()
        self._client = mqtt.Client(CallbackAPIVersion.VERSION2)
        self._client.on_message = self._on_message
        self._client.on_subscribe = lambda *_: subscribed.set()
        self._client.connect(host, port)
        self._client.loop_start()
        self._client.subscribe(topic, qos=0)
        assert subscribed.wait(5), "no SUBACK"

    def _on_message(self, _c: mqtt.Client, _u: object, msg: mqtt.MQTTMessage) -> None:
        if msg.topic == self._topic:
            with self._lock:
                self.payloads.append(bytes(msg.payload))

    def count(self) -> int:
        with self._lock:
            return len(self.payloads)

    def close(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()


@pytest.fixture
def device(mosquitto, unique_store_id) -> Iterator[SimDevice]:
    d = SimDevice(
        unique_store_id, "cam-raw", mosquitto.host, mosquitto.port, device_type=DeviceType.CAMERA
    )
    d.heartbeat_s = 0  # no heartbeat thread
    d.start(timeout=5)
    yield d
    d.stop()


def test_publish_bytes_is_lost_while_the_link_is_down(mosquitto, unique_store_id, device):
    topic = camera_frame_topic(unique_store_id, "cam-raw")
    wire = Payloads(mosquitto.host, mosquitto.port, topic)
    try:
        info = device.publish_bytes(topic, b"before", qos=1)
        info.wait_for_publish(5)
        assert info.rc == MQTTErrorCode.MQTT_ERR_SUCCESS
        wait_for(lambda: wire.count() == 1, 5, "the payload sent before the drop")

        device.drop_link()
        lost = device.publish_bytes(topic, b"while-down", qos=1)
        assert lost.rc == MQTTErrorCode.MQTT_ERR_NO_CONN  # what a dead link gives: lost

        device.restore_link()
        assert device.wait_connected(10)
        device.publish_bytes(topic, b"after", qos=1).wait_for_publish(5)
        wait_for(lambda: wire.count() == 2, 5, "the payload sent after the restore")
        assert wire.payloads == [b"before", b"after"]
    finally:
        wire.close()


def test_camera_sends_no_frames_while_its_link_is_down(
    mosquitto, unique_store_id, tmp_path: Path
) -> None:
    video = write_video(tmp_path / "walk.avi", walking_scene())
    topic = camera_frame_topic(unique_store_id, "cam-1")
    wire = Payloads(mosquitto.host, mosquitto.port, topic)
    camera = SimCamera(
        unique_store_id, "cam-1", mosquitto.host, mosquitto.port, video, fps=20.0, loop=True
    )
    camera.heartbeat_s = 0
    camera.start(timeout=5)
    try:
        wait_for(lambda: wire.count() >= 3, 10, "frames before the drop")

        camera.drop_link()
        time.sleep(0.2)  # a frame already on its way when the link went may still land
        received, sent = wire.count(), camera.sent
        time.sleep(QUIET_S)
        assert wire.count() == received, "frames arrived while the link was down"
        assert camera.sent == sent, "frames counted as sent while the link was down"

        camera.restore_link()
        assert camera.wait_connected(10)
        wait_for(lambda: wire.count() >= received + 3, 10, "frames after the restore")
        assert camera.sent > sent
    finally:
        camera.stop()
        wire.close()
    frames = [decode_camera_frame(p) for p in wire.payloads]
    seqs = [f.seq for f in frames]
    assert seqs == sorted(seqs)  # a network drop keeps the numbering
