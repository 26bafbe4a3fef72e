"""Prices and electronic shelf labels."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, HTTPException
from pydantic import BaseModel, ConfigDict, Field

from edge.api.deps import Ctx, gateway_actions, require_store_reader

router = APIRouter(prefix="/api/v1", tags=["prices"], dependencies=[Depends(require_store_reader)])


class NewPrice(BaseModel):
    model_config = ConfigDict(extra="forbid")

    price_minor: int = Field(ge=0, le=100_000_000, description="integer minor units (cents)")


@router.put("/products/{barcode}/price", dependencies=[Depends(require_store_reader)])
def set_price(ctx: Ctx, barcode: str, body: NewPrice) -> dict[str, Any]:
    """Change a product's price: the next receipt charges it, and every label of the
    product is told (now if online, else when it comes back)."""
    try:
        return gateway_actions(ctx).set_price(barcode, body.price_minor)
    except LookupError as exc:
        raise HTTPException(status_code=404, detail=str(exc)) from None


@router.get("/esl")
def labels(ctx: Ctx) -> dict[str, Any]:
    """Every shelf label: its product, the price it should show and the one it shows,
    whether the two agree, and its last answer to a change."""
    items = ctx.read(lambda s: s.labels())
    return {
        "items": items,
        "total": len(items),
        "in_sync": sum(1 for item in items if item["in_sync"]),
    }
