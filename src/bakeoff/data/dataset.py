"""The input pipeline: split manifests -> decoded, resized pixels -> a cached tf.data pipeline.

Every image is decoded once (PIL, through `images.load_array`, in parallel threads) and
kept in memory, so after the first pass an epoch costs what `fit` on a preloaded tensor
costs: the input pipeline is never the bottleneck.
"""

from __future__ import annotations

import csv
import json
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import tensorflow as tf
from tqdm import tqdm

from bakeoff.errors import BakeoffError
from bakeoff.data.images import load_array


def read_classes(split_dir: Path) -> list[str]:
    """The class names of a split (class index = position)."""
    path = Path(split_dir) / "classes.json"
    if not path.is_file():
        raise BakeoffError(f"no {path}: run `bakeoff split` first")
    return list(json.loads(path.read_text()))


def read_manifest(split_dir: Path, name: str) -> list[dict[str, str]]:
    """The rows (path, label, sha256) of one split manifest."""
    path = Path(split_dir) / f"{name}.csv"
    if not path.is_file():
        raise BakeoffError(f"no split manifest {path}: run `bakeoff split` first")
    with open(path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    if not rows:
        raise BakeoffError(f"split manifest {path} is empty: add images or change split sizes")
    return rows


def load_split(
    split_dir: Path, name: str, image_root: Path, image_size: int
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Decode and resize every image of one split.

    Args:
        split_dir: Folder with {train,val,test}.csv and classes.json.
        name: "train", "val" or "test".
        image_root: The folder the manifest paths are relative to (data/raw).
        image_size: Square side in pixels.

    Returns:
        (x uint8 (N, size, size, 3), y int64 (N,), classes).
    """
    classes = read_classes(split_dir)
    index = {label: i for i, label in enumerate(classes)}
    rows = read_manifest(split_dir, name)
    unknown = sorted({r["label"] for r in rows} - index.keys())
    if unknown:
        raise BakeoffError(f"{name}.csv has labels not in classes.json: {unknown}: re-run split")
    files = [Path(image_root) / r["path"] for r in rows]
    missing = [str(f) for f in files if not f.is_file()]
    if missing:
        raise BakeoffError(
            f"{len(missing)} images of {name}.csv are missing (e.g. {missing[0]}): "
            "re-run ingest/validate/split"
        )
    # PIL releases the GIL while decoding and resizing, so threads scale over cores.
    workers = min(32, (os.cpu_count() or 1) + 2)
    with ThreadPoolExecutor(workers) as pool:
        arrays = list(
            tqdm(
                pool.map(lambda f: load_array(f, image_size), files),
                total=len(files),
                desc=f"loading {name} images",
                unit="img",
                leave=False,
            )
        )
    x = np.stack(arrays).astype(np.uint8)
    y = np.array([index[r["label"]] for r in rows], dtype=np.int64)
    return x, y, classes


def augmenter(seed: int) -> tf.keras.Sequential:
    """Random horizontal flip and a small translation, seeded."""
    import keras

    return keras.Sequential(
        [
            keras.layers.RandomFlip("horizontal", seed=seed),
            keras.layers.RandomTranslation(0.1, 0.1, fill_mode="reflect", seed=seed + 1),
        ],
        name="augment",
    )


def to_dataset(
    x: np.ndarray,
    y: np.ndarray,
    n_classes: int,
    batch_size: int,
    shuffle: bool = False,
    seed: int = 42,
    augment: bool = False,
) -> tf.data.Dataset:
    """Batches of (float32 0..255 pixels, one-hot labels), cached, shuffled, prefetched.

    Args:
        x: Inputs (uint8 images, or any features).
        y: Integer labels.
        n_classes: For one-hot labels (categorical_crossentropy).
        batch_size: Batch size.
        shuffle: Reshuffle every epoch (seeded), for training.
        seed: Shuffle and augmentation seed.
        augment: Random flip/translation (training only).

    Returns:
        The dataset.
    """
    ds = tf.data.Dataset.from_tensor_slices((x, y))
    ds = ds.map(
        lambda a, b: (tf.cast(a, tf.float32), tf.one_hot(b, n_classes)),
        num_parallel_calls=tf.data.AUTOTUNE,
    ).cache()
    if shuffle:
        ds = ds.shuffle(len(x), seed=seed, reshuffle_each_iteration=True)
    ds = ds.batch(batch_size)
    if augment:
        aug = augmenter(seed)
        ds = ds.map(lambda a, b: (aug(a, training=True), b), num_parallel_calls=tf.data.AUTOTUNE)
    return ds.prefetch(tf.data.AUTOTUNE)


def make_dataset(
    split_dir: Path,
    name: str,
    image_root: Path,
    image_size: int,
    batch_size: int,
    shuffle: bool = False,
    seed: int = 42,
    augment: bool = False,
) -> tuple[tf.data.Dataset, list[str]]:
    """`load_split` then `to_dataset`: one split as a training-ready dataset.

    Returns:
        (dataset, classes).
    """
    x, y, classes = load_split(split_dir, name, image_root, image_size)
    return to_dataset(x, y, len(classes), batch_size, shuffle, seed, augment), classes
