"""The planogram: which product lies on which plate of which shelf, and what it weighs.

Shared by the gateway (product inference, prices) and the store simulator
(what a shopper can take).  Loaded from YAML; strict, because it is our own data.
"""

from __future__ import annotations

from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, model_validator

from devices.protocol import DeviceId


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Product(_Strict):
    barcode: str = Field(pattern=r"^[0-9A-Za-z-]{1,32}$")
    name: str = Field(min_length=1)
    unit_weight_g: float = Field(ge=0, description="0 when unknown: weight cannot tell it")
    weight_sd_g: float = Field(default=3.0, ge=0)
    price_minor: int = Field(ge=0, description="price in minor units (cents)")


class Plate(_Strict):
    plate: int = Field(ge=0, le=63)
    barcode: str = Field(description="the product placed here")
    also: tuple[str, ...] = Field(
        default=(), description="other products that share this plate (real stores mix)"
    )
    stock: int = Field(default=0, ge=0, description="units of `barcode` on the plate at start")
    restock_at: int | None = Field(
        default=None,
        ge=0,
        description="restock alert when the lane of `barcode` on this shelf holds this many "
        "units or fewer (default: the gateway's restock.default_share of its stock)",
    )
    x: float | None = Field(default=None, description="plate centre on the floor plan, metres")
    y: float | None = None
    z: float | None = Field(default=None, description="plate height above the floor, metres")

    @property
    def barcodes(self) -> tuple[str, ...]:
        return (self.barcode, *self.also)


class Shelf(_Strict):
    device_id: DeviceId
    plates: list[Plate] = Field(default_factory=list, description="plates with products")
    plate_total: int | None = Field(
        default=None, ge=1, le=64, description="physical plates, when some hold nothing"
    )

    @model_validator(mode="after")
    def _unique_plates(self) -> Shelf:
        numbers = [p.plate for p in self.plates]
        if len(numbers) != len(set(numbers)):
            raise ValueError(f"shelf {self.device_id}: plate numbers repeat")
        return self

    @property
    def plate_count(self) -> int:
        used = max((p.plate for p in self.plates), default=-1) + 1
        return max(used, self.plate_total or 0)


class Facing(_Strict):
    """A product's place: the plates one of its rows stands on (often more than one)."""

    shelf: DeviceId
    barcode: str
    plates: tuple[int, ...] = Field(min_length=1)


class Planogram(_Strict):
    version: int = Field(default=1, ge=1)
    currency: str = Field(default="EUR", pattern=r"^[A-Z]{3}$")
    products: list[Product] = Field(min_length=1)
    shelves: list[Shelf] = Field(min_length=1)
    facings: list[Facing] = Field(
        default_factory=list,
        description="rows spanning several plates; without them every plate is its own row",
    )

    @model_validator(mode="after")
    def _consistent(self) -> Planogram:
        barcodes = [p.barcode for p in self.products]
        if len(barcodes) != len(set(barcodes)):
            raise ValueError("product barcodes repeat")
        known = set(barcodes)
        for shelf in self.shelves:
            for plate in shelf.plates:
                for barcode in plate.barcodes:
                    if barcode not in known:
                        raise ValueError(
                            f"shelf {shelf.device_id} plate {plate.plate}: "
                            f"unknown barcode {barcode!r}"
                        )
        ids = [s.device_id for s in self.shelves]
        if len(ids) != len(set(ids)):
            raise ValueError("shelf device ids repeat")
        return self

    def product(self, barcode: str) -> Product:
        for p in self.products:
            if p.barcode == barcode:
                return p
        raise KeyError(barcode)

    def shelf(self, device_id: str) -> Shelf:
        for s in self.shelves:
            if s.device_id == device_id:
                return s
        raise KeyError(device_id)


def load_planogram(path: Path) -> Planogram:
    with path.open(encoding="utf-8") as fh:
        data = yaml.safe_load(fh)
    return Planogram.model_validate(data)
