"""Which product passed between two shoppers, from a camera's view and the giver's cart.

A camera that sees a product change hands (``HandoffSeen``) scores what it saw; the
product must be one the giver holds (enough units of it), and the camera must name it
clearly: at least :data:`MIN_HANDOFF_SCORE`, and at least ``min_share`` of its scores
over the giver's products.  Anything less moves nothing and says why.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

#: A hand-off moves a product only if the camera gives it at least this probability.
MIN_HANDOFF_SCORE = 0.1


@dataclass(frozen=True, slots=True)
class HandoffDecision:
    barcode: str | None  # what moves; None: nothing does
    candidates: dict[str, float]  # the camera's score of each product the giver holds
    problem: str | None  # why nothing moves


def decide_handoff(
    cart: Mapping[str, int], quantity: int, scores: Mapping[str, float], min_share: float
) -> HandoffDecision:
    """The product of ``cart`` (the giver's) that ``quantity`` units of passed, if the
    camera's ``scores`` name one clearly."""
    seen = {b: float(scores.get(b, 0.0)) for b, held in cart.items() if held >= quantity}
    best = max(seen, key=lambda b: seen[b], default=None)
    if best is None:
        return HandoffDecision(None, seen, f"the giver holds no {quantity} units of anything")
    if seen[best] < MIN_HANDOFF_SCORE or seen[best] / sum(seen.values()) < min_share:
        return HandoffDecision(
            None, seen, "no product of the giver's cart clearly matches the view"
        )
    return HandoffDecision(best, seen, None)
