"""The review queue: checkout events the gateway was not sure about."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Query
from pydantic import BaseModel, ConfigDict, Field

from edge.api.deps import Ctx, gateway_actions, require_staff, require_store_reader

router = APIRouter(
    prefix="/api/v1/review", tags=["review"], dependencies=[Depends(require_store_reader)]
)


class ReviewDecision(BaseModel):
    """Either a product, quantity and shopper, or ``dismiss: true``."""

    model_config = ConfigDict(extra="forbid")

    dismiss: bool = False
    barcode: str | None = Field(default=None, max_length=32)
    quantity: int = Field(default=1, ge=1, le=50)
    session_token: str | None = Field(default=None, max_length=128)
    staff: str = Field(default="staff", max_length=64, description="who decided")


@router.get("")
def review_queue(
    ctx: Ctx,
    status: str | None = Query(default="open", pattern="^(open|resolved|dismissed)$"),
    limit: int = Query(default=200, ge=1, le=1000),
) -> dict[str, Any]:
    """Items with their weight change, candidate products and the shoppers nearby."""
    items = ctx.read(lambda s: s.reviews(status=status, limit=limit))
    return {"items": items, "total": len(items)}


@router.post("/{review_id}/resolve", dependencies=[Depends(require_staff)])
def resolve(ctx: Ctx, review_id: str, decision: ReviewDecision) -> dict[str, Any]:
    """Staff decide: the product goes into the shopper's cart, or onto their receipt as an
    extra charge (a pick) or a refund (a put-back) when they have already left."""
    actions = gateway_actions(ctx)
    if not decision.dismiss and (decision.barcode is None or decision.session_token is None):
        raise HTTPException(
            status_code=422, detail="give barcode and session_token, or dismiss: true"
        )
    try:
        return actions.resolve_review(
            review_id,
            barcode=None if decision.dismiss else decision.barcode,
            quantity=decision.quantity,
            session_token=decision.session_token,
            by=decision.staff,
        )
    except LookupError as exc:
        raise HTTPException(status_code=404, detail=str(exc)) from None
    except ValueError as exc:
        raise HTTPException(status_code=409, detail=str(exc)) from None
