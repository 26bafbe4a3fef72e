"""Devices and rejected messages."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query

from edge.api.deps import Ctx

router = APIRouter(prefix="/api/v1", tags=["devices"])


@router.get("/devices")
def devices(ctx: Ctx) -> dict[str, Any]:
    """Devices seen by the gateway: type, firmware, state, last seen, seq gaps."""
    items = ctx.read(lambda s: s.devices())
    return {"items": items, "total": len(items)}


@router.get("/dead-letters")
def dead_letters(ctx: Ctx, limit: int = Query(default=100, ge=1, le=1000)) -> dict[str, Any]:
    """Rejected inbound messages with the reason each was refused."""
    items = ctx.read(lambda s: s.dead_letters(limit=limit))
    return {"items": items, "total": ctx.read(lambda s: s.dead_letter_count())}
