"""Vision on the wire: track floor positions published as ``telemetry/positions``, and
JPEG frames of a simulated camera consumed by a camera worker.  Needs Mosquitto."""

from __future__ import annotations

import json
import logging
import threading
import time
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
import yaml
from paho.mqtt.enums import CallbackAPIVersion
from typer.testing import CliRunner

from devices.protocol import Positions, camera_frame_topic, decode, positions_topic
from edge.cli import app
from edge.commands.vision import CameraRunner
from firmware_sim.camera import SimCamera
from tests.integration.conftest import wait_for
from vision.config import VisionConfig

ROOT = Path(__file__).resolve().parents[2]


def _config(tmp_path: Path, store_id: str, vision: dict[str, object]) -> Path:
    data = yaml.safe_load((ROOT / "config" / "store.yaml").read_text())
    data["store_id"] = store_id
    data["planogram"] = str(ROOT / "config" / "planogram.yaml")
    data["vision"] = vision
    path = tmp_path / "store.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_vision_run_publishes_floor_positions(
    mosquitto: object, unique_store_id: str, tmp_path: Path, walking_video: Path
) -> None:
    # Pixels to floor: 1 cm per pixel (a homography from the config's camera cam-9).
    cfg = _config(
        tmp_path,
        unique_store_id,
        {
            "cameras": [
                {
                    "name": "cam-9",
                    "source": "unused",
                    "homography": [[0.01, 0, 0], [0, 0.01, 0], [0, 0, 1]],
                }
            ],
        },
    )
    got: list[Positions] = []
    done = threading.Event()
    client = mqtt.Client(CallbackAPIVersion.VERSION2)

    def on_message(_c: object, _u: object, msg: mqtt.MQTTMessage) -> None:
        inbound = decode(msg.topic, msg.payload)
        assert isinstance(inbound.message, Positions)
        got.append(inbound.message)

    client.on_message = on_message
    client.on_connect = lambda c, *_: c.subscribe(positions_topic(unique_store_id, "cam-9"))
    client.on_subscribe = lambda *_: done.set()  # the broker has the subscription
    client.connect(mosquitto.host, mosquitto.port)  # type: ignore[attr-defined]
    client.loop_start()
    try:
        assert done.wait(5)
        out = CliRunner().invoke(
            app,
            [
                "vision",
                "run",
                "--video",
                str(walking_video),
                "--config",
                str(cfg),
                "--device-id",
                "cam-9",
                "--publish",
                mosquitto.url,  # type: ignore[attr-defined]
                "--json",
            ],
        )
        assert out.exit_code == 0, out.output
        summary = json.loads(out.stdout.splitlines()[-1])
        assert summary["floor"] is True
        deadline = time.monotonic() + 5
        while len(got) < 40 and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        client.loop_stop()
        client.disconnect()
    assert len(got) == 40  # one message a frame
    assert [m.seq for m in got] == sorted(m.seq for m in got)
    tracked = [p for m in got for p in m.positions]
    assert len(tracked) >= 20
    # The walker's feet: y = 140 px -> 1.4 m; x moves right at 6 px (6 cm) a frame.
    assert all(p.track_id.startswith("cam-9-") for p in tracked)
    assert all(abs(p.y - 1.4) < 0.1 for p in tracked)
    xs = [p.x for p in tracked]
    assert xs == sorted(xs)
    assert xs[-1] - xs[0] > 1.0


def _wait_until_subscribed(
    caplog: pytest.LogCaptureFixture, host: str, port: int, topic: str
) -> None:
    """Until the runner gets what is published on ``topic``: probe it with a payload too
    short to be a frame, which the runner logs and drops (it counts no frame)."""
    probe = mqtt.Client(CallbackAPIVersion.VERSION2)
    probe.connect(host, port)
    probe.loop_start()

    def probe_dropped() -> bool:
        probe.publish(topic, b"probe", qos=0)
        return any("dropped" in r.getMessage() and topic in r.getMessage() for r in caplog.records)

    try:
        wait_for(probe_dropped, timeout=10, what="the runner's subscription to " + topic)
    finally:
        probe.disconnect()
        probe.loop_stop()


def test_frames_over_mqtt_feed_a_camera_worker(
    mosquitto: object,
    unique_store_id: str,
    walking_video: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="edge.commands.vision")
    vision = VisionConfig.model_validate(
        {"cameras": [{"name": "cam-sim", "source": "mqtt:simcam", "stall_timeout_s": 5}]}
    )
    runner = CameraRunner(vision, unique_store_id, mosquitto.url)  # type: ignore[attr-defined]
    runner.start()
    camera = SimCamera(
        unique_store_id,
        "simcam",
        mosquitto.host,
        mosquitto.port,  # type: ignore[attr-defined]
        walking_video,
        fps=40.0,
    )
    _wait_until_subscribed(
        caplog,
        mosquitto.host,  # type: ignore[attr-defined]
        mosquitto.port,  # type: ignore[attr-defined]
        camera_frame_topic(unique_store_id, "simcam"),
    )
    camera.start()
    try:
        assert camera.finished.wait(20)
        deadline = time.monotonic() + 5
        while runner.status()["cameras"]["cam-sim"]["frames"] < 30 and time.monotonic() < deadline:
            time.sleep(0.05)
        status = runner.status()["cameras"]["cam-sim"]
    finally:
        camera.stop()
        runner.stop()
    assert camera.sent == 40
    assert status["frames"] >= 30  # qos 0 and a 4-frame queue: a few may drop
    assert status["state"] == "running"
