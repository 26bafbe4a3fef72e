"""The shipped product classifier and the tie-break it gives the checkout."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from vision.product import ProductClassifier, default_model_path, fuse_scores
from vision.product.render import view


@pytest.fixture(scope="module")
def classifier() -> ProductClassifier:
    return ProductClassifier()


def test_the_model_is_shipped_small(classifier: ProductClassifier) -> None:
    assert default_model_path().is_file()
    assert default_model_path().stat().st_size < 2 * 1024 * 1024
    assert len(classifier.barcodes) == len(set(classifier.barcodes)) >= 80


def test_it_recognises_views_it_never_saw(classifier: ProductClassifier) -> None:
    rng = np.random.default_rng(424242)  # not a training seed
    crops, truth = [], []
    for i, barcode in enumerate(classifier.barcodes):
        for _ in range(2):
            crops.append(view(barcode, classifier.names[barcode], rng))
            truth.append(i)
    probs = classifier.probabilities(crops)
    assert probs.shape == (len(crops), len(classifier.barcodes))
    assert np.allclose(probs.sum(axis=1), 1.0)
    accuracy = float((probs.argmax(axis=1) == np.array(truth)).mean())
    assert accuracy >= 0.9


def test_vision_breaks_a_weight_tie() -> None:
    tie = [("A", 1, 0.5), ("B", 1, 0.5)]
    fused = fuse_scores(tie, {"A": 0.05, "B": 0.9, "C": 0.05})
    assert fused[0][0] == "B"
    assert fused[0][2] > 0.9
    assert sum(h[2] for h in fused) == pytest.approx(1.0)


def test_vision_does_not_overrule_a_clear_weight_answer() -> None:
    clear = [("A", 1, 0.99), ("B", 1, 0.01)]
    fused = fuse_scores(clear, {"A": 0.3, "B": 0.7})
    assert fused[0][0] == "A"
    # A product the classifier does not know keeps its weight answer (the floor).
    unknown = fuse_scores([("X", 1, 0.95), ("A", 1, 0.05)], {"A": 1.0})
    assert unknown[0][0] == "X"
    assert fuse_scores([], {"A": 1.0}) == []


def test_what_vision_adds_on_the_tie_scenario(aifi: Path) -> None:
    from edge.bench_vision_ties import measure_ties  # noqa: PLC0415

    result = measure_ties(aifi / "planogram.json", events=120, seed=3)
    ties, control = result["ties"], result["control_no_tie"]
    assert result["tie_places"] > 10
    assert ties["vision"]["accuracy"] >= ties["weight"]["accuracy"] + 0.2
    assert ties["vision"]["wrong_in_cart"] <= ties["weight"]["wrong_in_cart"]
    assert control["vision"]["accuracy"] >= control["weight"]["accuracy"] - 0.02
