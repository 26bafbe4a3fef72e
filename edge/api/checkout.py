"""Sessions and receipts."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException, Query

from edge.api.deps import Ctx

router = APIRouter(prefix="/api/v1", tags=["checkout"])


@router.get("/sessions")
def sessions(
    ctx: Ctx,
    state: str | None = Query(default=None, pattern="^(open|closed)$"),
    limit: int = Query(default=100, ge=1, le=1000),
) -> dict[str, Any]:
    """Shopper sessions, newest first, each with its live cart (barcode -> quantity)."""
    items = ctx.read(lambda s: s.sessions(state=state, limit=limit))
    return {"items": items, "total": len(items)}


@router.get("/receipts")
def receipts(ctx: Ctx, limit: int = Query(default=100, ge=1, le=1000)) -> dict[str, Any]:
    """Issued receipts, newest first; amounts are integers in minor units."""
    items = ctx.read(lambda s: s.receipts(limit=limit))
    return {"items": items, "total": len(items)}


@router.get("/receipts/{receipt_id}")
def receipt(ctx: Ctx, receipt_id: str) -> dict[str, Any]:
    found = ctx.read(lambda s: s.receipt(receipt_id))
    if found is None:
        raise HTTPException(status_code=404, detail=f"no receipt {receipt_id}")
    return found
