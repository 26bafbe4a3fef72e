"""The product classifier at run time: an ONNX model and its label list (barcodes).

Input: a crop of the product as the camera saw it (BGR, any size; resized to the
model's square input).  Output: a probability per known product barcode.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

MODELS = Path(__file__).resolve().parent.parent / "models"


def default_model_path() -> Path:
    return MODELS / "product_classifier.onnx"


class ProductClassifier:
    def __init__(self, model: Path | None = None, labels: Path | None = None) -> None:
        import onnxruntime as ort  # noqa: PLC0415

        self.model = model or default_model_path()
        labels_path = labels or self.model.with_suffix(".json")
        meta = json.loads(labels_path.read_text(encoding="utf-8"))
        self.barcodes: list[str] = [p["barcode"] for p in meta["products"]]
        self.names: dict[str, str] = {p["barcode"]: p["name"] for p in meta["products"]}
        self.size = int(meta["input_size"])
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        self._session = ort.InferenceSession(
            str(self.model), sess_options=options, providers=["CPUExecutionProvider"]
        )
        self._input = self._session.get_inputs()[0].name

    def _tensor(self, crops: list[npt.NDArray[np.uint8]]) -> npt.NDArray[np.float32]:
        import cv2  # noqa: PLC0415

        batch = [
            cv2.cvtColor(
                cv2.resize(c, (self.size, self.size), interpolation=cv2.INTER_AREA),
                cv2.COLOR_BGR2RGB,
            )
            for c in crops
        ]
        arr = np.stack(batch).astype(np.float32) / 255.0
        return np.ascontiguousarray(arr.transpose(0, 3, 1, 2))

    def probabilities(self, crops: list[npt.NDArray[np.uint8]]) -> npt.NDArray[np.float64]:
        """(N, products) probabilities, columns in :attr:`barcodes` order."""
        outputs: list[Any] = self._session.run(None, {self._input: self._tensor(crops)})
        logits = np.asarray(outputs[0], dtype=np.float64)
        logits -= logits.max(axis=1, keepdims=True)
        exp = np.exp(logits)
        out: npt.NDArray[np.float64] = exp / exp.sum(axis=1, keepdims=True)
        return out

    def scores(self, crop: npt.NDArray[np.uint8]) -> dict[str, float]:
        """Barcode -> probability for one crop."""
        probs = self.probabilities([crop])[0]
        return {b: float(p) for b, p in zip(self.barcodes, probs, strict=True)}
