"""Firmware images and staged rollouts (OTA).

Registering an image and starting or halting a rollout are staff actions; the
image is refused with 422 and the reason when its manifest's signature or its
hash does not verify against the gateway's trusted public key.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Query
from pydantic import BaseModel, ConfigDict, Field

from devices.ota import MAX_IMAGE_BYTES, MAX_UPLOAD_B64, ImageRejected, decode_image
from devices.protocol import DeviceId, DeviceType
from edge.api.deps import Ctx, gateway_actions, require_store_reader
from edge.ota import ImageRefused, OtaConflict, OtaNotConfigured

router = APIRouter(prefix="/api/v1/ota", tags=["ota"], dependencies=[Depends(require_store_reader)])
#: Firmware is pushed by HQ or by staff in the store (the router's own roles, named
#: again for the reader; the same callable, so FastAPI checks the token once).
_staff_or_hq = [Depends(require_store_reader)]


class ImageUpload(BaseModel):
    """A signed manifest (as written by ``storeedge firmware sign``) and the image."""

    model_config = ConfigDict(extra="forbid")

    manifest: dict[str, Any] = Field(description="version, device_type, sha256, size, signature")
    image_b64: str = Field(
        min_length=1,
        max_length=MAX_UPLOAD_B64,
        description=f"the image, base64 (at most {MAX_IMAGE_BYTES} bytes)",
    )


class RolloutRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    device_type: DeviceType
    version: str = Field(min_length=1, max_length=64)
    canary_share: float | None = Field(
        default=None, gt=0, le=1, description="default: the gateway's ota.canary_share"
    )
    devices: list[DeviceId] | None = Field(
        default=None, max_length=10_000, description="only these devices (default: all)"
    )
    canary: list[DeviceId] | None = Field(
        default=None, max_length=10_000, description="these devices first (default: by share)"
    )


class HaltRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str = Field(default="", max_length=300)


def _refusal(exc: Exception) -> HTTPException:
    if isinstance(exc, ImageRefused):
        return HTTPException(status_code=422, detail=f"image refused: {exc}")
    if isinstance(exc, OtaConflict):
        return HTTPException(status_code=409, detail=str(exc))
    if isinstance(exc, OtaNotConfigured):
        return HTTPException(status_code=503, detail=str(exc))
    if isinstance(exc, LookupError):
        return HTTPException(status_code=404, detail=str(exc.args[0] if exc.args else exc))
    return HTTPException(status_code=422, detail=str(exc))


@router.post("/images", status_code=201, dependencies=_staff_or_hq)
def register_image(ctx: Ctx, body: ImageUpload) -> dict[str, Any]:
    """Register a firmware image; 422 with the reason when it does not verify."""
    try:
        image = decode_image(body.image_b64, limit=MAX_IMAGE_BYTES)
    except ImageRejected as exc:
        raise HTTPException(status_code=422, detail=f"image refused: {exc}") from None
    try:
        return gateway_actions(ctx).register_firmware(body.manifest, image)
    except (ImageRefused, OtaConflict, OtaNotConfigured) as exc:
        raise _refusal(exc) from None


@router.get("/images")
def images(ctx: Ctx) -> dict[str, Any]:
    """Registered firmware images (without their bytes)."""
    items = ctx.read(lambda s: s.ota_images())
    return {"items": items, "total": len(items)}


@router.post("/rollouts", status_code=201, dependencies=_staff_or_hq)
def create_rollout(ctx: Ctx, body: RolloutRequest) -> dict[str, Any]:
    """Start a staged rollout: the canaries are offered the image now, the rest once
    every canary stayed healthy for the health window."""
    try:
        return gateway_actions(ctx).create_rollout(
            body.device_type.value,
            body.version,
            canary_share=body.canary_share,
            devices=body.devices,
            canary=body.canary,
        )
    except (OtaConflict, OtaNotConfigured, LookupError, ValueError) as exc:
        raise _refusal(exc) from None


@router.get("/rollouts")
def rollouts(ctx: Ctx, limit: int = Query(default=50, ge=1, le=500)) -> dict[str, Any]:
    """Rollouts, newest first: state (canary, rolling, done, halted), the halt reason,
    and how many devices are in each state."""
    items = ctx.read(lambda s: s.ota_rollouts(limit=limit))
    return {"items": items, "total": len(items)}


@router.get("/rollouts/{rollout_id}")
def rollout(ctx: Ctx, rollout_id: str) -> dict[str, Any]:
    """One rollout's status: its state and halt reason, and every device's state
    (pending, offered, installing, booted, verifying, confirmed, failed, rolled_back)
    with the detail of its last step."""
    found = ctx.read(lambda s: s.ota_rollout(rollout_id))
    if found is None:
        raise HTTPException(status_code=404, detail=f"no rollout {rollout_id!r}")
    return found


@router.post("/rollouts/{rollout_id}/halt", dependencies=_staff_or_hq)
def halt_rollout(ctx: Ctx, rollout_id: str, body: HaltRequest) -> dict[str, Any]:
    """Stop a rollout: no further device is offered the image."""
    try:
        return gateway_actions(ctx).halt_rollout(rollout_id, body.reason)
    except (OtaConflict, LookupError) as exc:
        raise _refusal(exc) from None
