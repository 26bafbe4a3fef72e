"""Ground truth of one simulated shopper: what they really left the store with."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from devices.layout import Planogram


@dataclass(frozen=True)
class ShopperTruth:
    """``lines`` maps barcode -> net quantity taken (zero lines omitted);
    ``total_minor`` is the price of those lines in minor units, from the planogram."""

    token: str
    lines: dict[str, int]
    total_minor: int

    @classmethod
    def from_lines(cls, token: str, lines: Mapping[str, int], planogram: Planogram) -> ShopperTruth:
        net = {barcode: qty for barcode, qty in sorted(lines.items()) if qty != 0}
        total = sum(planogram.product(barcode).price_minor * qty for barcode, qty in net.items())
        return cls(token=token, lines=net, total_minor=total)

    @property
    def item_count(self) -> int:
        return sum(self.lines.values())
