"""Train the product classifier shipped in ``vision/models/`` (offline, CPU, ~2 minutes).

Training data is made here: every product of the planogram gets a package design and
is shown in many camera-like views (:mod:`vision.product.render`); a share of them is
shrunk to the few pixels a ceiling camera gives a product and smeared by a moving
hand (:func:`vision.product.render.degrade`, ``--small-share``), as the gateway's
cameras see them.  A small CNN learns them and is exported to ONNX with its label
list.  Held-out views (other seeds) give the accuracy written next to the model, sharp
and at 24 and 16 pixels.

    pip install /opt/wheels/torch-*.whl      # or any torch CPU wheel: training only
    python scripts/train_product_classifier.py               # the AiFi Nanostore planogram
    python scripts/train_product_classifier.py --planogram FILE.json --out DIR

Nothing here runs in the gateway; the gateway only loads the .onnx with onnxruntime.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from firmware_sim.aifi.dataset import find_dataset  # noqa: E402
from firmware_sim.aifi.planogram import read_products  # noqa: E402
from vision.product.render import SIZE, degrade, view  # noqa: E402


def load_products(path: Path) -> list[dict[str, object]]:
    return [
        {"barcode": p["barcode"], "name": p["name"], "unit_weight_g": p.get("unit_weight_g")}
        for p in read_products(path)
    ]


#: Sizes (pixels across) and motion-blur lengths of the shrunk training views.
SMALL_PX = (10, 40)
BLUR_PX = (1, 7)


def make_set(
    products: list[dict[str, object]],
    per_product: int,
    seed: int,
    small_share: float = 0.0,
    px: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Views of every product; ``small_share`` of them shrunk and blurred at random
    (``SMALL_PX``, ``BLUR_PX``), or all of them at ``px`` pixels when given."""
    rng = np.random.default_rng(seed)
    xs, ys = [], []
    for label, product in enumerate(products):
        for _ in range(per_product):
            img = view(str(product["barcode"]), str(product["name"]), rng)
            if px is not None:
                img = degrade(img, px, int(rng.integers(BLUR_PX[0], BLUR_PX[1] + 1)), rng)
            elif rng.random() < small_share:
                size = int(rng.integers(SMALL_PX[0], SMALL_PX[1] + 1))
                img = degrade(img, size, int(rng.integers(BLUR_PX[0], BLUR_PX[1] + 1)), rng)
            xs.append(img[:, :, ::-1].transpose(2, 0, 1))  # BGR -> RGB, CHW
            ys.append(label)
    return np.stack(xs).astype(np.float32) / 255.0, np.array(ys, dtype=np.int64)


def build_model(classes: int) -> Any:
    """A small CNN: four conv blocks (24-48-96-128 channels), global pooling, one linear."""
    from torch import nn  # noqa: PLC0415

    return nn.Sequential(
        nn.Conv2d(3, 24, 3, padding=1),
        nn.BatchNorm2d(24),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(24, 48, 3, padding=1),
        nn.BatchNorm2d(48),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(48, 96, 3, padding=1),
        nn.BatchNorm2d(96),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(96, 128, 3, padding=1),
        nn.BatchNorm2d(128),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Dropout(0.2),
        nn.Linear(128, classes),
    )


def evaluate(
    model: Any,
    sharp: tuple[np.ndarray, np.ndarray],
    small: dict[int, tuple[np.ndarray, np.ndarray]],
) -> tuple[float, dict[int, float]]:
    """Accuracy on sharp held-out views, and on views at each size in ``small``."""
    import torch  # noqa: PLC0415

    device = next(model.parameters()).device

    def accuracy(x: np.ndarray, y: np.ndarray) -> float:
        found = model(torch.from_numpy(x).to(device)).argmax(1).cpu().numpy()
        return float((found == y).mean())

    model.eval()
    with torch.no_grad():
        return accuracy(*sharp), {px: accuracy(x, y) for px, (x, y) in small.items()}


