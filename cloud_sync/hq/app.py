"""HQ's HTTP API (FastAPI) and its fleet page.

Stores (``Authorization: Bearer <store API key>``):

* ``POST /api/v1/ingest``: a batch of outbox events (JSON, gzip allowed);
  idempotent by (store, event id); answers the ids HQ now holds.
* ``POST /api/v1/heartbeat``: backlog, versions, devices by state.
* ``GET /api/v1/sync?catalog=N&planogram=N&prices=N&config=N``: the newest
  document of each kind meant for the store, where newer than the version given.

Staff (``Authorization: Bearer $STOREEDGE_HQ_ADMIN_TOKEN``):

* ``GET /api/v1/fleet``: every store, its health (``ok``, ``degraded``,
  ``stale``, ``unknown``), last heartbeat, backlog, versions, devices.
* ``GET /api/v1/transactions?store_id=&limit=&offset=``: ``{"items", "total"}``.
* ``GET /api/v1/stock?barcode=``: that product per store, with transfer suggestions.
* ``GET /api/v1/stock/transfers``: every transfer suggestion.
* ``GET/POST /api/v1/stores``: the stores; a new one gets its API key (shown once).
* ``POST /api/v1/sync/{kind}``: publish a new version of a store's (``store_id``) or
  every store's catalog, prices, planogram or config; ``GET /api/v1/sync/documents``,
  ``GET /api/v1/sync/status``: what was published and what each store did with it.
* ``GET /api/v1/alerts``, ``/api/v1/adjustments``, ``/api/v1/devices?store_id=``:
  the stores' alerts, receipt adjustments (refunds, extra charges) and devices.

``GET /fleet``: the fleet page (asks for the admin token, keeps it in the tab).
"""

from __future__ import annotations

import logging
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Depends, FastAPI, Header, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.concurrency import run_in_threadpool

from cloud_sync.hq.auth import ADMIN_TOKEN_ENV, bearer, hash_key, is_admin, new_api_key
from cloud_sync.hq.db import HqDatabase
from cloud_sync.hq.fleet import BACKLOG_WARN_S, STALE_AFTER_S, fleet_store
from cloud_sync.hq.stock import DEFAULT_LOW, Transfer, low_of, suggest_transfers
from cloud_sync.wire import (
    ALL_STORES,
    API_PREFIX,
    BODY_MODELS,
    DOC_KINDS,
    HEARTBEAT_PATH,
    INGEST_PATH,
    SYNC_PATH,
    Fleet,
    GatewayHeartbeat,
    Ident,
    IngestAck,
    IngestBatch,
    PublishRequest,
    StoreKey,
    SyncChanges,
    SyncDocument,
)

log = logging.getLogger(__name__)

#: Largest request body accepted (as sent, compressed or not).
MAX_BODY_BYTES = 16 * 1024 * 1024
#: Largest JSON a gzip body may unpack to.
MAX_JSON_BYTES = 64 * 1024 * 1024

_UNAUTHORIZED = {"WWW-Authenticate": "Bearer"}


def wall_clock_ms() -> int:
    return int(time.time() * 1000)


class NewStore(BaseModel):
    model_config = ConfigDict(extra="forbid")

    store_id: Ident
    name: str | None = Field(default=None, max_length=200)


