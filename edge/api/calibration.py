"""Load-cell calibration of shelf plates: the guided flow, and factors by command.

Guided (staff token for every POST): ``start`` -> empty the plate -> ``tare``
(waits for the plate to settle) -> put a known weight on it -> ``span`` with
``known_g`` -> put the products back -> ``finish``; ``cancel`` at any step.
By command: ``PUT`` sets ``tare_raw`` and ``span`` directly, ``DELETE`` forgets
them (the plate's readings are taken as grams again).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Path
from pydantic import BaseModel, ConfigDict, Field

from edge.api.deps import (
    ApiContext,
    Ctx,
    StaffActions,
    gateway_actions,
    require_staff,
    require_store_reader,
)

router = APIRouter(
    prefix="/api/v1/calibration",
    tags=["calibration"],
    dependencies=[Depends(require_store_reader)],
)

Plate = Annotated[int, Path(ge=0, le=63)]


class KnownWeight(BaseModel):
    model_config = ConfigDict(extra="forbid")

    known_g: float = Field(gt=0, le=1_000_000, description="the test weight on the plate, g")


class Factors(BaseModel):
    """``grams = (raw - tare_raw) * span``."""

    model_config = ConfigDict(extra="forbid")

    tare_raw: float = Field(allow_inf_nan=False, description="raw reading of the empty plate")
    span: float = Field(allow_inf_nan=False, description="grams per raw unit (not 0)")
    staff: str = Field(default="staff", max_length=64)


def _act(ctx: ApiContext, action: Callable[[StaffActions], dict[str, Any]]) -> dict[str, Any]:
    actions = gateway_actions(ctx)
    try:
        return action(actions)
    except LookupError as exc:
        raise HTTPException(status_code=404, detail=str(exc)) from None
    except (TimeoutError, ValueError) as exc:  # wrong step, plate not settled in time
        raise HTTPException(status_code=409, detail=str(exc)) from None


@router.get("")
def calibrations(ctx: Ctx) -> dict[str, Any]:
    """The stored factors of every calibrated plate (others read raw as grams)."""
    items = ctx.read(lambda s: s.calibrations())
    return {"items": items, "total": len(items)}


@router.get("/{device_id}/{plate}")
def status(ctx: Ctx, device_id: str, plate: Plate) -> dict[str, Any]:
    """The plate's step in the guided flow, what to do next, and its stored factors."""
    if ctx.actions is None:
        factors = ctx.read(lambda s: s.calibration(device_id, plate))
        return {"device_id": device_id, "plate": plate, "step": None, "factors": factors}
    return _act(ctx, lambda a: a.calibrate(device_id, plate, "status"))


@router.post("/{device_id}/{plate}/span", dependencies=[Depends(require_staff)])
def span(ctx: Ctx, device_id: str, plate: Plate, body: KnownWeight) -> dict[str, Any]:
    """Measure the known weight on the plate; the new factors are saved and applied."""
    return _act(ctx, lambda a: a.calibrate(device_id, plate, "span", body.known_g))


@router.post("/{device_id}/{plate}/{action}", dependencies=[Depends(require_staff)])
def step(
    ctx: Ctx,
    device_id: str,
    plate: Plate,
    action: Literal["start", "tare", "finish", "cancel"],
) -> dict[str, Any]:
    """``start`` (mutes the plate for checkout), ``tare`` (answers once the empty plate
    has settled; 409 if it does not in time), ``finish`` or ``cancel``."""
    return _act(ctx, lambda a: a.calibrate(device_id, plate, action))


@router.put("/{device_id}/{plate}", dependencies=[Depends(require_staff)])
def set_factors(ctx: Ctx, device_id: str, plate: Plate, body: Factors) -> dict[str, Any]:
    """Set the factors in one go (from a calibration done elsewhere)."""
    if body.span == 0:
        raise HTTPException(status_code=422, detail="span must not be 0")
    return _act(
        ctx,
        lambda a: a.set_calibration(device_id, plate, body.tare_raw, body.span, body.staff),
    )


@router.delete("/{device_id}/{plate}", dependencies=[Depends(require_staff)])
def forget_factors(ctx: Ctx, device_id: str, plate: Plate) -> dict[str, Any]:
    """Forget the plate's factors: its readings are taken as grams again."""
    return _act(ctx, lambda a: a.set_calibration(device_id, plate, None, None, "staff"))
