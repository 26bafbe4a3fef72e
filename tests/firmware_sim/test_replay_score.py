"""Scoring receipts the way the AutoCheckout competition did."""

from __future__ import annotations

import pytest

from firmware_sim.replay.score import score


def test_perfect() -> None:
    truth = {"a": {"x": 2, "y": 1}, "b": {"z": 1}}
    result = score([("c1", truth, truth)])
    assert (result.precision, result.recall, result.f1) == (1.0, 1.0, 1.0)
    assert result.exact_match_rate == 1.0
    assert result.items_gt == 4
    assert result.per_case == [{"dataset": "c1", "f1": 1.0, "exact": True}]


def test_missing_item() -> None:
    result = score([("c1", {"a": {"x": 2, "y": 1}}, {"a": {"x": 1, "y": 1}})])
    assert result.precision == 1.0
    assert result.recall == pytest.approx(2 / 3)
    assert result.f1 == pytest.approx(0.8)
    assert result.exact_match_rate == 0.0
    assert result.per_case[0]["exact"] is False


def test_extra_item_and_wrong_shopper() -> None:
    truth = {"a": {"x": 1}, "b": {"y": 1}}
    issued = {"a": {"x": 1, "w": 1}, "c": {"y": 1}}  # y went on the wrong receipt
    result = score([("c1", truth, issued)])
    assert result.precision == pytest.approx(1 / 3)
    assert result.recall == pytest.approx(1 / 2)
    assert result.items_gt == 2


def test_empty_cases() -> None:
    result = score([("empty", {}, {}), ("nobody-bought", {"a": {}}, {"a": {}})])
    assert result.f1 == 1.0
    assert result.exact_match_rate == 1.0
    assert result.items_gt == 0
    assert [c["f1"] for c in result.per_case] == [1.0, 1.0]
    nothing_issued = score([("c", {"a": {"x": 1}}, {})])
    assert nothing_issued.f1 == 0.0
    assert nothing_issued.per_case[0] == {"dataset": "c", "f1": 0.0, "exact": False}
    phantom = score([("c", {}, {"a": {"x": 1}})])
    assert phantom.per_case[0]["f1"] == 0.0


def test_micro_average_over_cases() -> None:
    result = score(
        [
            ("perfect", {"a": {"x": 3}}, {"a": {"x": 3}}),
            ("half", {"a": {"x": 1}}, {"a": {"y": 1}}),
            ("empty", {}, {}),
        ]
    )
    # TP 3, FP 1, FN 1 over item units
    assert result.precision == pytest.approx(0.75)
    assert result.recall == pytest.approx(0.75)
    assert result.f1 == pytest.approx(0.75)
    assert result.exact_match_rate == pytest.approx(2 / 3)
    assert result.items_gt == 4
    assert result.mean_case_f1 == pytest.approx((1.0 + 0.0 + 1.0) / 3)
    assert [c["dataset"] for c in result.per_case] == ["perfect", "half", "empty"]
