"""What the routers need: a read-only view of the store, staff actions, auth."""

from __future__ import annotations

import hmac
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Protocol, TypeVar

from fastapi import Depends, Header, HTTPException, Request

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


def require_staff(ctx: Ctx, authorization: Annotated[str | None, Header()] = None) -> None:
    if ctx.staff_token is None:
        raise HTTPException(status_code=403, detail="no staff token is configured")
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(token, ctx.staff_token):
        raise HTTPException(
            status_code=401,
            detail="staff bearer token required",
            headers={"WWW-Authenticate": "Bearer"},
        )
