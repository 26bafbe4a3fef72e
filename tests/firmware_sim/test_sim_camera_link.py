"""Raw payloads and camera frames through ``SimDevice.publish_bytes``: a cut link loses
them, a restored one sends again (real Mosquitto, a plain paho subscriber)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from paho.mqtt.enums import MQTTErrorCode

from devices.protocol import DeviceType, camera_frame_topic, decode_camera_frame
from firmware_sim.camera import SimCamera
from firmware_sim.device import SimDevice
from tests.integration.conftest import wait_for
from tests.vision.helpers import walking_scene, write_video
from tests.wire import Wire

pytestmark = pytest.mark.integration

#: Long enough for a 20 fps camera to try several frames.
QUIET_S = 0.5


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
    wire = Wire(mosquitto.host, mosquitto.port, unique_store_id)
    try:
        info = device.publish_bytes(topic, b"before", qos=1)
        info.wait_for_publish(5)
        assert info.rc == MQTTErrorCode.MQTT_ERR_SUCCESS
        wait_for(lambda: len(wire.on(topic)) == 1, 5, "the payload sent before the drop")

        device.drop_link()
        lost = device.publish_bytes(topic, b"while-down", qos=1)
        assert lost.rc == MQTTErrorCode.MQTT_ERR_NO_CONN  # what a dead link gives: lost

        device.restore_link()
        assert device.wait_connected(10)
        device.publish_bytes(topic, b"after", qos=1).wait_for_publish(5)
        wait_for(lambda: len(wire.on(topic)) == 2, 5, "the payload sent after the restore")
        assert wire.on(topic) == [b"before", b"after"]
    finally:
        wire.close()


def test_camera_sends_no_frames_while_its_link_is_down(
    mosquitto, unique_store_id, tmp_path: Path
) -> None:
    video = write_video(tmp_path / "walk.avi", walking_scene())
    topic = camera_frame_topic(unique_store_id, "cam-1")
    wire = Wire(mosquitto.host, mosquitto.port, unique_store_id)
    camera = SimCamera(
        unique_store_id, "cam-1", mosquitto.host, mosquitto.port, video, fps=20.0, loop=True
    )
    camera.heartbeat_s = 0
    camera.start(timeout=5)
    try:
        wait_for(lambda: len(wire.on(topic)) >= 3, 10, "frames before the drop")

        camera.drop_link()
        time.sleep(0.2)  # a frame already on its way when the link went may still land
        received, sent = len(wire.on(topic)), camera.sent
        time.sleep(QUIET_S)
        assert len(wire.on(topic)) == received, "frames arrived while the link was down"
        assert camera.sent == sent, "frames counted as sent while the link was down"

        camera.restore_link()
        assert camera.wait_connected(10)
        wait_for(lambda: len(wire.on(topic)) >= received + 3, 10, "frames after the restore")
        assert camera.sent > sent
    finally:
        camera.stop()
        wire.close()
    frames = [decode_camera_frame(p) for p in wire.on(topic)]
    seqs = [f.seq for f in frames]
    assert seqs == sorted(seqs)  # a network drop keeps the numbering