async def _read_json_body(request: Request) -> bytes:
    length = request.headers.get("content-length")
    if length and length.isdigit() and int(length) > MAX_BODY_BYTES:
        raise HTTPException(413, f"body over {MAX_BODY_BYTES} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise HTTPException(413, f"body over {MAX_BODY_BYTES} bytes")
        chunks.append(chunk)
    raw = b"".join(chunks)
    encoding = request.headers.get("content-encoding", "identity").strip().lower()
    if encoding in {"", "identity"}:
        return raw
    if encoding != "gzip":
        raise HTTPException(415, f"content encoding {encoding!r}: send gzip or nothing")
    inflater = zlib.decompressobj(wbits=31)
    try:
        out = inflater.decompress(raw, MAX_JSON_BYTES)
    except zlib.error as exc:
        raise HTTPException(400, f"body is not valid gzip: {exc}") from None
    if inflater.unconsumed_tail:
        raise HTTPException(413, f"body unpacks to over {MAX_JSON_BYTES} bytes")
    if not inflater.eof:
        raise HTTPException(400, "gzip body is truncated")
    return out


@dataclass(frozen=True)
class HqSettings:
    db: HqDatabase
    admin_token: str | None
    stale_after_s: float
    backlog_warn_s: float
    default_low: int
    clock_ms: Callable[[], int]


def create_app(
    db: HqDatabase,
    *,
    admin_token: str | None,
    stale_after_s: float = STALE_AFTER_S,
    backlog_warn_s: float = BACKLOG_WARN_S,
    default_low: int = DEFAULT_LOW,
    clock_ms: Callable[[], int] = wall_clock_ms,
) -> FastAPI:
    app = FastAPI(title="storeedge HQ", version="1", docs_url="/docs", redoc_url=None)
    app.state.hq = HqSettings(
        db=db,
        admin_token=admin_token or None,
        stale_after_s=stale_after_s,
        backlog_warn_s=backlog_warn_s,
        default_low=default_low,
        clock_ms=clock_ms,
    )
    app.include_router(stores_router)
    app.include_router(staff_router)
    app.include_router(pages_router)
    return app


# --------------------------------------------------------------------------- who calls


def settings(request: Request) -> HqSettings:
    hq: HqSettings = request.app.state.hq
    return hq


Settings = Annotated[HqSettings, Depends(settings)]


def store_key(hq: Settings, authorization: Annotated[str | None, Header()] = None) -> str:
    """The store whose API key came with the request."""
    key = bearer(authorization)
    if key is None:
        raise HTTPException(401, "send the store's API key as a Bearer token", _UNAUTHORIZED)
    store_id = hq.db.store_for_key(hash_key(key))
    if store_id is None:
        log.warning("hq: a request with an unknown store key was refused")
        raise HTTPException(401, "unknown API key", _UNAUTHORIZED)
    return store_id


def admin(hq: Settings, authorization: Annotated[str | None, Header()] = None) -> None:
    if hq.admin_token is None:
        raise HTTPException(503, f"no admin token configured: set {ADMIN_TOKEN_ENV}")
    if not is_admin(bearer(authorization), hq.admin_token):
        raise HTTPException(401, "the admin token is required", _UNAUTHORIZED)


StoreId = Annotated[str, Depends(store_key)]

stores_router = APIRouter()
staff_router = APIRouter(dependencies=[Depends(admin)])
pages_router = APIRouter(include_in_schema=False)


# --------------------------------------------------------------------------- stores' side


_StoreBody = TypeVar("_StoreBody", IngestBatch, GatewayHeartbeat)


async def _store_body(request: Request, model: type[_StoreBody], store_id: str) -> _StoreBody:
    """The request's body as ``model``, sent by the store whose key it carries."""
    try:
        body = model.model_validate_json(await _read_json_body(request))
    except ValidationError as exc:
        raise HTTPException(422, _errors(exc)) from None
    if body.store_id != store_id:
        raise HTTPException(403, f"this key belongs to store {store_id!r}")
    return body


@stores_router.post(INGEST_PATH, response_model=IngestAck)
async def ingest(request: Request, store_id: StoreId, hq: Settings) -> IngestAck:
    batch = await _store_body(request, IngestBatch, store_id)
    ack = await run_in_threadpool(hq.db.ingest, store_id, batch.events, hq.clock_ms())
    log.debug(
        "hq: store %s batch %s: %d stored, %d duplicates",
        store_id,
        batch.batch_id,
        ack.stored,
        ack.duplicates,
    )
    return ack


@stores_router.post(HEARTBEAT_PATH)
async def heartbeat(request: Request, store_id: StoreId, hq: Settings) -> dict[str, bool]:
    beat = await _store_body(request, GatewayHeartbeat, store_id)
    await run_in_threadpool(hq.db.record_heartbeat, beat, hq.clock_ms())
    return {"ok": True}


VersionQuery = Annotated[int, Query(ge=0)]


@stores_router.get(SYNC_PATH, response_model=SyncChanges)
def sync_changes(
    store_id: StoreId,
    hq: Settings,
    catalog: VersionQuery = 0,
    planogram: VersionQuery = 0,
    prices: VersionQuery = 0,
    config: VersionQuery = 0,
) -> SyncChanges:
    since = {"catalog": catalog, "planogram": planogram, "prices": prices, "config": config}
    return SyncChanges(store_id=store_id, documents=hq.db.changes_for(store_id, since))


# --------------------------------------------------------------------------- staff's side


@staff_router.get(f"{API_PREFIX}/fleet", response_model=Fleet)
def fleet(hq: Settings) -> Fleet:
    now = hq.clock_ms()
    sync = hq.db.sync_overview()
    return Fleet(
        now_ms=now,
        stale_after_s=hq.stale_after_s,
        stores=[
            fleet_store(r, now, hq.stale_after_s, hq.backlog_warn_s, sync.get(r.store_id))
            for r in hq.db.fleet()
        ],
    )


@staff_router.post(f"{SYNC_PATH}/{{kind}}", status_code=201, response_model=SyncDocument)
def publish(hq: Settings, kind: str, request: PublishRequest) -> SyncDocument:
    """Publish a new version of ``kind`` for one store or (no ``store_id``) for all."""
    if kind not in DOC_KINDS:
        raise HTTPException(404, f"no document kind {kind!r}: one of {', '.join(DOC_KINDS)}")
    model = BODY_MODELS.get(kind)
    if model is not None:
        try:
            model.model_validate(request.body)
        except ValidationError as exc:
            raise HTTPException(422, _errors(exc)) from None
    scope = request.store_id or ALL_STORES
    try:
        doc = hq.db.publish(kind, scope, request.body, request.note, hq.clock_ms())
    except LookupError as exc:
        raise HTTPException(404, str(exc)) from None
    log.info("hq: published %s version %d for %s", kind, doc.version, scope)
    return doc


@staff_router.get(f"{SYNC_PATH}/documents")
def documents(
    hq: Settings,
    kind: str | None = None,
    store_id: str | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> dict[str, list[SyncDocument]]:
    """Published documents, newest first (``store_id``: those for that store alone;
    ``*``: those for every store)."""
    return {"items": hq.db.documents(kind, store_id, limit)}


@staff_router.get(f"{SYNC_PATH}/status")
def sync_status(hq: Settings, store_id: str | None = None) -> dict[str, Any]:
    """Per store and kind: published, running, last outcome; and every report."""
    overview = hq.db.sync_overview()
    if store_id is not None:
        overview = {store_id: overview.get(store_id, {})}
    return {
        "stores": {
            s: {k: v.model_dump() for k, v in kinds.items()} for s, kinds in overview.items()
        },
        "reports": hq.db.sync_reports(store_id),
    }


@staff_router.get(f"{API_PREFIX}/alerts")
def alerts(hq: Settings, store_id: str | None = None, active: bool = False) -> dict[str, Any]:
    return {"items": hq.db.alerts(store_id, active_only=active)}


@staff_router.get(f"{API_PREFIX}/adjustments")
def adjustments(hq: Settings, store_id: str | None = None) -> dict[str, Any]:
    """Extra charges and refunds made to issued receipts (signed minor units)."""
    return {"items": hq.db.adjustments(store_id)}


@staff_router.get(f"{API_PREFIX}/devices")
def devices(hq: Settings, store_id: Annotated[str, Query(min_length=1)]) -> dict[str, Any]:
    """A store's devices as its gateway reported them (state changes, heartbeats)."""
    return {"store_id": store_id, "items": hq.db.devices(store_id)}


@staff_router.get(f"{API_PREFIX}/transactions")
def transactions(
    hq: Settings,
    store_id: str | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> dict[str, Any]:
    items, total = hq.db.transactions(store_id, limit, offset)
    return {"items": items, "total": total, "limit": limit, "offset": offset}


@staff_router.get(f"{API_PREFIX}/stock")
def stock(hq: Settings, barcode: Annotated[str, Query(min_length=1)]) -> dict[str, Any]:
    rows = hq.db.stock(barcode)
    low = hq.default_low
    stores = [
        {
            "store_id": r.store_id,
            "name": r.name,
            "quantity": r.quantity,
            "low_threshold": r.low_threshold,
            "low": r.quantity <= low_of(r, low),
            "ts_ms": r.ts_ms,
        }
        for r in rows
    ]
    return {
        "barcode": barcode,
        "stores": stores,
        "total_quantity": sum(r.quantity for r in rows),
        "transfers": [t.model_dump() for t in suggest_transfers(rows, low)],
    }


@staff_router.get(f"{API_PREFIX}/stock/transfers")
def transfers(hq: Settings, barcode: str | None = None) -> dict[str, list[Transfer]]:
    return {"items": suggest_transfers(hq.db.stock(barcode), hq.default_low)}


@staff_router.get(f"{API_PREFIX}/stores")
def stores(hq: Settings) -> dict[str, list[dict[str, Any]]]:
    return {
        "items": [
            {"store_id": s.store_id, "name": s.name, "created_ms": s.created_ms}
            for s in hq.db.stores()
        ]
    }


@staff_router.post(f"{API_PREFIX}/stores", status_code=201)
def add_store(hq: Settings, body: NewStore) -> StoreKey:
    key = new_api_key()
    try:
        hq.db.add_store(body.store_id, body.name, hash_key(key), hq.clock_ms())
    except ValueError as exc:
        raise HTTPException(409, str(exc)) from None
    return StoreKey(store_id=body.store_id, api_key=key)


# --------------------------------------------------------------------------- pages


@cache
def _page() -> str:
    return (resources.files("cloud_sync.hq") / "templates" / "fleet.html").read_text("utf-8")


@pages_router.get("/")
def root() -> RedirectResponse:
    return RedirectResponse("/fleet")


@pages_router.get("/fleet", response_class=HTMLResponse)
def fleet_page() -> HTMLResponse:
    return HTMLResponse(_page())


@pages_router.get("/healthz")
def healthz() -> dict[str, bool]:
    return {"ok": True}


def _errors(exc: ValidationError) -> list[dict[str, Any]]:
    return [{"loc": list(e["loc"]), "msg": e["msg"]} for e in exc.errors()[:20]]
