"""From a weight change to (product, quantity) hypotheses with likelihoods.

Each candidate product comes with a prior: products placed on the changed
plates (in the live planogram) weigh most, those on neighbouring plates less,
the rest of the shelf little.  A change of ``delta`` grams for ``q`` units of
a product with unit weight ``w`` and spread ``sd`` has residual
``|delta| - q*w`` and standard deviation ``sqrt(q*sd^2 + noise^2)``; the
likelihood is Gaussian in that residual, times the prior, times a prior that
makes one unit likelier than several.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TypeGuard

from devices.layout import Product
from vision.product.fusion import fuse_scores

#: Measurement noise of one settled reading difference, grams.
READING_NOISE_G = 3.0
#: Below this likelihood (a residual beyond 4 sigma) no hypothesis is trusted.
MIN_LIKELIHOOD = math.exp(-0.5 * 4.0**2)
#: Each extra unit in one grab is this much less likely a priori.
QUANTITY_PRIOR = 0.7


@dataclass(frozen=True, slots=True)
class Hypothesis:
    barcode: str
    quantity: int
    likelihood: float  # Gaussian density ratio in (0, 1], without priors
    confidence: float  # share of the total (prior-weighted) likelihood of all hypotheses


def clear(best: Hypothesis | None, min_confidence: float) -> TypeGuard[Hypothesis]:
    """``best`` explains the weight (``MIN_LIKELIHOOD``) and stands out among the
    hypotheses by at least ``min_confidence``."""
    return (
        best is not None and best.likelihood >= MIN_LIKELIHOOD and best.confidence >= min_confidence
    )


def infer(
    delta_g: float,
    candidates: list[Product] | list[tuple[Product, float]],
    max_quantity: int,
) -> list[Hypothesis]:
    """Hypotheses for |delta_g|, best first.  An empty list when nothing fits at all."""
    magnitude = abs(delta_g)
    scored: list[tuple[str, int, float, float]] = []
    for item in candidates:
        product, prior = item if isinstance(item, tuple) else (item, 1.0)
        if product.unit_weight_g <= 0 or prior <= 0:
            continue
        for quantity in range(1, max_quantity + 1):
            likelihood = _fit(
                magnitude, quantity * product.unit_weight_g, quantity * product.weight_sd_g**2
            )
            if likelihood > 1e-9:
                weight = likelihood * prior * QUANTITY_PRIOR ** (quantity - 1)
                scored.append((product.barcode, quantity, likelihood, weight))
    total = sum(s[3] for s in scored)
    scored.sort(key=lambda s: s[3], reverse=True)
    return [Hypothesis(b, q, lk, w / total) for b, q, lk, w in scored]


def joint_likelihood(delta_g: float, products: list[Product]) -> float:
    """How well |delta_g| fits one unit of each of ``products`` taken together."""
    return _fit(
        abs(delta_g),
        sum(p.unit_weight_g for p in products),
        sum(p.weight_sd_g**2 for p in products),
    )


def _fit(magnitude: float, expected: float, items_variance: float) -> float:
    """Gaussian density ratio of a change of ``magnitude`` grams where ``expected`` with
    the items' own variance was due, plus the reading noise."""
    z = (magnitude - expected) / math.sqrt(items_variance + READING_NOISE_G**2)
    return math.exp(-0.5 * z * z)


@dataclass(frozen=True, slots=True)
class Pair:
    """One unit each of two different products in one change."""

    barcodes: tuple[str, str]
    likelihood: float  # Gaussian density ratio of the weights together, without priors
    confidence: float  # share of the prior-weighted likelihood of all pairs


def infer_pairs(
    delta_g: float, candidates: list[tuple[Product, float]], min_prior: float
) -> list[Pair]:
    """Pairs of different products placed at least ``min_prior`` (on or next to the
    changed plates) whose weights together fit |delta_g|, best first: for a change no
    one product explains (two products taken in one grab)."""
    placed = [(p, prior) for p, prior in candidates if p.unit_weight_g > 0 and prior >= min_prior]
    scored: list[tuple[tuple[str, str], float, float]] = []
    for i, (a, prior_a) in enumerate(placed):
        for b, prior_b in placed[i + 1 :]:
            likelihood = joint_likelihood(delta_g, [a, b])
            if likelihood > 1e-9:
                scored.append(((a.barcode, b.barcode), likelihood, likelihood * prior_a * prior_b))
    total = sum(s[2] for s in scored)
    scored.sort(key=lambda s: s[2], reverse=True)
    return [Pair(bs, lk, w / total) for bs, lk, w in scored]


def fuse_vision(
    hypotheses: list[Hypothesis], scores: Mapping[str, float], weight: float = 1.0
) -> list[Hypothesis]:
    """``hypotheses`` re-weighted by a product camera's ``scores`` (best first).

    :func:`vision.product.fusion.fuse_scores` does the fusion; a candidate the camera
    did not list (it sends its top few) counts as scored like the lowest listed one.
    Likelihoods stay those of the weight: a product that weighs wrong stays wrong.
    """
    if not hypotheses or not scores or weight <= 0:
        return hypotheses
    unlisted = min(scores.values())
    seen = {h.barcode: scores.get(h.barcode, unlisted) for h in hypotheses}
    fused = fuse_scores(
        [(h.barcode, h.quantity, h.confidence) for h in hypotheses], seen, weight=weight
    )
    likelihood = {(h.barcode, h.quantity): h.likelihood for h in hypotheses}
    return [Hypothesis(b, q, likelihood[(b, q)], c) for b, q, c in fused]
