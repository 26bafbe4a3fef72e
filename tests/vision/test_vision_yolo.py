"""The YOLO decoder and the ONNX detector plugin, against tiny ONNX models built here
with onnx.helper that emit known boxes (v5, v8 and end-to-end layouts)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from vision.detectors import DetectorError, FrameContext, OnnxDetectorConfig, build
from vision.detectors.yolo import decode, detect_layout, letterbox

SIZE = 320


def _model(path: Path, output: np.ndarray, size: int = SIZE) -> Path:
    """A model whose output is ``output`` whatever the image (plus 0 x its mean)."""
    const = numpy_helper.from_array(output.astype(np.float32), "boxes")
    zero = numpy_helper.from_array(np.zeros((1,), dtype=np.float32), "zero")
    nodes = [
        helper.make_node("ReduceMean", ["images"], ["mean"], keepdims=0),
        helper.make_node("Mul", ["mean", "zero"], ["nothing"]),
        helper.make_node("Add", ["boxes", "nothing"], ["output0"]),
    ]
    graph = helper.make_graph(
        nodes,
        "known_boxes",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, [1, 3, size, size])],
        [helper.make_tensor_value_info("output0", TensorProto.FLOAT, list(output.shape))],
        [const, zero],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


# Candidates in model-input pixels: (cx, cy, w, h, class, score).  Two overlapping
# persons (NMS keeps the better), one person far away, a low-score person, a chair.
CANDIDATES = [
    (100, 120, 40, 60, 0, 0.90),
    (102, 121, 40, 58, 0, 0.80),  # duplicate of the first: suppressed
    (250, 200, 30, 80, 0, 0.70),
    (50, 250, 20, 20, 0, 0.10),  # under the threshold
    (200, 100, 50, 50, 2, 0.95),  # not a person
]
NUM_CLASSES = 3


def _v8(candidates: list[tuple[float, ...]]) -> np.ndarray:
    out = np.zeros((1, 4 + NUM_CLASSES, len(candidates)), dtype=np.float32)
    for i, (cx, cy, w, h, cls, score) in enumerate(candidates):
        out[0, :4, i] = (cx, cy, w, h)
        out[0, 4 + int(cls), i] = score
    return out


def _v5(candidates: list[tuple[float, ...]]) -> np.ndarray:
    out = np.zeros((1, len(candidates), 5 + NUM_CLASSES), dtype=np.float32)
    for i, (cx, cy, w, h, cls, score) in enumerate(candidates):
        out[0, i, :4] = (cx, cy, w, h)
        out[0, i, 4] = 1.0 if score > 0.5 else 0.5  # objectness
        out[0, i, 5 + int(cls)] = score if score > 0.5 else score * 2
    return out


# Frame 640x360 into 320x320: scale 0.5, padding 70 rows at the top.
EXPECTED_PERSONS = [
    ((100 - 20) * 2, (120 - 30 - 70) * 2, (100 + 20) * 2, (120 + 30 - 70) * 2),
    ((250 - 15) * 2, (200 - 40 - 70) * 2, (250 + 15) * 2, (200 + 40 - 70) * 2),
]


def _frame() -> np.ndarray:
    return np.full((360, 640, 3), 120, dtype=np.uint8)


@pytest.mark.parametrize("layout", ["v8", "v5"])
def test_onnx_detector_reads_known_boxes(tmp_path: Path, layout: str) -> None:
    output = _v8(CANDIDATES) if layout == "v8" else _v5(CANDIDATES)
    model = _model(tmp_path / f"{layout}.onnx", output)
    cfg = OnnxDetectorConfig(
        model=model,
        labels=["person", "bicycle", "chair"],
        score_threshold=0.4,
        crop_to_motion=False,
    )
    detector = build(cfg)
    dets = detector.detect(_frame(), FrameContext(index=0, ts_ms=0))
    assert [d.label for d in dets] == ["person", "person"]
    assert [round(d.score, 2) for d in dets] == [0.9, 0.7]
    for det, expected in zip(dets, EXPECTED_PERSONS, strict=True):
        assert det.box == pytest.approx(expected, abs=1.0)


def test_auto_layout_and_class_count_from_the_shape() -> None:
    assert detect_layout((1, 84, 8400), 80) == "v8"
    assert detect_layout((1, 8400, 84), 80) == "v8"  # transposed v8
    assert detect_layout((1, 25200, 85), 80) == "v5"
    assert detect_layout((1, 300, 6), 80) == "end2end"
    assert detect_layout((1, 84, 8400), None) == "v8"
    assert detect_layout((1, 25200, 85), None) == "v5"
    with pytest.raises(ValueError, match="fits no YOLO layout"):
        detect_layout((1, 100, 50), 80)


def test_transposed_v8_and_normalised_coordinates_decode_the_same() -> None:
    raw = _v8(CANDIDATES)
    boxes, scores, classes = decode(
        raw, input_size=(SIZE, SIZE), num_classes=NUM_CLASSES, score_threshold=0.4, keep_classes={0}
    )
    normalised = raw.copy()
    normalised[0, :4] /= SIZE
    b2, s2, _ = decode(
        normalised.transpose(0, 2, 1),
        input_size=(SIZE, SIZE),
        num_classes=NUM_CLASSES,
        score_threshold=0.4,
        keep_classes={0},
    )
    assert len(boxes) == 2
    assert list(classes) == [0, 0]
    assert np.allclose(boxes, b2, atol=1e-3)
    assert np.allclose(scores, s2)


def test_end2end_layout_needs_no_nms() -> None:
    out = np.array([[[10, 10, 50, 90, 0.9, 0], [12, 10, 50, 90, 0.8, 0], [0, 0, 5, 5, 0.1, 0]]])
    boxes, scores, _ = decode(
        out, input_size=(SIZE, SIZE), layout="end2end", num_classes=1, score_threshold=0.25
    )
    assert len(boxes) == 2  # exported with NMS inside: both kept as given
    assert scores.tolist() == pytest.approx([0.9, 0.8])


def test_letterbox_pads_and_maps_back() -> None:
    img, lb = letterbox(_frame(), 320, 320)
    assert img.shape == (320, 320, 3)
    assert (lb.scale, lb.pad_x, lb.pad_y) == (0.5, 0.0, 70.0)
    assert int(img[0, 0, 0]) == 114
    assert int(img[160, 160, 0]) == 120
    back = lb.to_source(np.array([[0.0, 70.0, 320.0, 250.0]]))
    assert back[0].tolist() == pytest.approx([0, 0, 640, 360])


def test_motion_crop_maps_boxes_into_the_frame(tmp_path: Path) -> None:
    model = _model(tmp_path / "v8.onnx", _v8(CANDIDATES))
    cfg = OnnxDetectorConfig(model=model, labels=["person", "bicycle", "chair"], min_crop=320)
    detector = build(cfg)
    # Motion in the right half: a 320x320 crop at x 320..640, y 20..340.
    ctx = FrameContext(index=0, ts_ms=0, regions=[(400.0, 100.0, 560.0, 260.0)])
    dets = detector.detect(_frame(), ctx)
    # Crop 320x320 -> model 320x320: scale 1, no padding, offset (320, 20).
    assert dets[0].box == pytest.approx((320 + 80, 20 + 90, 320 + 120, 20 + 150), abs=1.0)


def test_missing_or_broken_model_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(DetectorError, match="does not exist"):
        build(OnnxDetectorConfig(model=tmp_path / "none.onnx"))
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not a model")
    with pytest.raises(DetectorError, match="cannot load ONNX model"):
        build(OnnxDetectorConfig(model=bad))
