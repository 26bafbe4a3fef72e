"""``resolve_layout``: the one reading of a YOLO output's shape (layout, transposition,
class count) behind ``decode`` and the ONNX plugin's class-count guess."""

from __future__ import annotations

from typing import Any

import pytest

from vision.detectors.plugins.onnx import _guess_classes
from vision.detectors.yolo import OutputLayout, resolve_layout


@pytest.mark.parametrize(
    ("shape", "num_classes", "layout", "expected"),
    [
        # v5: (1, N, 5 + C)
        ((1, 25200, 85), 80, "auto", OutputLayout("v5", False, 80)),
        ((1, 25200, 85), None, "auto", OutputLayout("v5", False, 80)),
        # v8: (1, 4 + C, N), channels first
        ((1, 84, 8400), 80, "auto", OutputLayout("v8", True, 80)),
        ((1, 84, 8400), None, "auto", OutputLayout("v8", True, 80)),
        # v8 already transposed: (1, N, 4 + C); without a class count it reads as v5
        ((1, 8400, 84), 80, "auto", OutputLayout("v8", False, 80)),
        ((1, 8400, 84), None, "auto", OutputLayout("v5", False, 79)),
        # end2end: (1, N, 6); without a class count it could be v5 with one class
        ((1, 300, 6), 80, "auto", OutputLayout("end2end", False, 80)),
        ((1, 300, 6), None, "auto", OutputLayout("v5", False, None)),
        # ... and with one or two classes v5 / transposed v8 come first
        ((1, 300, 6), 1, "auto", OutputLayout("v5", False, 1)),
        ((1, 300, 6), 2, "auto", OutputLayout("v8", False, 2)),
        ((1, 6, 300), 2, "auto", OutputLayout("v8", True, 2)),
        # square outputs: N == 4 + C reads as rows, N == 5 + C as v5, no count: v5, unknown
        ((1, 84, 84), 80, "auto", OutputLayout("v8", False, 80)),
        ((1, 85, 85), 80, "auto", OutputLayout("v5", False, 80)),
        ((1, 84, 84), None, "auto", OutputLayout("v5", False, None)),
        # a forced layout is trusted; only transposition and class count are worked out
        ((1, 84, 8400), 80, "v8", OutputLayout("v8", True, 80)),
        ((1, 8400, 84), None, "v8", OutputLayout("v8", False, 80)),
        ((1, 8400, 84), None, "v5", OutputLayout("v5", False, 79)),
        ((1, 300, 6), None, "end2end", OutputLayout("end2end", False, None)),
        ((1, 300, 6), None, "v5", OutputLayout("v5", False, 1)),
        ((1, 100, 50), 80, "v5", OutputLayout("v5", False, 80)),
        # no room for class scores: no class count (decode then says so)
        ((1, 4, 100), None, "auto", OutputLayout("v8", True, None)),
        ((1, 100, 5), None, "auto", OutputLayout("v5", False, None)),
    ],
)
def test_resolve_layout(
    shape: tuple[int, ...], num_classes: int | None, layout: Any, expected: OutputLayout
) -> None:
    assert resolve_layout(shape, num_classes, layout) == expected


@pytest.mark.parametrize(
    ("shape", "num_classes", "layout", "message"),
    [
        (
            (1, 100, 50),
            80,
            "auto",
            r"output shape \(1, 100, 50\) fits no YOLO layout for 80 classes "
            r"\(v5: \(1, N, 85\); v8: \(1, 84, N\) or \(1, N, 84\); end2end: \(1, N, 6\)\)",
        ),
        ((8400, 84), 80, "auto", r"must have 3 dimensions \(1, a, b\), got \(8400, 84\)"),
        ((1, 1, 10, 8), None, "v5", r"must have 3 dimensions \(1, a, b\), got \(1, 1, 10, 8\)"),
    ],
)
def test_impossible_shapes_are_a_clear_error(
    shape: tuple[int, ...], num_classes: int | None, layout: Any, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        resolve_layout(shape, num_classes, layout)


@pytest.mark.parametrize(
    ("shape", "layout", "expected"),
    [
        ([1, 84, 8400], "auto", 80),
        (["batch", 84, 8400], "auto", 80),  # a dynamic batch does not matter
        ([1, 25200, 85], "auto", 80),
        ([1, 300, 6], "auto", None),
        ([1, 300, 6], "end2end", None),
        ([1, 84, "anchors"], "auto", None),  # dynamic: the shape does not tell
        ([1, 84], "auto", None),
    ],
)
def test_onnx_class_count_guess_reads_the_same_shape(
    shape: list[Any], layout: Any, expected: int | None
) -> None:
    assert _guess_classes(shape, layout) == expected
