"""Stock levels per product for HQ, from the restock monitor's lanes.

After every shelf event (the engine's shelf listeners run the restock monitor
first), every few seconds on the worker, and at start, the units of each product
(the sum of its lanes) are compared with what HQ was last told; what changed is
written with its ``stock_level`` outbox row (``Store.report_stock_levels``).
Runs on the gateway's worker thread.
"""

from __future__ import annotations

from collections.abc import Callable

from devices.layout import Planogram
from edge.checkout.detector import ShelfEvent
from edge.store.repo import Store


class StockReporter:
    def __init__(self, store: Store, planogram: Planogram, clock_ms: Callable[[], int]) -> None:
        self._store = store
        self._names = {p.barcode: p.name for p in planogram.products}
        self._clock_ms = clock_ms

    def replace_planogram(self, planogram: Planogram) -> None:
        """A new planogram while running: HQ is told the new names from now on."""
        self._names = {p.barcode: p.name for p in planogram.products}

    def on_shelf_event(self, event: ShelfEvent) -> None:
        self.report()

    def report(self) -> list[str]:
        """Report the products whose level changed; returns their barcodes."""
        return self._store.report_stock_levels(self._names, self._clock_ms())
