"""The live planogram: which products are where now, and their priors for a shelf event.

Starts from the planned planogram (plates and the rows that span them) and
learns where shoppers put products back, so the next pick from there is right.
"""

from __future__ import annotations

from devices.layout import Planogram, Product
from edge.checkout.detector import ShelfEvent
from edge.config import InferenceConfig

#: A product put back somewhere it is not placed is this likely a priori.
WRONG_PLACE_PRIOR = 0.3

PlateKey = tuple[str, int]


class LivePlanogram:
    def __init__(self, planogram: Planogram, cfg: InferenceConfig, neighbours: int) -> None:
        self._cfg = cfg
        self._neighbours = neighbours
        self.products = {p.barcode: p for p in planogram.products}
        #: Products seen on each plate; put-backs elsewhere add to it.
        self.plate_products: dict[PlateKey, list[str]] = {
            (shelf.device_id, plate.plate): list(plate.barcodes)
            for shelf in planogram.shelves
            for plate in shelf.plates
        }
        self._planned = {key: len(codes) for key, codes in self.plate_products.items()}
        #: Rows of each product per shelf: plate groups from the facings, else single plates.
        self._rows: dict[str, dict[str, list[frozenset[int]]]] = {}
        faced = {(f.shelf, f.barcode) for f in planogram.facings}
        for facing in planogram.facings:
            self._rows.setdefault(facing.shelf, {}).setdefault(facing.barcode, []).append(
                frozenset(facing.plates)
            )
        for shelf in planogram.shelves:
            rows = self._rows.setdefault(shelf.device_id, {})
            for plate in shelf.plates:
                for b in plate.barcodes:
                    if (shelf.device_id, b) not in faced:
                        rows.setdefault(b, []).append(frozenset({plate.plate}))
        self._shelf_products = {
            shelf.device_id: sorted({b for plate in shelf.plates for b in plate.barcodes})
            for shelf in planogram.shelves
        }

    def keep_learned(self, old: LivePlanogram) -> None:
        """What ``old`` learned from put-backs, on the shelves and of the products this
        (newer) planogram still has."""
        for key, codes in old.plate_products.items():
            if key[0] not in self._shelf_products:
                continue
            for barcode in codes[old._planned.get(key, 0) :]:
                products = self.plate_products.setdefault(key, [])
                if barcode in self.products and barcode not in products:
                    products.append(barcode)

    def reconfigure(self, cfg: InferenceConfig, neighbours: int) -> None:
        """New inference settings (a configuration from HQ); what was learned stays."""
        self._cfg = cfg
        self._neighbours = neighbours

    def candidates(
        self, event: ShelfEvent, cart: dict[str, int] | None
    ) -> list[tuple[Product, float]]:
        """Products with a prior from where they stand relative to the changed plates.

        A product whose row covers exactly the changed plates scores 1; partial overlap
        scores the overlap's share of the union (an item lying across plates touches the
        plates of its row); products next to the change, or elsewhere on the shelf, get
        small priors; products put on these plates by shoppers 1.  A put-back (``cart``
        given) is something from that cart, most likely from here.
        """
        changed = frozenset(event.plates)
        shelf = event.device_id
        priors: dict[str, float] = dict.fromkeys(
            self._shelf_products.get(shelf, []), self._cfg.shelf_prior
        )
        for plate in event.plates:
            for near in range(plate - self._neighbours, plate + self._neighbours + 1):
                for b in self.plate_products.get((shelf, near), []):
                    priors[b] = max(priors.get(b, 0.0), self._cfg.neighbour_prior)
        for b, rows in self._rows.get(shelf, {}).items():
            overlap = max(len(changed & row) / len(changed | row) for row in rows)
            if overlap > 0:
                priors[b] = max(priors.get(b, 0.0), overlap)
        for plate in event.plates:
            learned = self.plate_products.get((shelf, plate), [])[
                self._planned.get((shelf, plate), 0) :
            ]
            for b in learned:
                priors[b] = 1.0
        if cart:
            priors = {b: max(priors.get(b, 0.0), WRONG_PLACE_PRIOR) for b in cart}
        return [(self.products[b], p) for b, p in priors.items() if b in self.products]

    def learn(self, event: ShelfEvent, barcode: str) -> list[int]:
        """``barcode`` now lies on the event's plates; returns the plates that are new to it."""
        new = []
        for plate in event.plates:
            products = self.plate_products.setdefault((event.device_id, plate), [])
            if barcode not in products:
                products.append(barcode)
                new.append(plate)
        return new
