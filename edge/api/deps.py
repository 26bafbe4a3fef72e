"""What the routers need: a read-only view of the store, staff actions, auth."""

from __future__ import annotations

import hmac
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Protocol, TypeVar

import fastapi.routing
from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from edge.shoppers.service import ShopperService
from edge.shoppers.tokens import TokenInvalid, TokenKind, TokenSigner
from edge.store.repo import Store

T = TypeVar("T")


class StaffActions(Protocol):
    """What staff can ask of the running gateway (``edge.app.Gateway``)."""

    def resolve_review(self, review_id: str, **decision: Any) -> dict[str, Any]: ...

    def set_desired(self, device_id: str, changes: dict[str, Any]) -> dict[str, Any]: ...

    def calibrate(
        self, device_id: str, plate: int, action: str, known_g: float | None = None
    ) -> dict[str, Any]: ...

    def set_calibration(
        self, device_id: str, plate: int, tare_raw: float | None, span: float | None, by: str
    ) -> dict[str, Any]: ...

    def ack_alert(self, alert_id: str, by: str) -> dict[str, Any]: ...

    def register_firmware(self, manifest: dict[str, Any], image: bytes) -> dict[str, Any]: ...

    def create_rollout(
        self,
        device_type: str,
        version: str,
        *,
        canary_share: float | None = None,
        devices: list[str] | None = None,
        canary: list[str] | None = None,
    ) -> dict[str, Any]: ...

    def halt_rollout(self, rollout_id: str, reason: str) -> dict[str, Any]: ...

    def set_price(self, barcode: str, price_minor: int) -> dict[str, Any]: ...


@dataclass
class ApiContext:
    db_path: Path
    store_id: str
    health: Callable[[], dict[str, Any]] | None = None
    actions: StaffActions | None = None
    staff_token: str | None = None
    hq_token: str | None = None
    #: signs and checks the shopper app's bearer tokens and check-in QR codes
    signer: TokenSigner | None = None
    #: what shoppers (and staff, for orders and disputes) ask of the running gateway
    shoppers: ShopperService | None = None
    _store: Store | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def read(self, fn: Callable[[Store], T]) -> T:
        """Run a read on the API's own read-only connection (opened on first use)."""
        with self._lock:
            if self._store is None:
                self._store = Store.open(self.db_path, readonly=True)
            store = self._store
        with store.reading():
            return fn(store)


def context(request: Request) -> ApiContext:
    ctx: ApiContext = request.app.state.ctx
    return ctx


Ctx = Annotated[ApiContext, Depends(context)]


def gateway_actions(ctx: ApiContext) -> StaffActions:
    """The running gateway's staff actions; 503 when the API runs without one."""
    if ctx.actions is None:
        raise HTTPException(status_code=503, detail="the gateway is not running")
    return ctx.actions


# ---------------------------------------------------------------------- roles and tokens


class Role(StrEnum):
    STAFF = "staff"
    HQ = "hq"
    SHOPPER = "shopper"


#: OpenAPI extensions on every operation: the roles it admits, or that it is public.
ROLES_KEY = "x-roles"
PUBLIC_KEY = "x-public"
#: The browser dashboard may send the bearer token as this cookie instead of a header.
TOKEN_COOKIE = "storeedge_token"  # noqa: S105 - a cookie name, not a secret

_ROLES_ATTR = "__storeedge_roles__"
_bearer_scheme = HTTPBearer(
    auto_error=False,
    description="staff or HQ token from the configuration, or a shopper token from "
    "POST /api/v1/shoppers",
)


@dataclass(frozen=True)
class Caller:
    """Who is asking: a role, and for a shopper which one."""

    role: Role
    subject: str  # "staff", "hq", or the shopper's id

    @property
    def shopper_id(self) -> str | None:
        return self.subject if self.role is Role.SHOPPER else None


def _unauthorized(detail: str) -> HTTPException:
    return HTTPException(status_code=401, detail=detail, headers={"WWW-Authenticate": "Bearer"})


def _configured(ctx: ApiContext, role: Role) -> bool:
    if role is Role.STAFF:
        return ctx.staff_token is not None
    if role is Role.HQ:
        return ctx.hq_token is not None
    return ctx.signer is not None


