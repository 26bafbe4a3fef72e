"""Detectors as plugins: the config's ``type`` key picks one (``foreground`` or ``onnx``)."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from vision.detectors.base import (
    Box,
    Detection,
    Detector,
    DetectorConfigBase,
    DetectorError,
    FrameContext,
    build,
    registered,
)
from vision.detectors.plugins.foreground import ForegroundDetectorConfig
from vision.detectors.plugins.onnx import OnnxDetectorConfig

#: One entry per plugin file; ``type`` is the discriminator.
DetectorConfig = Annotated[
    ForegroundDetectorConfig | OnnxDetectorConfig, Field(discriminator="type")
]

__all__ = [
    "Box",
    "Detection",
    "Detector",
    "DetectorConfig",
    "DetectorConfigBase",
    "DetectorError",
    "ForegroundDetectorConfig",
    "FrameContext",
    "OnnxDetectorConfig",
    "build",
    "registered",
]
