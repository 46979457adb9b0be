"""The input pipeline: split manifests, and batches streamed from an on-disk `.npy`.

Pixels come from the decode cache (`bakeoff.data.pixels`) and features from the feature
cache (`bakeoff.backbone.features`), both row-major `.npy` files. `stream` reads one batch of
rows at a time (shuffled by index, seeded), so memory is flat in the number of images.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from bakeoff.data.manifests import read_manifest_csv
from bakeoff.data.npy_rows import NpyRows
from bakeoff.errors import BakeoffError

if TYPE_CHECKING:
    import keras
    import tensorflow as tf


def read_classes(split_dir: Path) -> list[str]:
    """The class names of a split (class index = position)."""
    path = Path(split_dir) / "classes.json"
    if not path.is_file():
        raise BakeoffError(f"no {path}: run `bakeoff split` first")
    return list(json.loads(path.read_text()))


def read_manifest(split_dir: Path, name: str) -> list[dict[str, str]]:
    """The rows (path, label, sha256) of one split manifest."""
    path = Path(split_dir) / f"{name}.csv"
    return read_manifest_csv(path, "bakeoff split", "add images or change the split sizes")


def manifest_file(image_root: Path, relative: str, manifest: str) -> Path:
    """The file a manifest row names, which must lie under `image_root`.

    Raises:
        BakeoffError: The path is absolute or climbs out (`../`): a manifest edited by hand
            or from elsewhere must not make bakeoff read files outside the images.
    """
    # Lexically, not with resolve(): DVC may link data/raw's files into its cache.
    root = Path(os.path.normpath(Path(image_root).absolute()))
    path = Path(os.path.normpath(root / relative))
    if not path.is_relative_to(root) or path == root:
        raise BakeoffError(
            f"{manifest} names {relative!r}, which is outside the image folder {root}: "
            "re-run `bakeoff validate` and `bakeoff split`"
        )
    return path


def augmenter(seed: int) -> keras.Sequential:
    """Random horizontal flip and a small translation, seeded."""
    import keras

    return keras.Sequential(
        [
            keras.layers.RandomFlip("horizontal", seed=seed),
            keras.layers.RandomTranslation(0.1, 0.1, fill_mode="reflect", seed=seed + 1),
        ],
        name="augment",
    )


def stream(
    source: Path,
    labels: np.ndarray,
    n_classes: int,
    batch_size: int,
    shuffle: bool = False,
    seed: int = 42,
    augment: bool = False,
) -> tf.data.Dataset:
    """Batches of (float32 rows, one-hot labels) read from a `.npy` file as they are needed.

    Args:
        source: A row-major `.npy` (uint8 pixels or float32 features), rows = `labels`.
        labels: Integer labels, one per row.
        n_classes: For one-hot labels (categorical_crossentropy).
        batch_size: Batch size.
        shuffle: Reshuffle every epoch (seeded), for training.
        seed: Shuffle and augmentation seed.
        augment: Random flip/translation (training on pixels only).

    Returns:
        The dataset; only a few batches are in memory at any time.
    """
    import tensorflow as tf

    rows = NpyRows(source)
    if len(rows) != len(labels):
        raise BakeoffError(f"{source} has {len(rows)} rows for {len(labels)} labels: delete it")
    labels = np.asarray(labels, dtype=np.int64)

    def read(indices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return rows.read(indices).astype(np.float32), labels[indices]

    def load(indices):
        x, y = tf.numpy_function(read, [indices], [tf.float32, tf.int64], stateful=False)
        x.set_shape((None, *rows.row_shape))
        y.set_shape((None,))
        return x, tf.one_hot(y, n_classes)

    # Shuffling indices, not rows: the shuffle buffer costs 8 bytes per image.
    ds = tf.data.Dataset.range(len(labels))
    if shuffle:
        ds = ds.shuffle(len(labels), seed=seed, reshuffle_each_iteration=True)
    ds = ds.batch(batch_size).map(load, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    if augment:
        aug = augmenter(seed)
        ds = ds.map(lambda a, b: (aug(a, training=True), b), num_parallel_calls=tf.data.AUTOTUNE)
    return ds.prefetch(tf.data.AUTOTUNE)
