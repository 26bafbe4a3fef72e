"""Staff alerts (maintenance of plates now; restock and cold chain use the same list)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Body, Depends, HTTPException, Query

from edge.api.deps import Ctx, gateway_actions, require_staff, require_store_reader

router = APIRouter(
    prefix="/api/v1/alerts", tags=["alerts"], dependencies=[Depends(require_store_reader)]
)


@router.get("")
def alerts(
    ctx: Ctx,
    state: str | None = Query(default=None, pattern="^(open|acked|resolved|active)$"),
    kind: str | None = Query(default=None, max_length=64),
    device_id: str | None = Query(default=None, max_length=64),
    limit: int = Query(default=200, ge=1, le=1000),
) -> dict[str, Any]:
    """Alerts, newest first; ``state=active`` means open or acknowledged."""
    items = ctx.read(lambda s: s.alerts(state=state, kind=kind, device_id=device_id, limit=limit))
    return {"items": items, "total": len(items)}


@router.post("/{alert_id}/ack", dependencies=[Depends(require_staff)])
def ack(
    ctx: Ctx, alert_id: str, staff: str = Body(default="staff", embed=True, max_length=64)
) -> dict[str, Any]:
    """Staff have seen the alert; it resolves by itself once its condition is gone."""
    try:
        return gateway_actions(ctx).ack_alert(alert_id, staff)
    except LookupError as exc:
        raise HTTPException(status_code=404, detail=str(exc)) from None
    except ValueError as exc:
        raise HTTPException(status_code=409, detail=str(exc)) from None
