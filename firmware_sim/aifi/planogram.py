"""The AiFi ``planogram.json`` as a :class:`devices.layout.Planogram`.

Products keep their UPC as barcode; prices (dollars) become integer cents.  A
plate's ``barcode`` is the first product (in file order) with a facing on it,
``also`` the others.  Facings that name a plate the shelf does not have are
moved to the shelf's last plate (the data has one: g2-s5 plate 12 on a 9-plate
shelf) and reported in the notes.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from devices.layout import Facing, Planogram, Plate, Product, Shelf

#: Units of a plate's main product at the start of a case.
DEFAULT_STOCK = 8
CURRENCY = "USD"


def shelf_id(gondola: int, shelf: int) -> str:
    """The storeedge device id of an AiFi shelf, e.g. ``g1-s3``."""
    return f"g{gondola}-s{shelf}"


def weight_sd_g(unit_weight_g: float) -> float:
    return max(2.0, 0.02 * unit_weight_g)


@dataclass(frozen=True)
class PlanogramBuild:
    planogram: Planogram
    notes: tuple[str, ...]


def read_products(path: Path) -> list[dict[str, Any]]:
    with path.open(encoding="utf-8") as fh:
        products = json.load(fh)["products"]
    if not isinstance(products, list):
        raise ValueError(f"{path}: 'products' is not a list")
    return products


def build_planogram(
    products: list[dict[str, Any]],
    plate_counts: Mapping[str, int],
    plate_xy: Mapping[tuple[str, int], tuple[float, float]],
    plate_z: Mapping[tuple[str, int], float] | None = None,
) -> PlanogramBuild:
    """Products and per-plate placement.

    ``plate_counts`` are the physical plates per shelf (in shelf order) and
    ``plate_xy`` the world floor position of each (shelf id, plate) centre.
    """
    notes: list[str] = []
    models: list[Product] = []
    on_plate: dict[tuple[str, int], list[str]] = {}
    facings: list[Facing] = []
    for item in products:
        barcode = str(item["barcode"])
        weight = float(item["unit_weight_g"])
        models.append(
            Product(
                barcode=barcode,
                name=str(item["name"]),
                unit_weight_g=weight,
                weight_sd_g=weight_sd_g(weight),
                price_minor=round(float(item["price"]) * 100),
            )
        )
        for facing in item["facings"]:
            sid = shelf_id(int(facing["gondola"]), int(facing["shelf"]))
            if sid not in plate_counts:
                raise ValueError(f"product {barcode}: facing on unknown shelf {sid}")
            row: set[int] = set()
            for aifi_plate in facing["plates"]:
                plate = int(aifi_plate) - 1
                if plate >= plate_counts[sid]:
                    moved = plate_counts[sid] - 1
                    notes.append(
                        f"product {barcode}: facing {sid} plate {aifi_plate} does not exist "
                        f"({plate_counts[sid]} plates); placed on plate {moved + 1}"
                    )
                    plate = moved
                row.add(plate)
                codes = on_plate.setdefault((sid, plate), [])
                if barcode not in codes:
                    codes.append(barcode)
            facings.append(Facing(shelf=sid, barcode=barcode, plates=tuple(sorted(row))))

    shelves: list[Shelf] = []
    for sid in plate_counts:
        plates = [
            Plate(
                plate=p,
                barcode=codes[0],
                also=tuple(codes[1:]),
                stock=DEFAULT_STOCK,
                x=plate_xy[(sid, p)][0],
                y=plate_xy[(sid, p)][1],
                z=plate_z.get((sid, p)) if plate_z else None,
            )
            for (s, p), codes in sorted(on_plate.items())
            if s == sid
        ]
        if not plates:
            notes.append(f"shelf {sid}: no product faces it")
        shelves.append(Shelf(device_id=sid, plates=plates, plate_total=plate_counts[sid]))
    planogram = Planogram(currency=CURRENCY, products=models, shelves=shelves, facings=facings)
    return PlanogramBuild(planogram, tuple(notes))
