"""How much does head tuning cost next to the feature pass it rides on?

Run: .venv/bin/python benchmarks/tune_speed.py   (or `make bench`; several minutes on 2 cores)
     (--smoke: SimpleCNN, 100 + 50 images at 32 px, 2 trials; checks that it runs)

One run, same images, same machine: a stratified Fashion-MNIST sample as 224 px RGB, each
backbone's frozen base (random weights: ImageNet cannot download here, and this measures
speed, not accuracy). For each backbone:
  (a) one feature pass: the base over the train and val images once (after a warm-up batch),
      what `train` pays anyway with the feature cache;
  (b) tuning: `bakeoff.head.tune.tune` on those features with the pipeline's defaults
      (the untuned head plus `--trials` Optuna trials, early stopping on val loss).
Target: (b) takes less than (a), i.e. 20 trials cost less than one feature pass at 224 px.
The CPU is usually shared: absolute times are noisy, compare the ratio of one run.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
FMNIST = Path("/usr/share/datasets/fashion-mnist")


def images(n_train: int, n_val: int, size: int) -> dict:
    """{"train": (x, y), "val": (x, y), "n_classes": 10}: uint8 RGB at `size` px, stratified."""
    from PIL import Image

    from bakeoff.data.ingest import read_idx

    x = read_idx(FMNIST / "train-images-idx3-ubyte.gz")

    y = read_idx(FMNIST / "train-labels-idx1-ubyte.gz")
    rng = np.random.default_rng(0)
    out: dict = {"n_classes": 10}
    picks = {"train": [], "val": []}
    for label in range(10):
        chosen = rng.choice(np.flatnonzero(y == label), (n_train + n_val) // 10, replace=False)
        picks["train"] += list(chosen[: n_train // 10])
        picks["val"] += list(chosen[n_train // 10 :])
    for name, idx in picks.items():
        arrays = [
            np.asarray(Image.fromarray(x[i]).convert("RGB").resize((size, size), Image.BILINEAR))
            for i in idx
        ]
        out[name] = (np.stack(arrays), y[idx].astype(np.int64))
    return out


def measure(backbone: str, data: dict, size: int, trials: int) -> dict:
    """(a) the feature pass and (b) the tuning, for one backbone."""
    import keras

    from bakeoff.backbone.build import build_model
    from bakeoff.config.params import TrainParams
    from bakeoff.head.trainer import HeadParams
    from bakeoff.head.tune import tune

    tp = TrainParams(overrides={})
    keras.utils.set_random_seed(0)
    model = build_model(backbone, data["n_classes"], size, "none", tp.bn_momentum)
    # What the feature cache computes once per image: the frozen base's pooled output.
    extractor = keras.Model(model.inputs, model.get_layer("head_bn").input)

    def features(x: np.ndarray) -> np.ndarray:
        return extractor.predict(x.astype(np.float32), batch_size=32, verbose=0)

    features(data["train"][0][:32])  # graph tracing, not part of the pass
    start = time.perf_counter()
    f_tr, f_va = features(data["train"][0]), features(data["val"][0])
    feature_s = time.perf_counter() - start
    start = time.perf_counter()
    result = tune(
        f_tr, data["train"][1], f_va, data["val"][1], data["n_classes"],
        default=HeadParams(tp.learning_rate, tp.batch_size), trials=trials, seed=42,
        max_epochs=tp.head_epochs, patience=tp.head_patience,
    )  # fmt: skip
    tune_s = time.perf_counter() - start
    epochs = sum(t["epochs"] for t in result.trials) + len(result.default_fit.history)
    return {
        "backbone": backbone,
        "features": f_tr.shape[1],
        "feature_s": feature_s,
        "tune_s": tune_s,
        "trials_per_s": trials / tune_s,
        "pruned": result.summary()["pruned"],
        "epochs": epochs,
        "ratio": tune_s / feature_s,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--backbones", nargs="+", default=["MobileNet", "MobileNetV2", "EfficientNetB0", "VGG16"]
    )
    parser.add_argument("--train", type=int, default=1000)
    parser.add_argument("--val", type=int, default=250)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--smoke", action="store_true", help="smallest sizes: does it run?")
    args = parser.parse_args()
    if args.smoke:
        args.backbones, args.train, args.val, args.size, args.trials = ["SimpleCNN"], 100, 50, 32, 2
    data = images(args.train, args.val, args.size)
    n = len(data["train"][1]) + len(data["val"][1])
    print(f"{len(data['train'][1])} train + {len(data['val'][1])} val images at {args.size} px, "
          f"{args.trials} trials per backbone (plus the untuned head)\n")  # fmt: skip
    print("| backbone | features | (a) feature pass s | img/s | (b) tuning s | trials/s "
          "| pruned | head epochs | (b)/(a) |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|")
    ratios = {}
    for backbone in args.backbones:
        r = measure(backbone, data, args.size, args.trials)
        print(f"| {backbone} | {r['features']} | {r['feature_s']:.1f} | {n / r['feature_s']:.0f} "
              f"| {r['tune_s']:.1f} | {r['trials_per_s']:.2f} | {r['pruned']} | {r['epochs']} "
              f"| {r['ratio']:.2f} |", flush=True)  # fmt: skip
        ratios[backbone] = r["ratio"]
    print()
    for backbone, ratio in ratios.items():
        print(f"ratio tuning / feature pass, {backbone}: {ratio:.2f}x (target < 1)")


if __name__ == "__main__":
    main()
