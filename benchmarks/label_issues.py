"""Does the folder check find what it should, and what does it cost?

Run: .venv/bin/python benchmarks/label_issues.py [--images 2000] [--classes 10]
     (--smoke: 300 images, 3 classes, a 200-image folder; checks that it runs)

(a) Label errors: Gaussian class clusters stand in for three backbones' features (each
    backbone its own dimension and noise), 5% of the labels are flipped, the project's own
    cross-validation (`evaluate.crossval.out_of_fold`, the default head) gives out-of-fold
    probabilities, and the report's check ranks them. Printed: the share of the k flipped
    images in the top 2k rows, for the mean over the backbones and for the best one alone.
(b) Near-duplicates: a folder of generated photo-like textures (tests/data/imagegen.py
    `texture`, 128 px): originals, and copies resized by 0.5x and 2x, re-encoded as JPEG
    quality 60 and cropped by 2 px. Printed: copies found, unrelated pictures grouped. The
    same on Fashion-MNIST upscaled to 112 px (the demo's images look alike: a harder case).
(c) Cost: the label check as a share of one backbone's cross-validation (a part of its
    evaluate stage, so a lower bound of evaluate's time), the perceptual hashing as a share
    of validate's time, and the pair search on 100,000 hashes.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # tests.data.imagegen: the generated textures

from bakeoff.config.params import ValidateParams, load_params  # noqa: E402
from bakeoff.data import validate as validate_module  # noqa: E402
from bakeoff.data.near_duplicates import close_pairs  # noqa: E402
from bakeoff.evaluate.crossval import Pool, make_folds, out_of_fold  # noqa: E402
from bakeoff.report.label_issues import check_labels  # noqa: E402
from tests.data.imagegen import texture  # noqa: E402

BACKBONES = {"A": (32, 2.2), "B": (64, 2.6), "C": (16, 3.0)}  # (feature dims, noise)
COPIES = {
    "half": lambda im: im.resize((im.width // 2, im.height // 2), Image.LANCZOS),
    "double": lambda im: im.resize((im.width * 2, im.height * 2), Image.BICUBIC),
    "q60": None,
    "crop2": lambda im: im.crop((2, 2, im.width - 2, im.height - 2)),
}


def label_errors(n: int, classes: int, seed: int = 0) -> dict[str, float]:
    """(a) and the check's cost: recall in the top 2k for mean and best, and timings."""
    import pandas as pd

    rng = np.random.default_rng(seed)
    true = np.arange(n) % classes
    given = true.copy()
    flipped = rng.choice(n, size=n // 20, replace=False)
    given[flipped] = (true[flipped] + rng.integers(1, classes, size=len(flipped))) % classes
    names = [f"c{c}" for c in range(classes)]
    paths = np.array([f"{names[t]}/{i:05d}.png" for i, t in enumerate(true)])
    recipe = load_params(REPO / "params.yaml").train
    recipe = dataclasses.replace(recipe, head_epochs=200)
    oofs, cv_seconds, accuracy = {}, [], {}
    for name, (dims, noise) in BACKBONES.items():
        centres = rng.normal(size=(classes, dims))
        x = (centres[true] + noise * rng.normal(size=(n, dims)) / np.sqrt(dims) * 3).astype(
            np.float32
        )
        data = Pool(x, given, paths.copy(), paths)
        fold = make_folds(given, paths, 5, seed)
        start = time.perf_counter()
        proba = out_of_fold(data, fold, classes, recipe, trials=0)
        cv_seconds.append(time.perf_counter() - start)
        accuracy[name] = float((proba.argmax(axis=1) == given).mean())
        frame = pd.DataFrame({"path": paths, "label": [names[g] for g in given], "fold": fold,
                              "predicted": [names[p] for p in proba.argmax(axis=1)]})  # fmt: skip
        for c, column in enumerate(names):
            frame[f"p_{column}"] = proba[:, c]
        oofs[name] = frame
    best = max(accuracy, key=accuracy.get)
    wrong = set(paths[flipped])
    out = {"k": len(flipped), "cv_seconds": float(np.mean(cv_seconds))}
    import cleanlab.filter  # noqa: F401  (imported before timing: a one-off cost, ~2 s)

    for how in ("mean", "pick"):
        start = time.perf_counter()
        check = check_labels(oofs, names, best, None, how=how)
        with tempfile.TemporaryDirectory() as tmp:
            check.issues.to_csv(Path(tmp) / "label_issues.csv", index=False)
        out[f"{how}_seconds"] = time.perf_counter() - start
        top = set(check.issues["path"].head(2 * len(flipped)))
        out[f"{how}_recall"] = len(top & wrong) / len(wrong)
        out[f"{how}_listed"] = len(check.issues)
    print(f"backbones' out-of-fold accuracy: {accuracy} (best: {best}); 5% flipped: k={out['k']}")
    return out


def _copies(originals: list[Image.Image], folder: Path, n_copied: int) -> dict[str, str]:
    """Save the originals and copies of the first n_copied; copy path -> original path."""
    truth = {}
    for i, img in enumerate(originals):
        img.save(folder / f"c{i % 2}" / f"o{i:05d}.png")
    for i in range(n_copied):
        kind = list(COPIES)[i % len(COPIES)]
        name = f"c{i % 2}/o{i:05d}_{kind}." + ("jpg" if kind == "q60" else "png")
        if COPIES[kind] is None:
            originals[i].save(folder / name, quality=60)
        else:
            COPIES[kind](originals[i]).save(folder / name)
        truth[name] = f"c{i % 2}/o{i:05d}.png"
    return truth


def near_duplicates(originals: list[Image.Image], n_copied: int, distances: list[int], work: Path):
    """(b): per distance, (copies found, copies, unrelated groups, validate seconds)."""
    folder = work / "folder"
    for c in ("c0", "c1"):
        (folder / c).mkdir(parents=True)
    truth = _copies(originals, folder, n_copied)
    results = {}
    for d in distances:
        params = ValidateParams(near_duplicate_distance=d, max_class_imbalance=10.0)
        start = time.perf_counter()
        result = validate_module.validate(params, folder, work / "v", work / "r", work)
        seconds = time.perf_counter() - start
        groups = [g["paths"] for g in result.near_duplicates["list"]]
        where = {p: i for i, g in enumerate(groups) for p in g}
        found = sum(1 for c, o in truth.items() if c in where and where[c] == where.get(o))
        # A group is unrelated when it holds two different originals (or their copies).
        unrelated = sum(len({truth.get(p, p) for p in g}) > 1 for g in groups)
        results[d] = (found, len(truth), unrelated, seconds)
    return results


def hash_share(images: list[Image.Image], validate_seconds: float) -> float:
    """The perceptual hash's CPU time over the folder, as a share of validate's wall time
    (an upper bound of what it adds: validate's workers hash in parallel)."""
    from bakeoff.data.near_duplicates import perceptual_hash

    start = time.perf_counter()
    for img in images:
        perceptual_hash(img)
    return (time.perf_counter() - start) / validate_seconds


def fashion_mnist(n: int) -> list[Image.Image]:
    from bakeoff.data.ingest import FASHION_MNIST_DIR, read_idx

    x = read_idx(FASHION_MNIST_DIR / "train-images-idx3-ubyte.gz")
    pick = np.random.default_rng(0).choice(len(x), size=n, replace=False)
    return [Image.fromarray(x[i]).resize((112, 112), Image.BICUBIC).convert("RGB") for i in pick]


def pair_search_seconds(n: int) -> tuple[float, int]:
    rng = np.random.default_rng(1)
    hashes = rng.integers(0, 2**64, size=n, dtype=np.uint64)
    hashes[n // 2 : n // 2 + 100] = hashes[:100] ^ np.uint64(0b101)  # 100 planted copies
    start = time.perf_counter()
    pairs = close_pairs(hashes, 6)
    return time.perf_counter() - start, len(pairs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=2000, help="label-error images")
    parser.add_argument("--classes", type=int, default=10)
    parser.add_argument("--folder", type=int, default=2000, help="near-duplicate folder size")
    parser.add_argument("--seeds", type=int, default=2, help="label-error draws")
    parser.add_argument("--smoke", action="store_true", help="smallest sizes: does it run?")
    args = parser.parse_args()
    if args.smoke:
        args.images, args.classes, args.folder, args.seeds = 300, 3, 200, 1
    logging.disable(logging.WARNING)
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")
    import great_expectations  # noqa: F401  (imported before timing: a one-off cost)

    runs = [label_errors(args.images, args.classes, seed) for seed in range(args.seeds)]
    copied = args.folder // 5  # 4 kinds of copies: 1,600 originals + 400 copies of 2,000
    with tempfile.TemporaryDirectory() as tmp:
        textures = [texture(i, 128) for i in range(args.folder - copied)]
        b = near_duplicates(textures, copied, [2, 6, 8], Path(tmp) / "tex")
        fm = near_duplicates(
            fashion_mnist(args.folder - copied), copied, [2, 6, 8], Path(tmp) / "fm"
        )
        share = hash_share(textures, b[8][3])
    search, pairs = pair_search_seconds(100_000 if not args.smoke else 10_000)

    print(f"\ncores: {os.cpu_count()} (shared with other work: times are upper bounds)")
    for seed, a in enumerate(runs):
        for how, what in (("mean", "mean over 3 backbones"), ("pick", "best backbone alone")):
            print(f"label errors (draw {seed}), {what}: {a[f'{how}_recall']:.0%} of the "
                  f"k={a['k']} flipped images in the top 2k rows ({a[f'{how}_listed']} "
                  "listed)")  # fmt: skip
    for name, res in (("textures 128 px", b), ("Fashion-MNIST 112 px", fm)):
        for d, (found, total, unrelated, secs) in res.items():
            print(f"near-duplicates, {name}, distance {d}: {found}/{total} copies found, "
                  f"{unrelated} groups of unrelated pictures ({args.folder} images, validate "
                  f"{secs:.1f} s)")  # fmt: skip
    print(f"pair search: {pairs} pairs in {'100,000' if not args.smoke else '10,000'} hashes "
          f"in {search:.2f} s")  # fmt: skip
    a = runs[0]
    print(f"ratio label check (mean) / one backbone's cross-validation: "
          f"{a['mean_seconds'] / a['cv_seconds']:.3f}x ({a['mean_seconds']:.2f} s / "
          f"{a['cv_seconds']:.1f} s)")  # fmt: skip
    print(f"ratio perceptual hashing (one core) / validate stage: {share:.3f}x")


if __name__ == "__main__":
    main()
