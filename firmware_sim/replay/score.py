"""Score issued receipts against the truth, as the AutoCheckout competition did.

A shopper's true receipt is picks minus put-backs (``Case.receipts()``).  Counts
are item units: over every (shopper, barcode) of a case, TP = min(true, issued),
FP = issued - TP, FN = true - TP.  Precision, recall and F1 are micro-averaged
over all cases; each case also gets its own F1 (1.0 when truth and issued are
both empty) and ``exact`` (every shopper's receipt exactly right).
``mean_case_f1`` is the plain mean of the per-case F1 (the competition's
headline number: the winner scored 0.844 on its cases).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TypedDict

Receipts = Mapping[str, Mapping[str, int]]  # shopper -> barcode -> quantity


class CaseScore(TypedDict):
    dataset: str
    f1: float
    exact: bool


@dataclass(frozen=True)
class Score:
    precision: float
    recall: float
    f1: float
    exact_match_rate: float
    items_gt: int
    mean_case_f1: float
    per_case: list[CaseScore]


@dataclass(frozen=True)
class _Counts:
    tp: int
    fp: int
    fn: int


def _count(truth: Receipts, issued: Receipts) -> _Counts:
    tp = fp = fn = 0
    for shopper in set(truth) | set(issued):
        true_lines = truth.get(shopper, {})
        issued_lines = issued.get(shopper, {})
        for barcode in set(true_lines) | set(issued_lines):
            t, i = max(0, true_lines.get(barcode, 0)), max(0, issued_lines.get(barcode, 0))
            hit = min(t, i)
            tp, fp, fn = tp + hit, fp + i - hit, fn + t - hit
    return _Counts(tp, fp, fn)


def _prf(c: _Counts) -> tuple[float, float, float]:
    """Precision, recall, F1; an empty side counts as perfect (nothing wrong in it)."""
    precision = c.tp / (c.tp + c.fp) if c.tp + c.fp else 1.0
    recall = c.tp / (c.tp + c.fn) if c.tp + c.fn else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return precision, recall, f1


def score(cases: Sequence[tuple[str, Receipts, Receipts]]) -> Score:
    """Score ``(dataset name, truth, issued)`` per case."""
    tp = fp = fn = 0
    per_case: list[CaseScore] = []
    for name, truth, issued in cases:
        counts = _count(truth, issued)
        tp, fp, fn = tp + counts.tp, fp + counts.fp, fn + counts.fn
        per_case.append(
            {"dataset": name, "f1": _prf(counts)[2], "exact": not counts.fp + counts.fn}
        )
    precision, recall, f1 = _prf(_Counts(tp, fp, fn))
    n = len(per_case)
    return Score(
        precision=precision,
        recall=recall,
        f1=f1,
        exact_match_rate=sum(c["exact"] for c in per_case) / n if n else 1.0,
        items_gt=tp + fn,
        mean_case_f1=sum(c["f1"] for c in per_case) / n if n else 1.0,
        per_case=per_case,
    )
