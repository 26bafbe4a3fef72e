"""From a weight change to (product, quantity) hypotheses with likelihoods.

The candidates are the products the planogram places on the plate.  A change
of ``delta`` grams for ``q`` units of a product with unit weight ``w`` and
spread ``sd`` has residual ``|delta| - q*w`` and standard deviation
``sqrt(q*sd^2 + noise^2)``; the likelihood is Gaussian in that residual.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from devices.layout import Product

#: Measurement noise of one settled reading difference, grams.
READING_NOISE_G = 3.0


@dataclass(frozen=True, slots=True)
class Hypothesis:
    barcode: str
    quantity: int
    likelihood: float  # Gaussian density ratio in (0, 1]
    confidence: float  # share of the total likelihood of all hypotheses


def infer(delta_g: float, candidates: list[Product], max_quantity: int) -> list[Hypothesis]:
    """Hypotheses for |delta_g|, best first.  An empty list when nothing fits at all."""
    magnitude = abs(delta_g)
    scored: list[tuple[str, int, float]] = []
    for product in candidates:
        for quantity in range(1, max_quantity + 1):
            expected = quantity * product.unit_weight_g
            sd = math.sqrt(quantity * product.weight_sd_g**2 + READING_NOISE_G**2)
            z = (magnitude - expected) / sd
            likelihood = math.exp(-0.5 * z * z)
            if likelihood > 1e-9:
                scored.append((product.barcode, quantity, likelihood))
    total = sum(s[2] for s in scored)
    scored.sort(key=lambda s: s[2], reverse=True)
    return [Hypothesis(b, q, lk, lk / total) for b, q, lk in scored]
