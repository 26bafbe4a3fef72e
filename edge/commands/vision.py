"""``storeedge vision``: run the camera pipeline on a recording, a stream or MQTT frames;
``storeedge bench vision``: what it costs per frame.

The MQTT side of vision lives here (and in ``firmware_sim.camera``), never in
``vision/``: tracks are published as ``telemetry/positions`` by a camera-tracker
device, and frames that simulated cameras publish over MQTT are fed into the
pipeline's :class:`~vision.capture.PushSource`.
"""

from __future__ import annotations

import json
import logging
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any
from urllib.parse import urlsplit

import typer

from edge.commands.common import ConfigOption
from edge.commands.common import load as _load
from edge.commands.common import setup_logging as _setup_logging
from firmware_sim.aifi.dataset import find_dataset

if TYPE_CHECKING:
    from firmware_sim.camera import CameraTracker
    from vision.config import CameraConfig, VisionConfig
    from vision.pipeline import FrameResult

logger = logging.getLogger(__name__)

vision_app = typer.Typer(
    help="Cameras: run the vision pipeline (motion gating, detector, tracker, floor positions).",
    no_args_is_help=True,
)


def _broker(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    if parts.scheme not in {"mqtt", "tcp"} or not parts.hostname:
        typer.echo(f"error: broker must look like mqtt://host:1883, got {url!r}", err=True)
        raise typer.Exit(code=2)
    return parts.hostname, parts.port or 1883


def _aifi_calibration() -> Path | None:
    root = find_dataset()
    path = root / "store_meta" / "calibration.json" if root else None
    return path if path and path.is_file() else None


def vision_setup(
    cfg_vision: VisionConfig,
    source: str,
    *,
    camera_id: str | None,
    calibration: Path | None,
    detector_model: Path | None,
    name: str,
    no_floor: bool = False,
) -> tuple[VisionConfig, CameraConfig]:
    """The effective vision config and camera for one source given on the command line."""
    from vision.config import CameraConfig  # noqa: PLC0415
    from vision.detectors import OnnxDetectorConfig  # noqa: PLC0415
    from vision.pipeline import aifi_camera_id  # noqa: PLC0415

    update: dict[str, Any] = {}
    if detector_model is not None:
        update["detector"] = OnnxDetectorConfig(model=detector_model)
    cal = calibration or cfg_vision.calibration
    cam_id = camera_id or aifi_camera_id(source)
    if cal is None and cam_id is not None:
        cal = _aifi_calibration()  # the AiFi store's cameras, when the dataset is here
    if no_floor:
        cal, cam_id = None, None
    update["calibration"] = cal
    vision = cfg_vision.model_copy(update=update)
    configured = next((c for c in cfg_vision.cameras if c.name == name), None)
    if configured is not None:  # the config's camera of that name: its mapping and mask
        camera = configured.model_copy(update={"source": source})
        if camera_id is not None:
            camera = camera.model_copy(update={"calibration_id": camera_id})
        return vision, camera
    camera = CameraConfig(
        name=name, source=source, calibration_id=cam_id if cal is not None else None
    )
    return vision, camera


@vision_app.command("run")
def vision_run(
    video: Annotated[
        Path | None, typer.Option("--video", help="A recording (mp4, avi, ...).")
    ] = None,
    source: Annotated[
        str | None,
        typer.Option(help="A stream instead: rtsp://..., http://..., or usb:N."),
    ] = None,
    json_output: Annotated[
        bool, typer.Option("--json", help="One JSON object per frame, then a summary.")
    ] = False,
    camera_id: Annotated[
        str | None,
        typer.Option(help="The camera's id in the calibration (default: camN in the file name)."),
    ] = None,
    calibration: Annotated[
        Path | None,
        typer.Option(help="calibration.json (default: the config's, else the AiFi dataset's)."),
    ] = None,
    no_floor: Annotated[
        bool, typer.Option("--no-floor", help="Ignore any calibration (pixels only).")
    ] = False,
    detector_model: Annotated[
        Path | None, typer.Option(help="Use the ONNX (YOLO) detector with this model.")
    ] = None,
    max_frames: Annotated[int | None, typer.Option(help="Stop after this many frames.")] = None,
    publish: Annotated[
        str | None,
        typer.Option(help="Publish track floor positions to this broker: mqtt://host:port."),
    ] = None,
    store_id: Annotated[
        str | None, typer.Option(help="Store id for --publish (default: the config's).")
    ] = None,
    device_id: Annotated[
        str,
        typer.Option(
            help="The camera's device id (a camera of that name in the config "
            "lends its calibration, homography and motion mask)."
        ),
    ] = "cam-1",
    config: ConfigOption = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Debug logging.")] = False,
) -> None:
    """Run the configured vision pipeline on one recording or stream.

    With --json: one object per frame, {"frame", "detections": [{"box", "score",
    "label"}], "tracks": [{"id", "box", "floor"?}]}, and a last {"type": "summary"}.
    """
    from vision.capture import CaptureError, OpenCvSource  # noqa: PLC0415
    from vision.detectors import DetectorError  # noqa: PLC0415
    from vision.homography import CalibrationError  # noqa: PLC0415
    from vision.pipeline import pipeline_for_source  # noqa: PLC0415

    _setup_logging(verbose)
    if (video is None) == (source is None):
        typer.echo("error: give exactly one of --video FILE or --source URL", err=True)
        raise typer.Exit(code=2)
    cfg = _load(config)
    src = str(video) if video is not None else str(source)
    vision, camera = vision_setup(
        cfg.vision,
        src,
        camera_id=camera_id,
        calibration=calibration,
        detector_model=detector_model,
        name=device_id,
        no_floor=no_floor,
    )
    tracker: CameraTracker | None = None
    if publish is not None:
        tracker = _start_tracker(publish, store_id or cfg.store_id, device_id)
    start = time.perf_counter()
    frames = detections = 0
    has_floor = False
    track_ids: set[int] = set()
    try:
        pipeline, stream = pipeline_for_source(
            vision, OpenCvSource(src, name=camera.name), camera=camera
        )
        has_floor = pipeline.floor is not None
        for image, ts in stream:
            result = pipeline.process(image, ts)
            frames += 1
            detections += len(result.detections)
            track_ids.update(t.track.id for t in result.tracks)
            if json_output:
                sys.stdout.write(json.dumps(result.as_json()) + "\n")
            if tracker is not None:
                _publish(tracker, device_id, result)
            if max_frames is not None and frames >= max_frames:
                break
        pipeline.close()
    except (CaptureError, DetectorError, CalibrationError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(code=1) from None
    finally:
        if tracker is not None:
            tracker.stop()
    elapsed = time.perf_counter() - start
    summary = {
        "type": "summary",
        "frames": frames,
        "fps": round(frames / elapsed, 1) if elapsed > 0 else None,
        "detections": detections,
        "tracks": len(track_ids),
        "detector": vision.detector.type,
        "floor": has_floor,
    }
    if json_output:
        sys.stdout.write(json.dumps(summary) + "\n")
    else:
        typer.echo(
            f"{frames} frames at {summary['fps']} fps: {detections} detections, "
            f"{len(track_ids)} tracks ({vision.detector.type} detector"
            f"{', floor positions' if summary['floor'] else ''})"
        )


def _start_tracker(url: str, store_id: str, device_id: str) -> CameraTracker:
    from firmware_sim.camera import CameraTracker  # noqa: PLC0415

    host, port = _broker(url)
    tracker = CameraTracker(store_id, device_id, host, port)
    try:
        tracker.start(timeout=10.0)
    except (OSError, TimeoutError, RuntimeError) as exc:
        typer.echo(f"error: cannot connect to {url}: {exc}", err=True)
        raise typer.Exit(code=1) from None
    return tracker


def _publish(tracker: CameraTracker, device_id: str, result: FrameResult) -> None:
    from devices.protocol import TrackPosition  # noqa: PLC0415

    positions = [
        TrackPosition(track_id=f"{device_id}-{ft.track.id}", x=ft.floor[0], y=ft.floor[1])
        for ft in result.tracks
        if ft.floor is not None and abs(ft.floor[0]) < 1000 and abs(ft.floor[1]) < 1000
    ]
    tracker.publish_positions(positions)


@vision_app.command("cameras")
def vision_cameras(
    duration: Annotated[
        float | None, typer.Option(help="Stop after this many seconds (default: until Ctrl-C).")
    ] = None,
    broker: Annotated[
        str | None,
        typer.Option(help="Broker for mqtt:DEVICE sources (default: the config's)."),
    ] = None,
    json_output: Annotated[bool, typer.Option("--json", help="JSON status lines.")] = False,
    config: ConfigOption = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Debug logging.")] = False,
) -> None:
    """Run every configured camera, each in its own worker; print a status line a second."""
    _setup_logging(verbose)
    cfg = _load(config)
    if not cfg.vision.cameras:
        typer.echo("error: no cameras in the config's vision.cameras", err=True)
        raise typer.Exit(code=2)
    url = broker or cfg.mqtt.broker
    runner = CameraRunner(cfg.vision, cfg.store_id, url)
    runner.start()
    stop = threading.Event()
    deadline = time.monotonic() + duration if duration is not None else None
    try:
        while not stop.wait(1.0):
            line = runner.status()
            typer.echo(json.dumps(line) if json_output else _status_text(line))
            if deadline is not None and time.monotonic() >= deadline:
                break
    except KeyboardInterrupt:
        pass
    finally:
        runner.stop()


def _status_text(status: dict[str, Any]) -> str:
    return "  ".join(
        f"{name}: {s['state']} {s['frames']} frames, {s['tracks']} tracks"
        + (f" ({s['error']})" if s.get("error") else "")
        for name, s in status["cameras"].items()
    )


class CameraRunner:
    """Every configured camera in its own worker; ``mqtt:DEVICE`` sources are fed from a
    subscription to that camera's frame topic."""

    def __init__(self, vision: VisionConfig, store_id: str, broker: str) -> None:
        from vision.capture import CameraWorker, PushSource, open_source  # noqa: PLC0415

        self.vision = vision
        self.store_id = store_id
        self.broker = broker
        self.workers: list[CameraWorker] = []
        self.push: dict[str, PushSource] = {}
        self.tracks: dict[str, int] = {}
        self._pipelines: dict[str, Any] = {}
        self._client: Any = None
        for cam in vision.cameras:
            if cam.source.startswith("mqtt:"):
                push = PushSource(cam.name)
                self.push[cam.source[5:]] = push
                make = lambda p=push: p  # noqa: E731
            else:
                make = lambda c=cam: open_source(c.source, c.name)  # noqa: E731
            self.workers.append(
                CameraWorker(
                    cam.name,
                    make,
                    self._handle,
                    stall_timeout_s=cam.stall_timeout_s,
                    backoff_s=cam.reopen_backoff_s,
                    backoff_max_s=cam.reopen_backoff_max_s,
                    max_fps=cam.max_fps,
                )
            )
        self._cameras = {c.name: c for c in vision.cameras}

    def _handle(self, name: str, frame: Any) -> None:
        from vision.pipeline import CameraPipeline  # noqa: PLC0415

        pipeline = self._pipelines.get(name)
        if pipeline is None:
            h, w = frame.image.shape[:2]
            pipeline = CameraPipeline(self.vision, (w, h), camera=self._cameras[name])
            self._pipelines[name] = pipeline
        result = pipeline.process(frame.image, frame.ts_ms)
        self.tracks[name] = len(result.tracks)

    def start(self) -> None:
        if self.push:
            self._subscribe()
        for worker in self.workers:
            worker.start()

    def _subscribe(self) -> None:
        import paho.mqtt.client as mqtt  # noqa: PLC0415
        from paho.mqtt.enums import CallbackAPIVersion  # noqa: PLC0415

        from devices.protocol import (  # noqa: PLC0415
            DecodeError,
            camera_frame_topic,
            decode_camera_frame,
        )

        host, port = _broker(self.broker)
        client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"vision-{self.store_id}")
        topics = {camera_frame_topic(self.store_id, dev): push for dev, push in self.push.items()}

        def on_connect(c: Any, *_: Any) -> None:
            for topic in topics:
                c.subscribe(topic, qos=0)

        def on_message(_c: Any, _u: Any, msg: Any) -> None:
            push = topics.get(msg.topic)
            if push is None:
                return
            try:
                frame = decode_camera_frame(msg.payload)
            except DecodeError as exc:
                logger.warning("camera frame on %s dropped: %s", msg.topic, exc.reason)
                return
            push.feed(frame.jpeg, frame.ts)

        client.on_connect = on_connect
        client.on_message = on_message
        client.connect_async(host, port)
        client.loop_start()
        self._client = client

    def status(self) -> dict[str, Any]:
        return {
            "type": "status",
            "cameras": {
                w.name: {
                    "state": w.status.state,
                    "frames": w.status.frames,
                    "reopens": w.status.reopens,
                    "stalls": w.status.stalls,
                    "tracks": self.tracks.get(w.name, 0),
                    "error": w.status.last_error,
                }
                for w in self.workers
            },
        }

    def stop(self) -> None:
        for worker in self.workers:
            worker.stop()
        if self._client is not None:
            self._client.loop_stop()
            self._client.disconnect()


def bench_vision_cmd(
    video: Annotated[
        Path | None,
        typer.Option(help="The footage (default: the AiFi dataset's cps-test-01-cam1.mp4)."),
    ] = None,
    onnx_model: Annotated[
        Path | None,
        typer.Option(help="An ONNX YOLO model to time (default: a YOLOv8n-shaped network)."),
    ] = None,
    onnx_size: Annotated[int, typer.Option(help="Input side of the default ONNX network.")] = 320,
    max_frames: Annotated[int | None, typer.Option(help="Frames per pass.")] = None,
    config: ConfigOption = None,
) -> None:
    """Frames per second per core and per-frame latency at the footage's resolution, with
    motion gating: the foreground detector, then an ONNX detector, then an idle store."""
    import tempfile  # noqa: PLC0415

    from vision.bench import bench_idle, bench_video  # noqa: PLC0415
    from vision.detectors import OnnxDetectorConfig  # noqa: PLC0415
    from vision.yolo_shape import write_yolov8n_like  # noqa: PLC0415

    _setup_logging(False)
    cfg = _load(config)
    if video is None:
        root = find_dataset()
        video = root / "video" / "cps-test-01-cam1.mp4" if root else None
        if video is None or not video.is_file():
            typer.echo("error: no --video and the AiFi dataset is not here", err=True)
            raise typer.Exit(code=2)
    vision, camera = vision_setup(
        cfg.vision,
        str(video),
        camera_id=None,
        calibration=None,
        detector_model=None,
        name="bench",
    )
    results = [bench_video(video, vision, camera, label="foreground", max_frames=max_frames)]
    with tempfile.TemporaryDirectory() as tmp:
        model = onnx_model or write_yolov8n_like(Path(tmp) / "yolov8n_shaped.onnx", onnx_size)
        label = (
            f"onnx {onnx_model.name}"
            if onnx_model
            else f"onnx YOLOv8n-shaped {onnx_size}x{onnx_size}"
        )
        onnx_vision = vision.model_copy(
            update={"detector": OnnxDetectorConfig(model=model, labels=["person"], threads=1)}
        )
        results.append(bench_video(video, onnx_vision, camera, label=label, max_frames=max_frames))
        no_gate = onnx_vision.model_copy(
            update={"motion": onnx_vision.motion.model_copy(update={"enabled": False})}
        )
        results.append(
            bench_video(
                video, no_gate, camera, label=f"{label}, no motion gating", max_frames=max_frames
            )
        )
    results.append(bench_idle(vision))
    for item in results:
        typer.echo(json.dumps(item))


def bench_vision_ties_cmd(
    events: Annotated[int, typer.Option(help="Events per scenario.")] = 400,
    seed: Annotated[int, typer.Option(help="Seed of the scenario.")] = 0,
    tie_g: Annotated[float, typer.Option(help="Products this close in weight are twins.")] = 5.0,
    planogram: Annotated[
        Path | None, typer.Option(help="AiFi planogram.json (default: the dataset's).")
    ] = None,
    camera_px: Annotated[
        list[int] | None,
        typer.Option(help="Also measure views shrunk to this many pixels (repeatable)."),
    ] = None,
) -> None:
    """What the product classifier adds where weight cannot tell products apart."""
    from edge.bench_vision_ties import measure_ties  # noqa: PLC0415

    _setup_logging(False)
    if planogram is None:
        root = find_dataset()
        planogram = root / "planogram.json" if root else None
    if planogram is None or not planogram.is_file():
        typer.echo("error: no --planogram and the AiFi dataset is not here", err=True)
        raise typer.Exit(code=2)
    typer.echo(json.dumps(measure_ties(planogram, events=events, seed=seed, tie_g=tie_g)))
    for px in camera_px or [24, 16, 12]:
        result = measure_ties(planogram, events=events, seed=seed, tie_g=tie_g, camera_px=px)
        typer.echo(json.dumps(result))
