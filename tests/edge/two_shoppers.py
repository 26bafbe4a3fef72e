"""Two shoppers at one shelf: a planogram of three plates and their hand frames."""

from pathlib import Path

from devices.layout import Planogram
from tests.edge.helpers import Bench

JUICE, BREAD, CIDER, TWIN, HALF = "100", "200", "300", "101", "102"
Z = 1.0


def planogram(
    xs: tuple[float, float, float], *, also: dict[int, list[str]] | None = None
) -> Planogram:
    """Juice on plate 0, bread on plate 1, cider on plate 2, at ``xs``; ``also``: more
    products on a plate (``TWIN``: a second juice of the same weight; ``HALF``: 500 g,
    as much as a juice and a bread together in two units)."""
    products = [
        {"barcode": JUICE, "name": "juice", "unit_weight_g": 400, "price_minor": 250},
        {"barcode": BREAD, "name": "bread", "unit_weight_g": 600, "price_minor": 300},
        {"barcode": CIDER, "name": "cider", "unit_weight_g": 850, "price_minor": 280},
        {"barcode": TWIN, "name": "apple juice", "unit_weight_g": 400, "price_minor": 260},
        {"barcode": HALF, "name": "melon", "unit_weight_g": 500, "price_minor": 400},
    ]
    plates = [
        {"plate": i, "barcode": b, "stock": 5, "x": x, "y": 0.0, "z": Z}
        for i, (b, x) in enumerate(zip((JUICE, BREAD, CIDER), xs, strict=True))
    ]
    for plate, barcodes in (also or {}).items():
        plates[plate]["also"] = barcodes
    return Planogram.model_validate(
        {"products": products, "shelves": [{"device_id": "shelf-1", "plates": plates}]}
    )


#: Plates 10 cm apart; narrow ones, 6 cm apart.
WIDE, NARROW = (0.0, 0.1, 0.2), (0.0, 0.06, 0.12)


def bench(
    tmp_path: Path,
    xs: tuple[float, float, float] = WIDE,
    *,
    also: dict[int, list[str]] | None = None,
    cameras: tuple[str, ...] = (),
) -> Bench:
    b = Bench(tmp_path, planogram(xs, also=also), trackers=("tracker-1", *cameras))
    b.tick(1)
    b.gate("entry", "left-1")
    b.gate("entry", "right-1")
    b.tick(1, where=REST)
    return b


REST = {"left-1": (0.0, -0.8, 0.0, -0.6, 0.8), "right-1": (0.2, -0.8, 0.2, -0.6, 0.8)}


def hands(left_x: float, right_x: float, right_z: float = Z) -> dict[str, tuple[float, ...]]:
    return {
        "left-1": (0.0, -0.6, left_x, 0.0, Z),
        "right-1": (0.2, -0.6, right_x, 0.0, right_z),
    }


def reach(b: Bench, frames: list[dict[str, tuple[float, ...]]]) -> None:
    """One tracker frame per 200 ms tick, then rest until everything settled."""
    for where in frames:
        b.tick(0.2, where=where)
    b.tick(1.6, where=REST)
