"""The shopper app's API: sign-up and check-in, live cart, disputes, guidance, online
orders and payments.  A shopper sees only their own sessions, receipts, disputes,
orders and payments; staff and HQ see the store's.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, HTTPException, Path, Query
from pydantic import BaseModel, ConfigDict, Field

from edge.api.deps import (
    AnyCaller,
    ApiContext,
    Caller,
    Ctx,
    Shopper,
    StaffOrHq,
    public,
    require_staff,
)
from edge.shoppers.service import OutOfStock, ShopperService
from edge.store.repo import Store

router = APIRouter(prefix="/api/v1", tags=["shoppers"])

Barcode = Annotated[str, Path(pattern=r"^[0-9A-Za-z-]{1,32}$")]
Staff = Annotated[Caller, Depends(require_staff)]


def _service(ctx: ApiContext) -> ShopperService:
    if ctx.shoppers is None:
        raise HTTPException(status_code=503, detail="the gateway is not running")
    return ctx.shoppers


def _scope(caller: Caller) -> str | None:
    """The shopper whose rows a caller may read; None: all (staff, HQ)."""
    return caller.shopper_id


# ---------------------------------------------------------------------- identity


@router.post("/shoppers", status_code=201, dependencies=[Depends(public)])
def register(ctx: Ctx) -> dict[str, Any]:
    """Sign up an app shopper: their id and bearer token (public: the app's first call)."""
    return _service(ctx).register_shopper()


@router.post("/checkin", status_code=201)
def checkin(ctx: Ctx, caller: Shopper) -> dict[str, Any]:
    """A signed, short-lived, single-use check-in token: shown as a QR code at the entry
    gate, it becomes the session's token (and the receipt's topic)."""
    assert caller.shopper_id is not None
    return _service(ctx).issue_checkin(caller.shopper_id)


@router.get("/cart")
def cart(ctx: Ctx, caller: Shopper) -> dict[str, Any]:
    """The shopper's live cart in the store (their open session), priced."""
    service = _service(ctx)
    shopper = caller.shopper_id
    assert shopper is not None

    def read(s: Store) -> dict[str, Any]:
        tokens = s.shopper_session_tokens(shopper, "open", 1)
        if not tokens:
            return {"session_token": None, "lines": [], "total_minor": 0}
        lines = []
        for barcode, quantity in s.cart(tokens[0]).items():
            product = service.planogram.product(barcode)
            price = s.price_minor(barcode, product.price_minor)
            lines.append(
                {
                    "barcode": barcode,
                    "name": product.name,
                    "quantity": quantity,
                    "unit_price_minor": price,
                    "line_total_minor": price * quantity,
                }
            )
        return {
            "session_token": tokens[0],
            "lines": lines,
            "total_minor": sum(line["line_total_minor"] for line in lines),
            "currency": service.planogram.currency,
        }

    return ctx.read(read)


# ---------------------------------------------------------------------- disputes


class DisputeRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    quantity: int | None = Field(default=None, ge=1, le=50, description="default: the line's")
    reason: str = Field(min_length=1, max_length=300)


@router.post("/receipts/{receipt_id}/lines/{line_no}/dispute", status_code=201)
def dispute(
    ctx: Ctx,
    caller: Shopper,
    receipt_id: str,
    line_no: Annotated[int, Path(ge=1, le=1000)],
    body: DisputeRequest,
) -> dict[str, Any]:
    """Dispute a line of one's own receipt: it lands in staff's review queue; staff
    resolving it with the product refund it (the refund is paid back to the card)."""
    assert caller.shopper_id is not None
    try:
        return _service(ctx).dispute(
            caller.shopper_id, receipt_id, line_no, body.quantity, body.reason
        )
    except LookupError as exc:
        raise HTTPException(status_code=404, detail=str(exc.args[0])) from None
    except ValueError as exc:
        raise HTTPException(status_code=409, detail=str(exc)) from None


@router.get("/disputes")
def disputes(
    ctx: Ctx, caller: AnyCaller, limit: int = Query(default=100, ge=1, le=1000)
) -> dict[str, Any]:
    """Disputes with their state (open, refunded, resolved, rejected); a shopper's own."""
    items = ctx.read(lambda s: s.disputes(shopper_id=_scope(caller), limit=limit))
    return {"items": items, "total": len(items)}


# ---------------------------------------------------------------------- guidance


@router.get("/products")
def products(
    ctx: Ctx,
    _caller: AnyCaller,
    q: str = Query(min_length=1, max_length=64, description="name words or a barcode"),
    limit: int = Query(default=20, ge=1, le=100),
) -> dict[str, Any]:
    """Search by name or barcode: price, stock, and where each product is (gondola,
    shelf, plate, side, floor coordinates, walking distance from the entrance)."""
    service = _service(ctx)
    items = ctx.read(lambda s: service.search(s, q, limit))
    return {"items": items, "total": len(items)}


@router.get("/products/{barcode}")
def product(ctx: Ctx, _caller: AnyCaller, barcode: Barcode) -> dict[str, Any]:
    """One product, where it is, and walking directions from the entrance."""
    service = _service(ctx)
    try:
        return ctx.read(lambda s: service.product_info(s, barcode, with_directions=True))
    except LookupError as exc:
        raise HTTPException(status_code=404, detail=str(exc.args[0])) from None


@router.get("/recommendations")
def recommendations(
    ctx: Ctx,
    _caller: AnyCaller,
    barcode: Annotated[list[str] | None, Query(max_length=50)] = None,
    limit: int = Query(default=5, ge=1, le=50),
) -> dict[str, Any]:
    """Frequently bought together with ``barcode`` (this store's receipts) and what is
    popular now (the last two hours)."""
    service = _service(ctx)
    return ctx.read(lambda s: service.recommendations(s, barcode or [], limit))


class ShoppingList(BaseModel):
    model_config = ConfigDict(extra="forbid")

    items: list[str] = Field(min_length=1, max_length=100, description="barcodes")


@router.post("/route")
def route(ctx: Ctx, _caller: AnyCaller, body: ShoppingList) -> dict[str, Any]:
    """A shopping list as the shortest walk found: entrance -> each product -> exit
    (nearest neighbour + 2-opt over walking distances around the shelves)."""
    return _service(ctx).route(body.items)


# ---------------------------------------------------------------------- online orders


class OrderRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    items: dict[str, Annotated[int, Field(ge=1, le=50)]] = Field(
        min_length=1, max_length=100, description="barcode -> quantity"
    )
    client_ref: str | None = Field(
        default=None,
        min_length=1,
        max_length=64,
        description="the app's key for this order: sending it again returns the same order",
    )


@router.post("/orders", status_code=201)
def place_order(ctx: Ctx, caller: Shopper, body: OrderRequest) -> dict[str, Any]:
    """Order online, pick up in store: stock is checked (409 names what is short), the
    order is charged, and staff get a pick list in walking order."""
    assert caller.shopper_id is not None
    try:
        return _service(ctx).place_order(caller.shopper_id, dict(body.items), body.client_ref)
    except OutOfStock as exc:
        raise HTTPException(status_code=409, detail={"short": exc.lines}) from None
    except LookupError as exc:
        raise HTTPException(status_code=404, detail=str(exc.args[0])) from None


@router.get("/orders")
def orders(
    ctx: Ctx,
    caller: AnyCaller,
    state: str | None = Query(default=None, pattern="^(placed|ready|collected)$"),
    limit: int = Query(default=100, ge=1, le=1000),
) -> dict[str, Any]:
    """Orders, newest first, each with its pick list (``route.stops``, in walking order);
    a shopper sees their own."""
    items = ctx.read(lambda s: s.orders(state=state, shopper_id=_scope(caller), limit=limit))
    return {"items": items, "total": len(items)}


@router.get("/orders/{order_id}")
def order(ctx: Ctx, caller: AnyCaller, order_id: str) -> dict[str, Any]:
    """One order: state, lines, pick list and payment; another shopper's is not found."""

    def read(s: Store) -> dict[str, Any] | None:
        found = s.order(order_id)
        if found is None or (
            caller.shopper_id is not None and found["shopper_id"] != caller.shopper_id
        ):
            return None
        found["payments"] = s.payments(order_id=order_id)
        return found

    found = ctx.read(read)
    if found is None:
        raise HTTPException(status_code=404, detail=f"no order {order_id}")
    return found


def _advance(ctx: ApiContext, order_id: str, state: str, staff: str) -> dict[str, Any]:
    try:
        return _service(ctx).advance_order(order_id, state, staff)
    except LookupError as exc:
        raise HTTPException(status_code=404, detail=str(exc.args[0])) from None
    except ValueError as exc:
        raise HTTPException(status_code=409, detail=str(exc)) from None


StaffName = Annotated[str, Body(embed=True, max_length=64)]


@router.post("/orders/{order_id}/ready")
def order_ready(
    ctx: Ctx, _caller: Staff, order_id: str, staff: StaffName = "staff"
) -> dict[str, Any]:
    """Staff picked the order: the shopper is told (MQTT ``gateway/order/{shopper}``)."""
    return _advance(ctx, order_id, "ready", staff)


@router.post("/orders/{order_id}/collected")
def order_collected(
    ctx: Ctx, _caller: Staff, order_id: str, staff: StaffName = "staff"
) -> dict[str, Any]:
    """The shopper picked the order up."""
    return _advance(ctx, order_id, "collected", staff)


# ---------------------------------------------------------------------- payments


@router.get("/payments")
def payments(
    ctx: Ctx, caller: AnyCaller, limit: int = Query(default=200, ge=1, le=1000)
) -> dict[str, Any]:
    """Charges and refunds with their idempotency keys and states; a shopper's own."""
    items = ctx.read(lambda s: s.payments(shopper_id=_scope(caller), limit=limit))
    return {"items": items, "total": len(items)}


@router.get("/payments/pending")
def pending_payments(ctx: Ctx, _caller: StaffOrHq) -> dict[str, Any]:
    """Payments the provider has not confirmed yet (retried every few seconds)."""
    items = ctx.read(lambda s: s.pending_payments(limit=1000))
    return {"items": items, "total": len(items)}
