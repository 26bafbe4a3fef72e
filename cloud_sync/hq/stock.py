"""Stock across stores, and transfer suggestions: a store that runs low on a product
that another store has plenty of gets some of it.

Per (store, product) the low threshold is the one the store reported, or
``default_low``.  A store *runs low* at ``quantity <= low``; it asks for enough to
reach ``2 * low``.  A store has *plenty* above ``3 * low``; it gives away what it
holds above ``2 * low``.  Lowest receivers are served first, from the donors with
the most to spare.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

from pydantic import BaseModel, ConfigDict

from cloud_sync.hq.db import StockRow

DEFAULT_LOW = 5


class Transfer(BaseModel):
    model_config = ConfigDict(frozen=True)

    barcode: str
    name: str | None
    from_store: str
    to_store: str
    quantity: int
    from_quantity: int
    to_quantity: int


def low_of(row: StockRow, default_low: int) -> int:
    """The store's threshold for the product, else ``default_low``."""
    return row.low_threshold if row.low_threshold is not None else default_low


def suggest_transfers(rows: Iterable[StockRow], default_low: int = DEFAULT_LOW) -> list[Transfer]:
    by_product: dict[str, list[StockRow]] = defaultdict(list)
    for row in rows:
        by_product[row.barcode].append(row)
    out: list[Transfer] = []
    for barcode in sorted(by_product):
        levels = by_product[barcode]
        need = {
            r.store_id: 2 * low_of(r, default_low) - r.quantity
            for r in levels
            if r.quantity <= low_of(r, default_low)
        }
        spare = {
            r.store_id: r.quantity - 2 * low_of(r, default_low)
            for r in levels
            if r.quantity > 3 * low_of(r, default_low)
        }
        if not need or not spare:
            continue
        quantity = {r.store_id: r.quantity for r in levels}
        name = next((r.name for r in levels if r.name), None)
        for to_store in sorted(need, key=lambda s: (quantity[s], s)):
            for from_store in sorted(spare, key=lambda s: (-spare[s], s)):
                if need[to_store] <= 0:
                    break
                move = min(need[to_store], spare[from_store])
                if move <= 0:
                    continue
                out.append(
                    Transfer(
                        barcode=barcode,
                        name=name,
                        from_store=from_store,
                        to_store=to_store,
                        quantity=move,
                        from_quantity=quantity[from_store],
                        to_quantity=quantity[to_store],
                    )
                )
                need[to_store] -= move
                spare[from_store] -= move
    return out
