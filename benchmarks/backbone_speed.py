"""How fast is each candidate base at what bakeoff does with it: pooled features, once per image?

Run: .venv/bin/python benchmarks/backbone_speed.py   (a few minutes on 2 cores)
     (--smoke: two small bases at 64 px, a few images; checks that it runs)

One process, one machine, side by side: `bakeoff init`'s default Keras bases and keras-hub's
smallest foundation bases, each at its default input size, random weights (speed does not
depend on the weights, and none can be downloaded here), built as bakeoff builds them
(`keras.applications` with average pooling; keras-hub backbones through
`bakeoff.backbone.hub.pooled`, the family's linear-probe features). For each: images per
second of feature extraction at batch 32 (the feature cache's work), CPU seconds per image,
and the median batch-1 latency. The bases run round-robin, `--rounds` times, and the fastest
round counts, so a busy neighbour slows every base alike. It prints each base's figures as a
ratio to MobileNetV2's, and, for the foundation bases, the ImageNet linear-probe accuracy
keras-hub's table documents per CPU millisecond: the figure `bakeoff init` picks its one
foundation default by.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

# (name, how to build it, default size). keras-hub's configs are those of the presets of the
# same name (hidden size, depth, heads, patch), with random weights.
CNNS = ["MobileNetV3Small", "MobileNetV2", "EfficientNetV2B0", "ConvNeXtTiny", "ResNet50V2"]
HUB = {
    "dinov2_small": dict(hidden_dim=384, num_layers=12, num_heads=6, intermediate_dim=1536),
    "dinov2_base": dict(hidden_dim=768, num_layers=12, num_heads=12, intermediate_dim=3072),
}


def keras_base(name: str, size: int):
    import keras

    app = getattr(keras.applications, name)
    return app(include_top=False, weights=None, pooling="avg", input_shape=(size, size, 3))


def hub_base(name: str, size: int):
    import keras_hub

    from bakeoff.backbone.hub import pooled

    backbone = keras_hub.models.DINOV2Backbone(
        patch_size=14,
        image_shape=(size, size, 3),
        position_embedding_shape=(size, size, 3),
        **HUB[name],
    )
    return pooled(backbone, "dinov2", size)


def compiled(model):
    """The model's inference as one traced function (traced once per input shape)."""
    import tensorflow as tf

    return tf.function(lambda x: model(x, training=False))


def measure(run, size: int, images: int, calls: int) -> dict[str, float]:
    """Batch-32 feature extraction (images/s, CPU s per image) and batch-1 latency (ms)."""
    batch = np.random.default_rng(0).uniform(0, 1, (32, size, size, 3)).astype("float32")
    one = batch[:1]
    run(batch), run(one)  # trace and warm both shapes
    wall, cpu = time.perf_counter(), time.process_time()
    for _ in range(max(1, images // 32)):
        run(batch).numpy()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    done = 32 * max(1, images // 32)
    latencies = []
    for _ in range(calls):
        start = time.perf_counter()
        run(one).numpy()
        latencies.append(1000 * (time.perf_counter() - start))
    return {"ips": done / wall, "cpu_ms": 1000 * cpu / done, "b1_ms": statistics.median(latencies)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="two bases at 64 px, 32 images")
    parser.add_argument("--images", type=int, default=96, help="images per round at batch 32")
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()

    from bakeoff.backbone.hub_presets import HUB_PRESETS
    from bakeoff.backbone.registry import get_backbone

    cnns, hub = (["MobileNetV2"], ["dinov2_small"]) if args.smoke else (CNNS, list(HUB))
    images, calls = (32, 2) if args.smoke else (args.images, 10)

    def size_of(name: str) -> int:
        if args.smoke:
            return 70 if name in HUB else 64  # dinov2: a multiple of its 14 px patch
        return HUB_PRESETS[name].image_size if name in HUB else get_backbone(name).default_size

    models = {n: keras_base(n, size_of(n)) for n in cnns}
    models |= {n: hub_base(n, size_of(n)) for n in hub}
    runs = {name: compiled(model) for name, model in models.items()}
    best: dict[str, dict[str, float]] = {}
    for _ in range(args.rounds):
        for name, run in runs.items():
            got = measure(run, size_of(name), images, calls)
            keep = best.setdefault(name, got)
            best[name] = {k: (max if k == "ips" else min)(keep[k], got[k]) for k in got}
    ref = best["MobileNetV2"]
    print(f"{'base':<18}{'px':>5}{'params':>12}{'images/s':>10}{'CPU ms/img':>12}{'b1 ms':>8}")
    for name, got in best.items():
        params = models[name].count_params()
        print(f"{name:<18}{size_of(name):>5}{params:>12,}{got['ips']:>10.1f}"
              f"{got['cpu_ms']:>12.1f}{got['b1_ms']:>8.1f}")  # fmt: skip
    for name, got in best.items():
        print(f"ratio {name} images/s / MobileNetV2's: {got['ips'] / ref['ips']:.2f}x")
    for name in hub:
        top1 = HUB_PRESETS[name].top1
        if top1:
            per_ms = 100 * top1 / best[name]["cpu_ms"]
            print(f"{name}: ImageNet linear probe {100 * top1:.1f}% / {best[name]['cpu_ms']:.1f} "
                  f"CPU ms per image = {per_ms:.2f} points per CPU ms")  # fmt: skip


if __name__ == "__main__":
    main()
