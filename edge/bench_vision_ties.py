"""``storeedge bench vision-ties``: what the product classifier adds where weight alone
cannot tell products apart (a synthetic tie scenario of the AiFi store)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from devices.layout import Product
from edge.checkout.inference import READING_NOISE_G, infer
from firmware_sim.aifi.planogram import read_products, weight_sd_g
from vision.product import ProductClassifier, fuse_scores
from vision.product.render import degrade, view


def measure_ties(
    planogram_json: Path,
    *,
    events: int = 400,
    seed: int = 0,
    tie_g: float = 5.0,
    min_confidence: float = 0.6,
    model: Path | None = None,
    camera_px: int | None = None,
) -> dict[str, Any]:
    """What the product classifier adds on a synthetic tie scenario of the AiFi store.

    Events: a shopper takes one unit of a product that has a twin within ``tie_g``
    grams on the same or a neighbouring plate of the same shelf (the planogram has many).
    The weight change is drawn with the replay's noise (the product's spread plus the
    reading noise), the checkout's own inference (:func:`edge.checkout.inference.infer`)
    scores the candidates with the engine's plate priors, and the classifier looks at a
    rendered camera view of the product taken (a seed never used in training).  Control
    events (products without a twin) show that vision does not break clear answers.
    ``camera_px`` shrinks each view to that many pixels and adds motion blur (a product
    seen small and moving by a ceiling camera) before the classifier sees it.
    """
    data = read_products(planogram_json)
    products = {
        p["barcode"]: Product(
            barcode=p["barcode"],
            name=p["name"],
            unit_weight_g=float(p["unit_weight_g"]),
            weight_sd_g=weight_sd_g(float(p["unit_weight_g"])),
            price_minor=1,
        )
        for p in data
    }
    places: dict[tuple[int, int], dict[str, set[int]]] = {}
    for p in data:
        for f in p.get("facings", []):
            shelf = places.setdefault((f["gondola"], f["shelf"]), {})
            shelf.setdefault(p["barcode"], set()).update(f["plates"])
    classifier = ProductClassifier(model)
    rng = np.random.default_rng(seed)

    def candidates(shelf: dict[str, set[int]], plate: int) -> list[tuple[Product, float]]:
        out = []
        for code, plates in shelf.items():
            if plate in plates:
                prior = 1.0
            elif any(abs(plate - q) == 1 for q in plates):
                prior = 0.2
            else:
                prior = 0.02
            out.append((products[code], prior))
        return out

    tie_cases: list[tuple[tuple[int, int], str, int]] = []
    clear_cases: list[tuple[tuple[int, int], str, int]] = []
    for key, shelf in places.items():
        for code, plates in shelf.items():
            w = products[code].unit_weight_g
            if w <= 0:
                continue
            for plate in sorted(plates):
                near = [
                    other
                    for other, op in shelf.items()
                    if other != code
                    and products[other].unit_weight_g > 0
                    and abs(products[other].unit_weight_g - w) <= tie_g
                    and any(abs(plate - q) <= 1 for q in op)
                ]
                (tie_cases if near else clear_cases).append((key, code, plate))

    def run(cases: list[tuple[tuple[int, int], str, int]]) -> dict[str, Any]:
        stats = {
            k: {"correct": 0, "accepted": 0, "accepted_wrong": 0} for k in ("weight", "vision")
        }
        for i in range(events):
            key, code, plate = cases[int(rng.integers(len(cases)))]
            truth = products[code]
            delta = -(
                truth.unit_weight_g
                + rng.normal(0, truth.weight_sd_g)
                + rng.normal(0, READING_NOISE_G)
            )
            hyps = infer(delta, candidates(places[key], plate), max_quantity=6)
            weight_only = [(h.barcode, h.quantity, h.confidence) for h in hyps]
            crop = view(
                truth.barcode, truth.name, np.random.default_rng(1_000_000 + seed * 10_000 + i)
            )
            if camera_px:
                crop = degrade(crop, camera_px, int(rng.integers(3, 8)), rng)
            fused = fuse_scores(weight_only, classifier.scores(crop))
            for name, ranked in (("weight", weight_only), ("vision", fused)):
                if not ranked:
                    continue
                best, qty, conf = ranked[0]
                ok = best == code and qty == 1
                s = stats[name]
                s["correct"] += ok
                if conf >= min_confidence:
                    s["accepted"] += 1
                    s["accepted_wrong"] += not ok
        return {
            name: {
                "accuracy": round(s["correct"] / events, 3),
                "to_cart_without_review": round(s["accepted"] / events, 3),
                "wrong_in_cart": round(s["accepted_wrong"] / events, 3),
            }
            for name, s in stats.items()
        }

    return {
        "type": "vision_ties",
        "events": events,
        "tie_within_g": tie_g,
        "tie_places": len(tie_cases),
        "ties": run(tie_cases),
        "control_no_tie": run(clear_cases),
        "classifier": str(classifier.model.name),
        "camera_px": camera_px,
    }
