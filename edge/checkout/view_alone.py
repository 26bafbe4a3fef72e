"""A camera's view with no weight change under it: a product too light to weigh, or a touch.

A shelf reports no change smaller than ``detector.min_delta_g``: a pack of gum, a
lip balm, a product the planogram weighs at 0 g.  When a product camera sees such a
product taken or put back (a ``ProductSeen`` that no shelf event fits, see
:meth:`edge.checkout.sightings.Sightings.due_orphans`), the view alone decides the cart:
the camera must name it clearly (at least ``min_confidence``) and say which way it went
(``action``).  A product the shelf could have weighed but did not was touched, not
taken: nothing changes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from devices.layout import Product
from edge.checkout.sightings import Sighting

NO_WAY = "a product too light to weigh, seen without whether it was taken or put back"


@dataclass(frozen=True, slots=True)
class ViewAlone:
    barcode: str
    quantity: int  # +1 taken, -1 put back; 0 with a problem
    problem: str | None  # for the review queue; None: apply ``quantity``


def too_light(product: Product | None, min_delta_g: float) -> bool:
    """Would the shelf miss this product's weight (it reports no smaller change)?"""
    return product is not None and product.unit_weight_g < min_delta_g


def decide_view_alone(view: Sighting, min_confidence: float, cart: Mapping[str, int]) -> ViewAlone:
    """What a view of a product too light to weigh does to the cart (``cart``) of the
    shopper it belongs to."""
    barcode, score = view.top
    if score < min_confidence:
        return ViewAlone(barcode, 0, "a product too light to weigh, and the camera is unsure")
    if view.action is None:
        return ViewAlone(barcode, 0, NO_WAY)
    if view.action == "put_back":
        if cart.get(barcode, 0) < 1:
            return ViewAlone(barcode, 0, "put back an item this shopper did not take")
        return ViewAlone(barcode, -1, None)
    return ViewAlone(barcode, 1, None)
