"""Devices and rejected messages."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Query
from pydantic import BaseModel, ConfigDict, Field

from devices.protocol import TwinValue
from edge.api.deps import Ctx, gateway_actions, require_store_reader

router = APIRouter(prefix="/api/v1", tags=["devices"], dependencies=[Depends(require_store_reader)])


@router.get("/devices")
def devices(ctx: Ctx) -> dict[str, Any]:
    """Devices seen by the gateway: type, firmware, state, last seen, seq gaps."""
    items = ctx.read(lambda s: s.devices())
    return {"items": items, "total": len(items)}


@router.get("/dead-letters")
def dead_letters(ctx: Ctx, limit: int = Query(default=100, ge=1, le=1000)) -> dict[str, Any]:
    """Rejected inbound messages with the reason each was refused."""
    items, total = ctx.read(lambda s: (s.dead_letters(limit=limit), s.dead_letter_count()))
    return {"items": items, "total": total}


class DesiredSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    settings: dict[str, TwinValue] = Field(min_length=1, max_length=64)


@router.get("/devices/{device_id}/twin")
def twin(ctx: Ctx, device_id: str) -> dict[str, Any]:
    """Desired and reported settings of a device, and what is still pending."""
    return ctx.read(lambda s: s.twin(device_id))


@router.put(
    "/devices/{device_id}/twin/desired",
    dependencies=[Depends(require_store_reader)],
)
def set_desired(ctx: Ctx, device_id: str, body: DesiredSettings) -> dict[str, Any]:
    """Change desired settings; an online device gets them now, an offline one when it
    comes back (its birth reports what it runs, the gateway sends the difference)."""
    try:
        return gateway_actions(ctx).set_desired(device_id, dict(body.settings))
    except LookupError as exc:
        raise HTTPException(status_code=404, detail=str(exc)) from None
