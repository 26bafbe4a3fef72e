"""Train the product classifier shipped in ``vision/models/`` (offline, CPU, ~2 minutes).

Training data is made here: every product of the planogram gets a package design and
is shown in many camera-like views (:mod:`vision.product.render`); a small CNN learns
them and is exported to ONNX with its label list.  Held-out views (other seeds) give
the accuracy written next to the model.

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

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from firmware_sim.aifi.dataset import find_dataset  # noqa: E402
from vision.product.render import SIZE, view  # noqa: E402


def load_products(path: Path) -> list[dict[str, object]]:
    data = json.loads(path.read_text(encoding="utf-8"))
    return [
        {"barcode": p["barcode"], "name": p["name"], "unit_weight_g": p.get("unit_weight_g")}
        for p in data["products"]
    ]


def make_set(
    products: list[dict[str, object]], per_product: int, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    xs, ys = [], []
    for label, product in enumerate(products):
        for _ in range(per_product):
            img = view(str(product["barcode"]), str(product["name"]), rng)
            xs.append(img[:, :, ::-1].transpose(2, 0, 1))  # BGR -> RGB, CHW
            ys.append(label)
    return np.stack(xs).astype(np.float32) / 255.0, np.array(ys, dtype=np.int64)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--planogram", type=Path, default=None, help="AiFi-style planogram.json")
    parser.add_argument("--out", type=Path, default=ROOT / "vision" / "models")
    parser.add_argument("--per-product", type=int, default=160)
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    import torch  # noqa: PLC0415
    from torch import nn  # noqa: PLC0415

    planogram = args.planogram
    if planogram is None:
        root = find_dataset()
        if root is None:
            parser.error("no --planogram and the AiFi dataset is not here")
        planogram = root / "planogram.json"
    products = load_products(planogram)
    torch.manual_seed(args.seed)
    torch.set_num_threads(2)
    t0 = time.time()
    x_train, y_train = make_set(products, args.per_product, args.seed)
    x_test, y_test = make_set(products, 20, args.seed + 1000)  # views never trained on
    print(f"{len(products)} products, {len(x_train)} training views ({time.time() - t0:.0f} s)")

    model = nn.Sequential(
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
        nn.Linear(128, len(products)),
    )
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(
        opt, max_lr=3e-3, total_steps=args.epochs * ((len(x_train) + 127) // 128)
    )
    xt, yt = torch.from_numpy(x_train), torch.from_numpy(y_train)
    loss_fn = nn.CrossEntropyLoss(label_smoothing=0.05)
    for epoch in range(args.epochs):
        model.train()
        perm = torch.randperm(len(xt))
        total = 0.0
        for i in range(0, len(xt), 128):
            idx = perm[i : i + 128]
            opt.zero_grad()
            loss = loss_fn(model(xt[idx]), yt[idx])
            loss.backward()
            opt.step()
            sched.step()
            total += loss.item() * len(idx)
        model.eval()
        with torch.no_grad():
            acc = float((model(torch.from_numpy(x_test)).argmax(1).numpy() == y_test).mean())
        print(f"epoch {epoch + 1}: loss {total / len(xt):.3f}, held-out accuracy {acc:.3f}")

    args.out.mkdir(parents=True, exist_ok=True)
    onnx_path = args.out / "product_classifier.onnx"
    model.eval()
    torch.onnx.export(
        model,
        torch.zeros(1, 3, SIZE, SIZE),
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
        "seed": args.seed,
        "products": products,
    }
    (args.out / "product_classifier.json").write_text(json.dumps(meta, indent=1) + "\n")
    print(f"wrote {onnx_path} ({onnx_path.stat().st_size / 1024:.0f} KiB), accuracy {acc:.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
