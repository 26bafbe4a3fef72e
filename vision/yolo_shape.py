"""A YOLOv8n-shaped network built with ``onnx.helper``, random weights: for benchmarks.

It has the layer shapes and the arithmetic of YOLOv8n (backbone of C2f blocks, SPPF,
the FPN/PAN neck, the decoupled head, output ``(1, 4 + C, N)``), so it costs on a CPU
what a real YOLOv8n export costs; its class logits are biased far below zero, so
post-processing sees as few candidates as with a trained model on an ordinary frame.
It detects nothing.  A store that brings its own model measures that one instead
(``storeedge bench vision --onnx-model FILE``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


class _Builder:
    def __init__(self, seed: int) -> None:
        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[onnx.TensorProto] = []
        self.rng = np.random.default_rng(seed)
        self.n = 0

    def name(self, prefix: str) -> str:
        self.n += 1
        return f"{prefix}_{self.n}"

    def const(self, array: np.ndarray, prefix: str = "w") -> str:
        name = self.name(prefix)
        self.inits.append(numpy_helper.from_array(array, name))
        return name

    def conv(
        self,
        x: str,
        cin: int,
        cout: int,
        k: int = 1,
        s: int = 1,
        act: bool = True,
        bias: float = 0.0,
    ) -> str:
        fan_in = cin * k * k
        w = self.rng.normal(0, np.sqrt(2.0 / fan_in), (cout, cin, k, k)).astype(np.float32)
        b = np.full(cout, bias, dtype=np.float32)
        out = self.name("conv")
        self.nodes.append(
            helper.make_node(
                "Conv",
                [x, self.const(w), self.const(b, "b")],
                [out],
                kernel_shape=[k, k],
                strides=[s, s],
                pads=[k // 2] * 4,
            )
        )
        if not act:
            return out
        sig = self.name("sig")
        act_out = self.name("silu")
        self.nodes.append(helper.make_node("Sigmoid", [out], [sig]))
        self.nodes.append(helper.make_node("Mul", [out, sig], [act_out]))
        return act_out

    def op(self, kind: str, inputs: list[str], **attrs: Any) -> str:
        out = self.name(kind.lower())
        self.nodes.append(helper.make_node(kind, inputs, [out], **attrs))
        return out

    def split2(self, x: str, channels: int) -> tuple[str, str]:
        a, b = self.name("split"), self.name("split")
        sizes = self.const(np.array([channels, channels], dtype=np.int64), "sizes")
        self.nodes.append(helper.make_node("Split", [x, sizes], [a, b], axis=1))
        return a, b

    def c2f(self, x: str, cin: int, cout: int, n: int, shortcut: bool) -> str:
        c = cout // 2
        y = self.conv(x, cin, 2 * c)
        a, b = self.split2(y, c)
        parts = [a, b]
        cur = b
        for _ in range(n):
            h = self.conv(cur, c, c, 3)
            h = self.conv(h, c, c, 3)
            cur = self.op("Add", [cur, h]) if shortcut else h
            parts.append(cur)
        cat = self.op("Concat", parts, axis=1)
        return self.conv(cat, (2 + n) * c, cout)

    def sppf(self, x: str, cin: int, cout: int) -> str:
        c = cin // 2
        y = self.conv(x, cin, c)
        pools = [y]
        for _ in range(3):
            pools.append(
                self.op("MaxPool", [pools[-1]], kernel_shape=[5, 5], strides=[1, 1], pads=[2] * 4)
            )
        return self.conv(self.op("Concat", pools, axis=1), 4 * c, cout)

    def up(self, x: str) -> str:
        scales = self.const(np.array([1, 1, 2, 2], dtype=np.float32), "scales")
        return self.op("Resize", [x, "", scales], mode="nearest")


def build_yolov8n_like(size: int = 320, num_classes: int = 80, seed: int = 0) -> onnx.ModelProto:
    """The network for a ``size`` x ``size`` input (a multiple of 32)."""
    if size % 32:
        raise ValueError("size must be a multiple of 32")
    b = _Builder(seed)
    x = b.conv("images", 3, 16, 3, 2)
    x = b.conv(x, 16, 32, 3, 2)
    x = b.c2f(x, 32, 32, 1, True)
    x = b.conv(x, 32, 64, 3, 2)
    p3 = b.c2f(x, 64, 64, 2, True)
    x = b.conv(p3, 64, 128, 3, 2)
    p4 = b.c2f(x, 128, 128, 2, True)
    x = b.conv(p4, 128, 256, 3, 2)
    x = b.c2f(x, 256, 256, 1, True)
    p5 = b.sppf(x, 256, 256)
    n4 = b.c2f(b.op("Concat", [b.up(p5), p4], axis=1), 384, 128, 1, False)
    n3 = b.c2f(b.op("Concat", [b.up(n4), p3], axis=1), 192, 64, 1, False)
    d4 = b.c2f(b.op("Concat", [b.conv(n3, 64, 64, 3, 2), n4], axis=1), 192, 128, 1, False)
    d5 = b.c2f(b.op("Concat", [b.conv(d4, 128, 128, 3, 2), p5], axis=1), 384, 256, 1, False)
    outs = []
    for feat, ch in ((n3, 64), (d4, 128), (d5, 256)):
        box = b.conv(b.conv(b.conv(feat, ch, 64, 3), 64, 64, 3), 64, 4, act=False, bias=8.0)
        c2 = max(num_classes, 80)
        cls = b.conv(
            b.conv(b.conv(feat, ch, c2, 3), c2, c2, 3), c2, num_classes, act=False, bias=-12.0
        )
        cat = b.op("Concat", [box, b.op("Sigmoid", [cls])], axis=1)
        shape = b.const(np.array([1, 4 + num_classes, -1], dtype=np.int64), "shape")
        outs.append(b.op("Reshape", [cat, shape]))
    out = b.op("Concat", outs, axis=2)
    cells = sum((size // s) ** 2 for s in (8, 16, 32))
    graph = helper.make_graph(
        b.nodes,
        "yolov8n_shaped",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, [1, 3, size, size])],
        [helper.make_tensor_value_info(out, TensorProto.FLOAT, [1, 4 + num_classes, cells])],
        b.inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def write_yolov8n_like(path: Path, size: int = 320, num_classes: int = 80) -> Path:
    onnx.save(build_yolov8n_like(size, num_classes), str(path))
    return path