def train(
    model: Any,
    opt: Any,
    sched: Any,
    data: tuple[np.ndarray, np.ndarray],
    sharp: tuple[np.ndarray, np.ndarray],
    small: dict[int, tuple[np.ndarray, np.ndarray]],
    epochs: int,
) -> tuple[float, dict[int, float]]:
    """Train on ``data`` (on the model's device), report held-out accuracy per epoch."""
    import torch  # noqa: PLC0415
    from torch import nn  # noqa: PLC0415

    device = next(model.parameters()).device
    xt, yt = torch.from_numpy(data[0]).to(device), torch.from_numpy(data[1]).to(device)
    loss_fn = nn.CrossEntropyLoss(label_smoothing=0.05)
    acc, small_acc = 0.0, dict[int, float]()
    for epoch in range(epochs):
        model.train()
        perm = torch.randperm(len(xt), device=device)
        total = 0.0
        for i in range(0, len(xt), 128):
            idx = perm[i : i + 128]
            opt.zero_grad()
            loss = loss_fn(model(xt[idx]), yt[idx])
            loss.backward()
            opt.step()
            sched.step()
            total += loss.item() * len(idx)
        acc, small_acc = evaluate(model, sharp, small)
        print(
            f"epoch {epoch + 1}: loss {total / len(xt):.3f}, held-out accuracy {acc:.3f}, "
            + ", ".join(f"at {px} px {a:.3f}" for px, a in small_acc.items()),
            flush=True,
        )
    return acc, small_acc


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--planogram", type=Path, default=None, help="AiFi-style planogram.json")
    parser.add_argument("--out", type=Path, default=ROOT / "vision" / "models")
    parser.add_argument("--per-product", type=int, default=320)
    parser.add_argument("--epochs", type=int, default=14)
    parser.add_argument(
        "--small-share", type=float, default=0.6, help="share of views shrunk and blurred"
    )
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    import torch  # noqa: PLC0415

    planogram = args.planogram
    if planogram is None:
        root = find_dataset()
        if root is None:
            parser.error("no --planogram and the AiFi dataset is not here")
        planogram = root / "planogram.json"
    products = load_products(planogram)
    torch.manual_seed(args.seed)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.type == "cpu":
        torch.set_num_threads(2)
    t0 = time.time()
    x_train, y_train = make_set(products, args.per_product, args.seed, args.small_share)
    x_test, y_test = make_set(products, 20, args.seed + 1000)  # views never trained on
    small_tests = {px: make_set(products, 20, args.seed + 2000 + px, px=px) for px in (24, 16)}
    print(
        f"{len(products)} products, {len(x_train)} training views ({time.time() - t0:.0f} s)",
        f"on {device}",
    )

    model = build_model(len(products)).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(
        opt, max_lr=3e-3, total_steps=args.epochs * ((len(x_train) + 127) // 128)
    )
    acc, small_acc = train(
        model, opt, sched, (x_train, y_train), (x_test, y_test), small_tests, args.epochs
    )

    args.out.mkdir(parents=True, exist_ok=True)
    onnx_path = args.out / "product_classifier.onnx"
    model.eval()
    model.cpu()
    torch.onnx.export(
        model,
        (torch.zeros(1, 3, SIZE, SIZE),),
        str(onnx_path),
        input_names=["image"],
        output_names=["logits"],
        dynamic_axes={"image": {0: "batch"}, "logits": {0: "batch"}},
        opset_version=17,
        dynamo=False,
    )
    meta = {
        "about": "Product classifier for the planogram below; trained by "
        "scripts/train_product_classifier.py on rendered views (vision/product/render.py). "
        "Input: RGB float 0..1, NCHW, input_size square. Output: logits per product.",
        "planogram": planogram.name,
        "input_size": SIZE,
        "held_out_accuracy": round(acc, 4),
        "held_out_accuracy_small": {f"{px}px": round(a, 4) for px, a in small_acc.items()},
        "small_share": args.small_share,
        "seed": args.seed,
        "products": products,
    }
    (args.out / "product_classifier.json").write_text(json.dumps(meta, indent=1) + "\n")
    print(f"wrote {onnx_path} ({onnx_path.stat().st_size / 1024:.0f} KiB), accuracy {acc:.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
