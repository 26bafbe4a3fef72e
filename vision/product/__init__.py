"""Product recognition: a small classifier (ONNX, shipped in ``vision/models``) that scores
which product a shopper took, to break ties between products of equal weight."""

from vision.product.classifier import ProductClassifier, default_model_path
from vision.product.fusion import fuse_scores

__all__ = ["ProductClassifier", "default_model_path", "fuse_scores"]
