"""FastAPI application: health, sessions, receipts, devices, and a live HTML page.

The API reads through its own read-only SQLite connection; the gateway's
worker is the only writer.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from fastapi import FastAPI, HTTPException, Query, Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from edge.store.repo import Store

T = TypeVar("T")
_TEMPLATES = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))


def create_app(
    db_path: Path,
    *,
    store_id: str,
    health: Callable[[], dict[str, Any]] | None = None,
) -> FastAPI:
    app = FastAPI(
        title="storeedge gateway",
        version="0.1.0",
        description="In-store edge gateway: live sessions, receipts and devices of one store.",
    )
    store: Store | None = None

    def read(fn: Callable[[Store], T]) -> T:
        nonlocal store
        if store is None:
            store = Store.open(db_path, readonly=True)
        with store.reading():
            return fn(store)

    @app.get("/healthz", tags=["health"])
    def healthz() -> dict[str, Any]:
        """Liveness and the gateway's own view of its health (MQTT link, worker)."""
        info = health() if health else {}
        ok = bool(info.get("ok", True))
        body = {"status": "ok" if ok else "degraded", "store_id": store_id, **info}
        if not ok:
            raise HTTPException(status_code=503, detail=body)
        return body

    @app.get("/api/v1/sessions", tags=["checkout"])
    def sessions(
        state: str | None = Query(default=None, pattern="^(open|closed)$"),
        limit: int = Query(default=100, ge=1, le=1000),
    ) -> dict[str, Any]:
        """Shopper sessions, newest first, each with its live cart (barcode -> quantity)."""
        items = read(lambda s: s.sessions(state=state, limit=limit))
        return {"items": items, "total": len(items)}

    @app.get("/api/v1/receipts", tags=["checkout"])
    def receipts(limit: int = Query(default=100, ge=1, le=1000)) -> dict[str, Any]:
        """Issued receipts, newest first; amounts are integers in minor units."""
        items = read(lambda s: s.receipts(limit=limit))
        return {"items": items, "total": len(items)}

    @app.get("/api/v1/receipts/{receipt_id}", tags=["checkout"])
    def receipt(receipt_id: str) -> dict[str, Any]:
        found = read(lambda s: s.receipt(receipt_id))
        if found is None:
            raise HTTPException(status_code=404, detail=f"no receipt {receipt_id}")
        return found

    @app.get("/api/v1/devices", tags=["devices"])
    def devices() -> dict[str, Any]:
        """Devices seen by the gateway: type, firmware, state, last seen, seq gaps."""
        items = read(lambda s: s.devices())
        return {"items": items, "total": len(items)}

    @app.get("/api/v1/dead-letters", tags=["devices"])
    def dead_letters(limit: int = Query(default=100, ge=1, le=1000)) -> dict[str, Any]:
        """Rejected inbound messages with the reason each was refused."""
        items = read(lambda s: s.dead_letters(limit=limit))
        return {"items": items, "total": read(lambda s: s.dead_letter_count())}

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def index(request: Request) -> HTMLResponse:
        open_sessions = read(lambda s: s.sessions(state="open", limit=50))
        recent = read(lambda s: s.receipts(limit=20))
        return _TEMPLATES.TemplateResponse(
            request,
            "index.html",
            {"store_id": store_id, "sessions": open_sessions, "receipts": recent},
        )

    return app
