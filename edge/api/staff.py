"""Staff views: stock per lane, the cold chain and its temperature log, a shelf's
weight trace, the dashboard's live change stream, and Prometheus ``/metrics``.

Reads are for staff and HQ; counting a lane is a staff action.  The trace and
the live counters exist only while the gateway runs (503 otherwise).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response, StreamingResponse
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from pydantic import BaseModel, ConfigDict, Field

from edge.api.deps import ApiContext, Ctx, require_staff, require_store_reader
from edge.config import ColdChainConfig
from edge.staff.coldchain import unit_status, units_of
from edge.staff.metrics import build_registry
from edge.staff.restock import lane_is_low
from edge.staff.service import StaffService
from edge.store.repo import Store

router = APIRouter(tags=["staff"], dependencies=[Depends(require_store_reader)])

#: How often the change stream looks for new events, and sends a tick.
STREAM_POLL_S = 0.25
STREAM_TICK_S = 1.0
#: A stream ends after this long; the browser's EventSource reconnects by itself.
STREAM_MAX_S = 600.0


def staff_service(request: Request) -> StaffService | None:
    service: StaffService | None = getattr(request.app.state, "staff", None)
    return service


Staff = Annotated[StaffService | None, Depends(staff_service)]


def _running(staff: StaffService | None) -> StaffService:
    if staff is None:
        raise HTTPException(status_code=503, detail="the gateway is not running")
    return staff


def cold_config(staff: StaffService | None) -> ColdChainConfig:
    return staff.cold_chain if staff is not None else ColdChainConfig()


# ---------------------------------------------------------------------- stock


@router.get("/api/v1/stock")
def stock(ctx: Ctx, device_id: str | None = Query(default=None, max_length=64)) -> dict[str, Any]:
    """Stock per lane (the plates of one product on a shelf), estimated from the settled
    weight: units, the restock threshold and the level at which an alert resolves."""
    items = ctx.read(lambda s: s.lanes(device_id))
    for lane in items:
        lane["low"] = lane_is_low(lane["units"], lane["restock_at"])
    return {"items": items, "total": len(items), "low": sum(1 for i in items if i["low"])}


class LaneCount(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    units: int = Field(ge=0, le=10_000, description="units staff counted on the lane")
    staff: str = Field(default="staff", max_length=64)


@router.post("/api/v1/stock/{device_id}/{barcode}/count", dependencies=[Depends(require_staff)])
def count_lane(staff: Staff, device_id: str, barcode: str, body: LaneCount) -> dict[str, Any]:
    """Staff counted a lane: its weight now stands for that many units from here on."""
    try:
        return _running(staff).count_lane(device_id, barcode, body.units, body.staff)
    except LookupError as exc:
        raise HTTPException(status_code=404, detail=str(exc.args[0])) from None
    except ValueError as exc:
        raise HTTPException(status_code=409, detail=str(exc)) from None


# ---------------------------------------------------------------------- cold chain


@router.get("/api/v1/cold-chain")
def cold_chain(ctx: Ctx, staff: Staff) -> dict[str, Any]:
    """Every fridge and freezer: its limit, last reading, and whether it is above its
    limit now (``above``) or has been for too long (``alert``)."""
    cfg = cold_config(staff)
    items = ctx.read(lambda s: [unit_status(s, cfg, d) for d in units_of(s, cfg)])
    return {"items": items, "total": len(items)}


@router.get("/api/v1/cold-chain/{device_id}/temperatures")
def temperatures(
    ctx: Ctx,
    device_id: str,
    since_ms: int = Query(default=0, ge=0),
    limit: int = Query(default=1000, ge=1, le=10_000),
) -> dict[str, Any]:
    """The temperature log of one unit since ``since_ms``, oldest first."""
    items = ctx.read(lambda s: s.temperatures(device_id, since_ms=since_ms, limit=limit))
    return {"device_id": device_id, "items": items, "total": len(items)}


# ---------------------------------------------------------------------- weight trace


@router.get("/api/v1/shelves/{device_id}/trace")
def trace(
    staff: Staff, device_id: str, since_ms: int | None = Query(default=None, ge=0)
) -> dict[str, Any]:
    """The last seconds of a shelf's weight: the mean of each plate per batch, grams."""
    service = _running(staff)
    if device_id not in {s.device_id for s in service.planogram.shelves}:
        raise HTTPException(status_code=404, detail=f"no shelf {device_id!r}")
    points = service.weight_trace(device_id, since_ms)
    return {
        "device_id": device_id,
        "plates": len(points[-1][1]) if points else 0,
        "points": [{"ts_ms": ts, "grams": list(grams)} for ts, grams in points],
    }


# ---------------------------------------------------------------------- live stream


def _sse(event: str, data: dict[str, Any]) -> str:
    return f"event: {event}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n"


async def _changes(request: Request, ctx: ApiContext) -> AsyncIterator[str]:
    def start(s: Store) -> tuple[int, int]:
        return s.change_cursor(), s.lanes_changed_ms()

    cursor, lanes_ms = await run_in_threadpool(ctx.read, start)
    yield "retry: 2000\n\n"
    yield _sse("hello", {"store_id": ctx.store_id})
    opened = last_tick = time.monotonic()
    while time.monotonic() - opened < STREAM_MAX_S:
        if await request.is_disconnected() or getattr(request.app.state, "ending", False):
            return

        def poll(s: Store, cursor: int = cursor) -> tuple[set[str], int, int]:
            panels, new_cursor = s.changed_panels(cursor)
            return panels, new_cursor, s.lanes_changed_ms()

        panels, cursor, lanes_now = await run_in_threadpool(ctx.read, poll)
        if lanes_now != lanes_ms:
            lanes_ms = lanes_now
            panels.add("map")
        for panel in sorted(panels):
            yield _sse(panel, {})
        if time.monotonic() - last_tick >= STREAM_TICK_S:
            last_tick = time.monotonic()
            yield _sse("tick", {"ts_ms": int(time.time() * 1000)})
        await asyncio.sleep(STREAM_POLL_S)


def end_streams(app: FastAPI) -> None:
    """The server is stopping: open streams end (within ``STREAM_POLL_S``)."""
    app.state.ending = True


@router.get(
    "/api/v1/stream",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}}},
)
async def stream(request: Request, ctx: Ctx) -> StreamingResponse:
    """Server-sent events for the dashboard: an event named after each panel whose data
    changed (alerts, review, sessions, receipts, devices, map), and ``tick`` every
    second.  The browser fetches the panel again when told."""
    return StreamingResponse(
        _changes(request, ctx),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


# ---------------------------------------------------------------------- metrics


def _registry(request: Request, ctx: ApiContext) -> CollectorRegistry:
    registry: CollectorRegistry | None = getattr(request.app.state, "metrics_registry", None)
    if registry is None:
        registry = build_registry(ctx.read, staff_service(request))
        request.app.state.metrics_registry = registry
    return registry


@router.get(
    "/metrics",
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE_LATEST: {}}}},
)
def metrics(request: Request, ctx: Ctx) -> Response:
    """Prometheus metrics: messages and samples ingested, pick-to-cart and exit-to-receipt
    latency histograms, review queue length, alerts, outbox backlog, devices by state."""
    return Response(generate_latest(_registry(request, ctx)), media_type=CONTENT_TYPE_LATEST)
