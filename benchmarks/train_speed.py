"""How fast does bakeoff train, next to the recipe as a newcomer writes it?

Run: .venv/bin/python benchmarks/train_speed.py   (or `make bench`; a few minutes on 2 cores)
     (--smoke: SimpleCNN, 5 + 2 images per class, 1 epoch, 1 round, 2 backbones' latency
     at 32 px; checks that it runs)

One run, same images, same machine: a stratified Fashion-MNIST sample written as 32 px RGB
PNGs, one frozen backbone (weights from a temporary weights file of the right shape: ImageNet
cannot download here), the recipe's head, the same epochs and batch size.
  (a) newcomer: `keras.utils.image_dataset_from_directory` + `model.fit` on the full model;
  (b) bakeoff's `train.train` with feature caching (the frozen base runs once per image);
  (c) bakeoff's `train.train` without it.
(b) and (c) are whole `train()` calls: MLflow run, checkpoints, model logging included.
The weights are random (a file of the right shape), so this measures speed, not accuracy.
The CPU is usually shared: each of (a), (b), (c) runs `--rounds` times and the fastest
round counts. Then the input-pipeline check (bakeoff's tf.data pipeline vs `fit` on a
preloaded tensor, single epochs alternated, median, first epoch dropped), and each backbone's
batch-1 latency at 224 px (best of `--repeats`, round-robin) next to the CPU column of the
Keras Applications table, both normalised to MobileNet = 1.0.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import dataclasses
import json
import logging
import os
import statistics
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
from PIL import Image

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
REPO = Path(__file__).resolve().parents[1]
FMNIST = Path("/usr/share/datasets/fashion-mnist")
# keras.io/api/applications: "Time (ms) per inference step (CPU)", batch 32, 224 px.
KERAS_CPU_MS = {
    "MobileNet": 22.6,
    "MobileNetV2": 25.9,
    "EfficientNetB0": 46.0,
    "ResNet50": 58.2,
    "VGG16": 69.5,
    "DenseNet121": 77.1,
}


def make_images(root: Path, n_train: int, n_val: int, size: int) -> tuple[Path, Path]:
    """raw/{train,val}/<class>/*.png (RGB, `size` px) and bakeoff split manifests."""
    from bakeoff.data.ingest import read_idx
    from bakeoff.lineage import file_sha256

    x = read_idx(FMNIST / "train-images-idx3-ubyte.gz")
    y = read_idx(FMNIST / "train-labels-idx1-ubyte.gz")
    rng = np.random.default_rng(0)
    raw, split = root / "raw", root / "split"
    rows: dict[str, list[dict]] = {"train": [], "val": [], "test": []}
    for label in range(10):
        picks = rng.choice(np.flatnonzero(y == label), n_train + n_val, replace=False)
        for i, idx in enumerate(picks):
            name = "train" if i < n_train else "val"
            path = raw / name / f"c{label}" / f"{idx}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            img = Image.fromarray(x[idx]).convert("RGB").resize((size, size), Image.BILINEAR)
            img.save(path)
            sha = file_sha256(path)
            rows[name].append(
                {"path": f"{name}/c{label}/{idx}.png", "label": f"c{label}", "sha256": sha}
            )
    rows["test"] = rows["val"]
    split.mkdir()
    for name, items in rows.items():
        with open(split / f"{name}.csv", "w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=["path", "label", "sha256"])
            writer.writeheader()
            writer.writerows(items)
    (split / "classes.json").write_text(json.dumps([f"c{i}" for i in range(10)]))
    return raw, split


def newcomer(
    raw: Path, backbone: str, weights: Path, size: int, epochs: int, batch: int, work: Path
) -> tuple[float, float]:
    """(a): the recipe as a tutorial writes it; (wall seconds: load + build + fit, val acc)."""
    import keras

    from bakeoff.backbone.registry import REGISTRY

    start = time.perf_counter()
    load = dict(image_size=(size, size), batch_size=batch, label_mode="categorical", seed=42)
    train_ds = keras.utils.image_dataset_from_directory(raw / "train", **load, verbose=False)
    val_ds = keras.utils.image_dataset_from_directory(raw / "val", **load, verbose=False)
    entry = REGISTRY[backbone]
    base = entry.constructor(
        input_shape=(size, size, 3), include_top=False, pooling="avg", weights=str(weights)
    )
    base.trainable = False
    preprocess = (
        (lambda t: t)  # SimpleCNN rescales inside (keras.applications' "none" ones pass through)
        if entry.family is None
        else getattr(keras.applications, entry.family).preprocess_input
    )
    inputs = keras.Input((size, size, 3))
    x = base(preprocess(inputs), training=False)
    x = keras.layers.BatchNormalization()(x)
    model = keras.Model(inputs, keras.layers.Dense(10, activation="softmax")(x))
    model.compile(
        optimizer=keras.optimizers.Adamax(0.001),
        loss="categorical_crossentropy",
        metrics=["accuracy"],
    )
    history = model.fit(
        train_ds,
        validation_data=val_ds,
        epochs=epochs,
        verbose=0,
        callbacks=[
            keras.callbacks.ReduceLROnPlateau(),
            keras.callbacks.ModelCheckpoint(str(work / "newcomer.keras"), save_best_only=True),
        ],
    )
    assert len(history.history["loss"]) == epochs
    return time.perf_counter() - start


def bakeoff_train(params, backbone: str, split: Path, raw: Path, work: Path, cache: bool):
    """(b)/(c): a whole `train()` call; returns (wall seconds, result)."""
    from bakeoff.train.stage import train

    recipe = dataclasses.replace(params.train, cache_features=cache)
    tag = "cached" if cache else "uncached"
    start = time.perf_counter()
    result = train(
        backbone,
        recipe,
        split,
        raw,
        work / "models" / tag,
        work / "state" / tag,
        work / "plots" / tag,
        tune=params.tune,
        tracking_params=params.tracking,
        cache_dir=work / "cache" / tag,
        root=work,
    )
    return time.perf_counter() - start, result


def pipeline_check(
    params, backbone: str, split: Path, raw: Path, epochs: int
) -> tuple[float, float]:
    """Median epoch seconds of bakeoff's tf.data pipeline and of a preloaded tensor.

    The two feeds train two identical models one epoch at a time, alternately, so a load
    spike from other processes hits both alike; each one's first epoch (tracing) is dropped.
    """
    import tempfile

    import keras
    import tensorflow as tf

    from bakeoff.backbone.build import build_model
    from bakeoff.data.dataset import stream
    from bakeoff.data.pixels import split_pixels

    recipe = params.train
    cache = Path(tempfile.mkdtemp(prefix="bakeoff-pipeline-"))
    pixels = split_pixels(split, "train", raw, recipe.image_size, cache)
    x, y, classes = np.asarray(pixels.array()), pixels.labels, pixels.classes
    streamed = stream(
        pixels.path, y, len(classes), recipe.batch_size, shuffle=True, seed=recipe.seed
    )
    feeds = {
        "tf.data": (streamed,),
        "tensor": (tf.constant(x.astype(np.float32)), tf.one_hot(y, len(classes))),
    }
    models, times = {}, {feed: [] for feed in feeds}
    for feed in feeds:
        models[feed] = build_model(
            backbone, len(classes), recipe.image_size, recipe.weights, recipe.bn_momentum
        )
        models[feed].compile(
            optimizer=keras.optimizers.Adamax(recipe.learning_rate),
            loss="categorical_crossentropy",
            metrics=["accuracy"],
            jit_compile=False,
        )
    for epoch in range(epochs + 1):
        for feed, data in feeds.items():
            start: list[float] = []
            timer = keras.callbacks.LambdaCallback(
                on_epoch_begin=lambda e, logs, start=start: start.append(time.perf_counter()),
                on_epoch_end=lambda e, logs, feed=feed, start=start: times[feed].append(
                    time.perf_counter() - start[0]
                ),
            )
            extra = {} if feed == "tf.data" else {"batch_size": recipe.batch_size, "shuffle": True}
            models[feed].fit(
                *data, initial_epoch=epoch, epochs=epoch + 1, verbose=0, callbacks=[timer], **extra
            )
    return statistics.median(times["tf.data"][1:]), statistics.median(times["tensor"][1:])


def latencies_ms(names: list[str], size: int, repeats: int) -> dict[str, float]:
    """Best-of-`repeats` batch-1 forward time of bakeoff's model (preprocess + base + head).

    The models are timed round-robin, so other processes' load spreads over all of them;
    the minimum is the least disturbed call.
    """
    import tensorflow as tf

    from bakeoff.backbone.build import build_model

    x = tf.constant(np.random.default_rng(0).uniform(0, 255, (1, size, size, 3)), tf.float32)
    forwards = {}
    for name in names:
        model = build_model(name, 10, size, "none")
        forwards[name] = tf.function(lambda t, model=model: model(t, training=False))
        for _ in range(3):  # tracing and memory allocation
            forwards[name](x).numpy()
    times: dict[str, list[float]] = {name: [] for name in names}
    for _ in range(repeats):
        for name, forward in forwards.items():
            start = time.perf_counter()
            forward(x).numpy()  # .numpy() waits for the result
            times[name].append(time.perf_counter() - start)
    return {name: 1000 * min(t) for name, t in times.items()}


def _row(label: str, wall: float, fit: float, images: int) -> str:
    return f"{label:<50} {wall:8.1f} {fit:12.1f} {images / wall:10.0f}"


def compare_training(args, params, raw: Path, split: Path, weights: Path, work: Path) -> None:
    """(a), (b), (c) in turn, `args.rounds` times; the fastest round of each counts."""
    import tensorflow as tf

    # bakeoff's train() turns op determinism on for the whole process; on from the start,
    # every run (newcomer included) computes under the same setting whatever the order.
    tf.config.experimental.enable_op_determinism()
    runs: dict[str, list[tuple[float, float]]] = {"a": [], "b": [], "c": []}
    for _ in range(args.rounds):
        a = newcomer(raw, args.backbone, weights, args.size, args.epochs, args.batch_size, work)
        runs["a"].append((a, a))
        with open(os.devnull, "w") as null, contextlib.redirect_stdout(null):  # progress bars
            for key, cache in (("b", True), ("c", False)):
                wall, result = bakeoff_train(params, args.backbone, split, raw, work, cache)
                runs[key].append((wall, result.train_seconds))
    (a, _), (b, fit_b), (c, fit_c) = (min(runs[k]) for k in "abc")
    images = 10 * args.train_per_class * args.epochs
    print(
        f"{'run (best of ' + str(args.rounds) + ')':<50} {'wall s':>8} {'build+fit s':>12} "
        f"{'images/s':>10}"
    )
    print(_row("(a) newcomer: image_dataset_from_directory + fit", a, a, images))
    print(_row("(b) bakeoff train(), feature cache", b, fit_b, images))
    print(_row("(c) bakeoff train(), no feature cache", c, fit_c, images))
    print(
        f"ratio (a) / (b), bakeoff's speed over the newcomer's: {a / b:.2f}x (wall; "
        f"{a / fit_b:.2f}x on build+fit)\n"
        f"ratio (c) / (b), the feature cache's speed-up: {c / b:.2f}x (wall; "
        f"{fit_c / fit_b:.2f}x on build+fit)"
        "\n(images/s = train images x epochs / wall s; bakeoff's wall time adds image "
        "loading, MLflow run and model logging, checkpoints and plots; the newcomer's "
        "build+fit includes its image decoding)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backbone", default="MobileNetV2")
    parser.add_argument("--train-per-class", type=int, default=50)
    parser.add_argument("--val-per-class", type=int, default=10)
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--latency-size", type=int, default=224)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=2, help="training comparison rounds")
    parser.add_argument("--skip-latency", action="store_true")
    parser.add_argument("--latency-backbones", nargs="+", default=list(KERAS_CPU_MS))
    parser.add_argument("--pipeline-epochs", type=int, default=5, help="timed, after the first")
    parser.add_argument("--smoke", action="store_true", help="smallest sizes: does it run?")
    args = parser.parse_args()
    if args.smoke:
        args.backbone, args.train_per_class, args.val_per_class = "SimpleCNN", 5, 2
        args.epochs, args.rounds = 1, 1
        args.latency_size, args.repeats, args.pipeline_epochs = 32, 1, 1
        args.latency_backbones = ["MobileNet", "MobileNetV2"]
    if "MobileNet" not in args.latency_backbones:
        parser.error("--latency-backbones must include MobileNet (the ratios' unit)")
    logging.disable(logging.WARNING)
    warnings.filterwarnings("ignore")

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        (work / "mlruns").mkdir()
        os.environ.pop("MLFLOW_TRACKING_URI", None)  # the benchmark's own store, in work
        raw, split = make_images(work, args.train_per_class, args.val_per_class, args.size)

        from bakeoff import tracking
        from bakeoff.backbone.build import build_base
        from bakeoff.config.params import BackboneOverride, load_params

        weights = work / f"{args.backbone}.weights.h5"
        build_base(args.backbone, args.size).save_weights(weights)
        real = load_params(REPO / "params.yaml")
        e = args.epochs
        recipe = dataclasses.replace(
            real.train,
            weights=str(weights),
            image_size=args.size,
            epochs=e,
            min_epochs=e,
            patience=e,
            batch_size=args.batch_size,
            fine_tune_layers=0,
            augment=False,
            overrides={args.backbone: BackboneOverride()},  # one entry per backbone: none
        )
        params = dataclasses.replace(real, backbones=[args.backbone], train=recipe)
        # work is the project root: params' relative sqlite URI puts the store in work/mlruns.
        tracking.configure(params.tracking, work)  # create the MLflow store before timing
        n_train = 10 * args.train_per_class
        print(
            f"\nTraining {args.backbone}, frozen base, {args.size} px, {n_train} train + "
            f"{10 * args.val_per_class} val Fashion-MNIST images, {e} epochs, batch "
            f"{args.batch_size}; CPU: {os.cpu_count()} cores shared with other work"
        )
        compare_training(args, params, raw, split, weights, work)

        with open(os.devnull, "w") as null, contextlib.redirect_stdout(null):
            pipe, tensor = pipeline_check(
                params, args.backbone, split, raw, epochs=args.pipeline_epochs
            )
        print(
            f"\nInput pipeline (full model, no cache; median epoch, epoch 1 excluded): "
            f"tf.data {pipe:.2f} s vs preloaded tensor {tensor:.2f} s\n"
            f"ratio tf.data / preloaded tensor: {pipe / tensor:.2f}x (target <= 1.10)"
        )

    if args.skip_latency:
        return
    print(
        f"\nInference latency, batch 1, {args.latency_size} px (bakeoff's model: preprocess "
        f"+ base + head; best of {args.repeats}, round-robin), vs Keras Applications CPU ms/step "
        "(batch 32, 224 px, 92-core EPYC); both normalised to MobileNet = 1.0"
    )
    measured = latencies_ms(args.latency_backbones, args.latency_size, args.repeats)
    print(f"{'backbone':<16} {'ms here':>9} {'ratio here':>11} {'keras ms':>9} {'keras ratio':>12}")
    for name, ms in measured.items():
        print(
            f"{name:<16} {ms:9.1f} {ms / measured['MobileNet']:11.2f} "
            f"{KERAS_CPU_MS[name]:9.1f} {KERAS_CPU_MS[name] / KERAS_CPU_MS['MobileNet']:12.2f}"
        )


if __name__ == "__main__":
    main()
