"""Prices and electronic shelf labels (ESL), on the gateway's side.

* The catalog (``edge/store/prices.py``) holds the current price of a barcode;
  one that was never changed sells at its planogram price.  Receipts use it.
* Which label shows which product comes from the config (``esls:`` in
  ``store.yaml``: device id and barcode); labels are devices of type ``esl``.
* What a label should show is its desired twin: ``barcode``, ``price_minor``,
  ``currency``.  A price change sets it on every label of that product; the
  twin machinery sends it as ``cmd/config`` to labels that are online, and to
  the others when they are born again.  The label reports what it shows and
  acknowledges; its last ack is kept with the label.

All of it runs on the gateway's worker (the one writer).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

from devices.layout import Planogram
from edge.config import EslConfig
from edge.store.repo import Store


class PriceBook:
    def __init__(
        self,
        planogram: Planogram,
        store: Store,
        esls: Sequence[EslConfig],
        clock_ms: Callable[[], int],
    ) -> None:
        twice = sorted(d for d, n in Counter(e.device_id for e in esls).items() if n > 1)
        if twice:
            raise ValueError(f"esls: {', '.join(twice)} listed more than once")
        self.esls = list(esls)
        self._label_ids = frozenset(e.device_id for e in esls)
        self.replace_planogram(planogram)
        self.store = store
        self.clock_ms = clock_ms

    def replace_planogram(self, planogram: Planogram) -> None:
        """A new planogram while running; raises ValueError (nothing changed) when a
        label shows a product it lacks.  Call :meth:`sync` after it (the labels)."""
        unknown = sorted({e.barcode for e in self.esls} - {p.barcode for p in planogram.products})
        if unknown:
            raise ValueError(f"esls: barcodes not in the planogram: {', '.join(unknown)}")
        self.planogram = planogram

    def price_minor(self, barcode: str) -> int:
        """The current price: the catalog's, else the planogram's."""
        return self.store.price_minor(barcode, self.planogram.product(barcode).price_minor)

    def shown_on_label(self, barcode: str) -> dict[str, Any]:
        """The desired twin settings of a label showing ``barcode``."""
        return {
            "barcode": barcode,
            "price_minor": self.price_minor(barcode),
            "currency": self.planogram.currency,
        }

    def sync(self) -> list[str]:
        """At start: the label table from the config, and every label's desired twin
        from the catalog (mends a change that stopped half-way).  Returns the labels
        whose desired settings changed."""
        if not self.esls and not self.store.labels():
            return []
        self.store.sync_labels(
            [(e.device_id, e.barcode, self.planogram.product(e.barcode).name) for e in self.esls]
        )
        changed = []
        for esl in self.esls:
            if self._want(esl.device_id, esl.barcode):
                changed.append(esl.device_id)
        return changed

    def change(self, barcode: str, price_minor: int, by: str = "staff") -> dict[str, Any]:
        """A new price for ``barcode``: the catalog, an event, and the labels' twins.

        Raises LookupError for a barcode that is not in the planogram.
        """
        if barcode not in {p.barcode for p in self.planogram.products}:
            raise LookupError(f"unknown product {barcode!r}")
        if price_minor < 0:
            raise ValueError(f"price_minor must be >= 0, got {price_minor}")
        previous = self.price_minor(barcode)
        row = self.store.set_price(barcode, price_minor, previous, self.clock_ms(), by)
        labels = self.store.labels_of(barcode)
        for device_id in labels:
            self._want(device_id, barcode)
        return {**row, "previous_minor": previous, "labels": labels}

    def push_to_labels(self, barcode: str) -> list[str]:
        """Every label of ``barcode`` should show its current price (after a change
        made elsewhere, e.g. HQ's price list); returns those labels."""
        labels = self.store.labels_of(barcode)
        for device_id in labels:
            self._want(device_id, barcode)
        return labels

    def on_ack(self, device_id: str, command: str | None, ok: bool, detail: str, ts: int) -> None:
        """A device acknowledged a command; a label's answer to ``config`` is kept."""
        if command == "config" and device_id in self._label_ids:
            self.store.record_label_ack(device_id, ts, ok, detail)

    def _want(self, device_id: str, barcode: str) -> bool:
        wanted = self.shown_on_label(barcode)
        desired = self.store.twin(device_id)["desired"]
        changes = {k: v for k, v in wanted.items() if desired.get(k) != v}
        if changes:
            self.store.set_desired(device_id, changes, self.clock_ms())
        return bool(changes)
