"""Detector plugins, one file each; importing this package registers them all."""

from vision.detectors.plugins import foreground, onnx

__all__ = ["foreground", "onnx"]
