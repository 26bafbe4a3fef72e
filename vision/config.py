"""The ``vision:`` section of the store config: cameras, gating, detector plugin, tracking.

Strict pydantic models (``extra="forbid"``): a typo is an error that names the key.
This module and the plugin configs import neither OpenCV nor onnxruntime: the gateway
reads its config without loading them.  The detector is chosen by its ``type`` key, one
plugin per file under ``vision/detectors/plugins/``::

    vision:
      detector: {type: foreground}                    # no model needed
      # detector: {type: onnx, model: /var/lib/storeedge/yolov8n.onnx}
      calibration: ../shared/datasets/aifi-nanostore/store_meta/calibration.json
      cameras:
        - {name: cam-1, source: rtsp://10.0.0.21/stream1, calibration_id: "1"}
        - {name: cam-2, source: "usb:0"}
        - {name: cam-3, source: "mqtt:cam-3"}        # JPEG frames over MQTT
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from devices.protocol import DeviceId
from vision.detectors import DetectorConfig, ForegroundDetectorConfig

#: A polygon in full-frame pixels.
Polygon = list[tuple[int, int]]

__all__ = [
    "CameraConfig",
    "MotionConfig",
    "PrivacyConfig",
    "ProductConfig",
    "TrackerConfig",
    "VisionConfig",
]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class MotionConfig(_Strict):
    """Motion gating (:mod:`vision.motion`)."""

    enabled: bool = Field(default=True, description="off: the detector runs on every frame")
    frame_height: int = Field(default=90, ge=16, le=1080, description="rows of the motion image")
    threshold: int = Field(default=20, ge=1, le=255, description="grey-level change that is motion")
    contour_area: int = Field(
        default=8, ge=1, description="smallest moving blob, pixels of the motion image"
    )
    frame_alpha: float = Field(
        default=0.1, gt=0, le=1, description="how fast the running average follows the frames"
    )
    max_changed: float = Field(
        default=0.7, gt=0, le=1, description="a larger changed share is a lighting change"
    )
    expand: float = Field(default=0.1, ge=0, description="regions grow by this share each side")
    mask: list[Polygon] = Field(
        default_factory=list,
        description="polygons (full-frame pixels) where motion is ignored: a TV, a window",
    )


class TrackerConfig(_Strict):
    """Tracking (:mod:`vision.tracking`)."""

    min_hits: int = Field(default=2, ge=1, description="updates before a track is reported")
    max_age: int = Field(default=20, ge=0, description="frames a track coasts without detection")
    max_cost: float = Field(
        default=1.6, gt=0, description="assignment gate: 1 - IoU, plus centre distance in sizes"
    )
    report_coasting: int = Field(
        default=5, ge=0, description="report a track for this many frames without detection"
    )
    process_noise: float = Field(default=0.05, gt=0, description="Kalman Q scale")
    measurement_noise: float = Field(default=0.1, gt=0, description="Kalman R scale")


class CameraConfig(_Strict):
    name: DeviceId = Field(description="the camera's device id (its positions are published so)")
    source: str = Field(
        min_length=1,
        description="a video file, rtsp://… / http://… URL, 'usb:N' for a local device, "
        "or 'mqtt:DEVICE' for JPEG frames a camera publishes over MQTT",
    )
    calibration_id: str | None = Field(
        default=None, description="this camera's id in the calibration file (pixel -> floor)"
    )
    homography: list[list[float]] | None = Field(
        default=None, description="3x3 pixel -> floor (metres) matrix, instead of a calibration"
    )
    max_fps: float | None = Field(default=None, gt=0, description="drop frames above this rate")
    stall_timeout_s: float = Field(
        default=5.0, gt=0, description="no frame for this long: the stream is reopened"
    )
    reopen_backoff_s: float = Field(default=1.0, gt=0, description="first wait before reopening")
    reopen_backoff_max_s: float = Field(default=30.0, gt=0)
    motion_mask: list[Polygon] = Field(
        default_factory=list, description="polygons (pixels) where motion is ignored"
    )

    @field_validator("homography")
    @classmethod
    def _three_by_three(cls, value: list[list[float]] | None) -> list[list[float]] | None:
        if value is not None and (len(value) != 3 or any(len(row) != 3 for row in value)):
            raise ValueError("homography must be a 3x3 matrix")
        return value


class PrivacyConfig(_Strict):
    """No frame is stored unless ``snapshots`` is on; what is kept is blurred and bounded."""

    snapshots: Literal["off", "blur_faces", "blur_people"] = Field(
        default="off",
        description="off: no frame ever written; blur_faces: faces and heads blurred; "
        "blur_people: every detected person blurred",
    )
    directory: Path = Field(default=Path("storeedge-data/snapshots"))
    max_snapshots: int = Field(default=500, ge=1, description="oldest deleted beyond this")
    max_age_s: float = Field(default=86_400.0, gt=0, description="older snapshots are deleted")
    max_bytes: int = Field(default=100 * 1024 * 1024, ge=1024, description="disk budget")
    jpeg_quality: int = Field(default=80, ge=10, le=100)


class ProductConfig(_Strict):
    enabled: bool = Field(default=True, description="score products for weight ties")
    model: Path | None = Field(
        default=None, description="classifier .onnx (default: the one shipped in vision/models)"
    )


class VisionConfig(_Strict):
    detector: DetectorConfig = Field(default_factory=ForegroundDetectorConfig)
    motion: MotionConfig = MotionConfig()
    tracker: TrackerConfig = TrackerConfig()
    privacy: PrivacyConfig = PrivacyConfig()
    product: ProductConfig = ProductConfig()
    calibration: Path | None = Field(
        default=None, description="AiFi-style calibration.json for the cameras' calibration_id"
    )
    floor_margin_m: float = Field(
        default=0.3, ge=0, description="detections whose feet are further outside the floor drop"
    )
    cameras: list[CameraConfig] = Field(default_factory=list)

    @field_validator("cameras")
    @classmethod
    def _unique(cls, value: list[CameraConfig]) -> list[CameraConfig]:
        names = [c.name for c in value]
        if len(names) != len(set(names)):
            raise ValueError("camera names must be unique")
        return value
