"""FastAPI application: health, sessions, receipts, devices, review queue, a live page.

The API reads through its own read-only SQLite connection; the gateway's
worker is the only writer, and staff actions run on it.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from fastapi import Depends, FastAPI, HTTPException
from fastapi.staticfiles import StaticFiles

from edge.api import alerts, calibration, checkout, dashboard, devices, ota, prices, review
from edge.api import shoppers as shoppers_api
from edge.api import staff as staff_api
from edge.api.deps import ApiContext, Ctx, StaffActions, document_roles, public
from edge.shoppers.service import ShopperService
from edge.shoppers.tokens import TokenSigner
from edge.staff.service import StaffService


def create_app(
    db_path: Path,
    *,
    store_id: str,
    health: Callable[[], dict[str, Any]] | None = None,
    actions: StaffActions | None = None,
    staff_token: str | None = None,
    hq_token: str | None = None,
    signer: TokenSigner | None = None,
    shoppers: ShopperService | None = None,
    staff: StaffService | None = None,
) -> FastAPI:
    app = FastAPI(
        title="storeedge gateway",
        version="0.1.0",
        description="In-store edge gateway: live sessions, receipts, devices and the review "
        "queue of one store.",
    )
    app.state.ctx = ApiContext(
        db_path,
        store_id,
        health,
        actions,
        staff_token,
        hq_token=hq_token,
        signer=signer,
        shoppers=shoppers,
    )
    document_roles(app)  # every operation's roles (x-roles) or x-public in /openapi.json
    app.include_router(checkout.router)
    app.include_router(devices.router)
    app.include_router(review.router)
    app.include_router(calibration.router)
    app.include_router(alerts.router)
    app.include_router(ota.router)
    app.include_router(prices.router)

    @app.get("/healthz", tags=["health"], dependencies=[Depends(public)])
    def healthz(ctx: Ctx) -> dict[str, Any]:
        """Liveness and the gateway's own view of its health (MQTT link, worker)."""
        info = ctx.health() if ctx.health else {}
        ok = bool(info.get("ok", True))
        body = {"status": "ok" if ok else "degraded", "store_id": ctx.store_id, **info}
        if not ok:
            raise HTTPException(status_code=503, detail=body)
        return body

    # The staff dashboard at / (panels, live stream), stock, cold chain, /metrics.
    app.state.staff = staff
    app.include_router(dashboard.page_router)
    app.include_router(dashboard.router)
    app.include_router(staff_api.router)
    app.include_router(shoppers_api.router)
    app.mount("/static", StaticFiles(directory=dashboard.STATIC_DIR), name="static")

    return app