def identify(ctx: ApiContext, token: str) -> Caller:
    """The caller a bearer token stands for; 401 if it stands for nobody."""
    for role, secret in ((Role.STAFF, ctx.staff_token), (Role.HQ, ctx.hq_token)):
        if secret is not None and hmac.compare_digest(token.encode(), secret.encode()):
            return Caller(role, role.value)
    if ctx.signer is not None and token.startswith(f"{TokenKind.SHOPPER.value}."):
        try:
            claims = ctx.signer.verify(TokenKind.SHOPPER, token, now_ms=int(time.time() * 1000))
        except TokenInvalid as exc:
            raise _unauthorized(f"shopper token refused: {exc}") from None
        subject = claims.get("sub")
        if isinstance(subject, str) and subject:
            return Caller(Role.SHOPPER, subject)
    raise _unauthorized("a valid bearer token is required")


def require_role(*roles: Role) -> Callable[..., Caller]:
    """A dependency admitting only ``roles``; it returns the ``Caller``.

    No token or one that stands for nobody: 401.  A token of another role: 403.
    None of ``roles`` has a token configured in this gateway: 403.  The roles
    are written into the operation's OpenAPI entry as ``x-roles`` (see
    ``document_roles``), where the access test reads them.
    """
    allowed = frozenset(roles)
    if not allowed:
        raise ValueError("name at least one role (or use `public` for a public route)")

    def dependency(
        ctx: Ctx,
        request: Request,
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer_scheme)],
    ) -> Caller:
        if not any(_configured(ctx, role) for role in allowed):
            names = ", ".join(sorted(role.value for role in allowed))
            raise HTTPException(status_code=403, detail=f"no token is configured for {names}")
        if credentials is not None:
            token: str | None = credentials.credentials
        else:
            token = request.cookies.get(TOKEN_COOKIE)
        if not token:
            raise _unauthorized("a bearer token is required")
        caller = identify(ctx, token)
        if caller.role not in allowed:
            raise HTTPException(
                status_code=403, detail=f"the {caller.role.value} role may not do this"
            )
        return caller

    setattr(dependency, _ROLES_ATTR, allowed)
    dependency.__name__ = "require_" + "_or_".join(sorted(role.value for role in allowed))
    return dependency


def public() -> None:
    """Declares a route public on purpose (``dependencies=[Depends(public)]``)."""


setattr(public, _ROLES_ATTR, frozenset())

#: Staff only (kept under its old name: staff actions).
require_staff = require_role(Role.STAFF)
#: Store-wide reads: staff and HQ.
require_store_reader = require_role(Role.STAFF, Role.HQ)
StaffOrHq = Annotated[Caller, Depends(require_store_reader)]
AnyCaller = Annotated[Caller, Depends(require_role(Role.STAFF, Role.HQ, Role.SHOPPER))]
Shopper = Annotated[Caller, Depends(require_role(Role.SHOPPER))]


def route_roles(route: Any) -> frozenset[Role] | None:
    """The roles a route admits (every role dependency applies: the intersection),
    an empty set for a route declared public, None for one that declares nothing."""
    found: frozenset[Role] | None = None
    pending = [route.dependant]
    while pending:
        dependant = pending.pop()
        declared = getattr(dependant.call, _ROLES_ATTR, None)
        if declared is not None:
            found = declared if found is None else found & declared
        pending.extend(dependant.dependencies)
    return found


def _api_routes(app: FastAPI) -> list[Any]:
    """Every API route as served, with the dependencies of the routers it is in."""
    contexts = getattr(fastapi.routing, "iter_route_contexts", None)
    routes = list(contexts(app.routes)) if contexts is not None else list(app.routes)
    return [r for r in routes if getattr(r, "dependant", None) is not None]


def document_roles(app: FastAPI) -> None:
    """Write every operation's roles (``x-roles``) or ``x-public`` into the OpenAPI
    document, computed from the routes whenever the document is asked for (so
    routers included later are covered too)."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        schema = build()
        paths = schema.get("paths", {})
        for route in _api_routes(app):
            roles = route_roles(route)
            if roles is None or not getattr(route, "include_in_schema", True):
                continue
            for method in getattr(route, "methods", None) or ():
                operation = paths.get(route.path_format, {}).get(method.lower())
                if operation is None:
                    continue
                if roles:
                    operation[ROLES_KEY] = sorted(role.value for role in roles)
                else:
                    operation[PUBLIC_KEY] = True
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
