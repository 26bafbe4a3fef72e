"""Stock levels per product for HQ, derived from the lanes' stock (``lane_stock``).

The restock monitor (``edge/staff/restock.py``) keeps the units on each lane
from its settled weight.  HQ wants units per product: :meth:`report_stock_levels`
sums the lanes of each barcode, and for every product whose sum (or low
threshold, the sum of its lanes' restock thresholds) changed since the last
report writes its ``stock_levels`` row and its ``stock_level`` outbox row in ONE
transaction.  It is idempotent, so the gateway calls it after every shelf event,
every few seconds and at start (a crash between a lane's change and its report
is mended then).  Mixed into ``Store``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from cloud_sync.wire import KIND_STOCK_LEVEL, STREAM_STOCK
from edge.store.base import StoreBase


class StockLevels(StoreBase):
    def report_stock_levels(self, names: Mapping[str, str], ts: int) -> list[str]:
        """Report what changed; returns the barcodes reported.  ``names``: the
        products' names (barcode -> name)."""
        conn = self.db.conn
        with self.reading():
            now = conn.execute(
                "SELECT barcode, sum(units), sum(restock_at), count(restock_at) FROM lane_stock"
                " WHERE units IS NOT NULL GROUP BY barcode ORDER BY barcode"
            ).fetchall()
            before = {
                str(b): (int(q), low)
                for b, q, low in conn.execute(
                    "SELECT barcode, quantity, low_threshold FROM stock_levels"
                )
            }
        changed = [
            (str(barcode), int(units), int(low) if counted else None)
            for barcode, units, low, counted in now
            if before.get(str(barcode)) != (int(units), int(low) if counted else None)
        ]
        if not changed:
            return []
        with self.transaction():
            for barcode, quantity, low in changed:
                row = {
                    "barcode": barcode,
                    "name": names.get(barcode, barcode),
                    "quantity": quantity,
                    "low_threshold": low,
                }
                self._x(
                    "INSERT INTO stock_levels (barcode, name, quantity, low_threshold, updated_ms)"
                    " VALUES (?, ?, ?, ?, ?) ON CONFLICT(barcode) DO UPDATE SET"
                    " name = excluded.name, quantity = excluded.quantity,"
                    " low_threshold = excluded.low_threshold, updated_ms = excluded.updated_ms",
                    (barcode, row["name"], quantity, low, ts),
                )
                self.enqueue(STREAM_STOCK, KIND_STOCK_LEVEL, row, ts_ms=ts)
        return [barcode for barcode, _, _ in changed]

    def stock_levels(self) -> list[dict[str, Any]]:
        """The levels last reported to HQ."""
        with self.reading():
            return list(
                self.db.query(
                    "SELECT barcode, name, quantity, low_threshold, updated_ms FROM stock_levels"
                    " ORDER BY barcode"
                )
            )
