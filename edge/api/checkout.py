"""Sessions and receipts: staff and HQ see the store's, a shopper only their own."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException, Query

from edge.api.deps import AnyCaller, Ctx
from edge.store.repo import Store

router = APIRouter(prefix="/api/v1", tags=["checkout"])


@router.get("/sessions")
def sessions(
    ctx: Ctx,
    caller: AnyCaller,
    state: str | None = Query(default=None, pattern="^(open|closed)$"),
    limit: int = Query(default=100, ge=1, le=1000),
) -> dict[str, Any]:
    """Shopper sessions, newest first, each with its live cart (barcode -> quantity);
    a shopper sees only their own."""
    shopper = caller.shopper_id
    if shopper is not None:
        items = ctx.read(
            lambda s: s.sessions(
                state=state, limit=limit, tokens=s.shopper_session_tokens(shopper, state, limit)
            )
        )
    else:
        items = ctx.read(lambda s: s.sessions(state=state, limit=limit))
    return {"items": items, "total": len(items)}


@router.get("/receipts")
def receipts(
    ctx: Ctx, caller: AnyCaller, limit: int = Query(default=100, ge=1, le=1000)
) -> dict[str, Any]:
    """Issued receipts, newest first; amounts are integers in minor units; a shopper
    sees only their own."""
    shopper = caller.shopper_id
    if shopper is not None:
        items = ctx.read(
            lambda s: s.receipts(limit=limit, receipt_ids=s.shopper_receipt_ids(shopper, limit))
        )
    else:
        items = ctx.read(lambda s: s.receipts(limit=limit))
    return {"items": items, "total": len(items)}


@router.get("/receipts/{receipt_id}")
def receipt(ctx: Ctx, caller: AnyCaller, receipt_id: str) -> dict[str, Any]:
    """One receipt with its lines, adjustments (refunds, extra charges) and payments;
    another shopper's receipt is not found."""

    def read(s: Store) -> dict[str, Any] | None:
        if caller.shopper_id is not None and s.receipt_shopper(receipt_id) != caller.shopper_id:
            return None
        found = s.receipt(receipt_id)
        if found is not None:
            found["payments"] = s.payments(receipt_id=receipt_id)
        return found

    found = ctx.read(read)
    if found is None:
        raise HTTPException(status_code=404, detail=f"no receipt {receipt_id}")
    return found
