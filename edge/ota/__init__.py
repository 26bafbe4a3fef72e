"""OTA firmware updates: signed images and staged rollouts with health checks."""

from edge.ota.rollout import (
    ImageRefused,
    OtaConflict,
    OtaNotConfigured,
    RolloutOrchestrator,
)

__all__ = ["ImageRefused", "OtaConflict", "OtaNotConfigured", "RolloutOrchestrator"]
