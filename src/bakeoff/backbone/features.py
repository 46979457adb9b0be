"""Frozen-base features, cached on disk: a pretrained base runs once per image, ever.

With a frozen base, training the head only needs the base's output for each image. That
output is computed in one streamed pass and written to
`<cache_dir>/features/<backbone>/<split>-<size>px-<key>.npy` (float32, one row per image,
manifest order). The key hashes the backbone, the sha256 of the weights file, the image
size and the split's content (its pixel-cache key: manifest with every file's sha256,
classes, decode code), so a rerun, a second stage or a hyper-parameter search reads the
file instead of recomputing it, and any change of data, size or weights recomputes it.

    from bakeoff.backbone.features import load_features
    f = load_features("MobileNet", params.for_backbone("MobileNet"), split_dir, raw_dir, cache_dir)
    f.x_train, f.y_train, f.x_val, f.y_val   # (N, D) float32 memmaps, (N,) int64 labels
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from bakeoff.config.params import TrainParams
from bakeoff.data.pixels import file_lock, split_key, split_labels, split_pixels
from bakeoff.errors import BakeoffError
from bakeoff.lineage import file_sha256
from bakeoff.resources import disk_full_guard, ensure_free_disk, memory_guard

if TYPE_CHECKING:
    import keras

    from bakeoff.data.pixels import PixelSplit

FEATURE_BATCH = 32  # fixed, so features never depend on train.batch_size
_VERSION = "1"  # bump when what a feature row means changes


@dataclass(frozen=True)
class Features:
    """The cached features and labels of some splits.

    Attributes:
        x: Split name -> (N, D) float32 read-only memmap of the base's pooled output.
        y: Split name -> (N,) int64 labels (positions in `classes`).
        classes: The class names.
        paths: Split name -> the `.npy` file behind `x`.
        computed: The splits whose features were computed now (the others were read).
    """

    x: dict[str, np.ndarray]
    y: dict[str, np.ndarray]
    classes: list[str]
    paths: dict[str, Path]
    computed: tuple[str, ...]

    @property
    def x_train(self) -> np.ndarray:
        return self.x["train"]

    @property
    def y_train(self) -> np.ndarray:
        return self.y["train"]

    @property
    def x_val(self) -> np.ndarray:
        return self.x["val"]

    @property
    def y_val(self) -> np.ndarray:
        return self.y["val"]

    @property
    def x_test(self) -> np.ndarray:
        return self.x["test"]

    @property
    def y_test(self) -> np.ndarray:
        return self.y["test"]


def cache_off_reason(recipe: TrainParams) -> str | None:
    """Why the head does not train on cached base features for this recipe, or None.

    A feature cache needs a pretrained base (with `weights: none` the whole network
    trains), the same images every epoch (no augmentation) and `train.cache_features`.
    Training tunes its head on the cache and evaluation cross-validates heads on it.
    """
    if recipe.weights == "none":
        return (
            "train.weights is none: the whole network trains from scratch, so there are no "
            "cached features and every tuning trial or fold would be a full training"
        )
    if recipe.augment:
        return "train.augment is on: augmented images change every epoch, so no feature cache"
    if not recipe.cache_features:
        return "train.cache_features is false: no feature cache to train heads on"
    return None


def cached_head(recipe: TrainParams) -> bool:
    """Whether phase 1 trains only the head, on features computed once."""
    return cache_off_reason(recipe) is None


def model_off_reason(recipe: TrainParams) -> str | None:
    """Why cached base features do not describe the trained model, or None when they do:
    there is no cache, or fine-tuning changed the base after the head trained on it."""
    if (off := cache_off_reason(recipe)) is not None:
        return off
    if recipe.fine_tune_layers > 0:
        return (
            "train.fine_tune_layers > 0: fine-tuning changes the base, so the cached "
            "features are not what the model sees and each fold would be a full training"
        )
    return None


def feature_key(backbone: str, weights_sha256: str, image_size: int, pixel_key: str) -> str:
    """The cache key of one split's features (see the module docstring)."""
    text = "|".join([_VERSION, backbone, weights_sha256, str(image_size), pixel_key])
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def build_extractor(backbone: str, image_size: int, weights: str) -> keras.Model:
    """0..255 RGB -> the backbone's preprocessing -> the frozen base, in inference mode."""
    import keras

    from bakeoff.backbone.build import base_layer, build_model

    model = build_model(backbone, 2, image_size, weights)
    bn = model.get_layer("head_bn")
    base_layer(model).trainable = False
    return keras.Model(model.inputs, bn.input, name=f"features_{backbone}")


def load_features(
    backbone: str,
    recipe: TrainParams,
    split_dir: Path,
    image_root: Path,
    cache_dir: Path,
    splits: Sequence[str] = ("train", "val"),
    extractor: keras.Model | None = None,
) -> Features:
    """The frozen base's features of `splits`, from the cache or computed once into it.

    Args:
        backbone: A registry name.
        recipe: This backbone's train params (`weights` must be pretrained; `image_size`).
        split_dir: data/split.
        image_root: data/raw (read only on a decode-cache miss).
        cache_dir: The cache root (.bakeoff/cache).
        splits: Which splits, e.g. ("train", "val") or ("train", "val", "test").
        extractor: The model computing features from 0..255 pixels, if one is at hand (the
            train stage passes its own); built from the registry when needed otherwise.

    Returns:
        Memory-mapped features and labels.

    Raises:
        BakeoffError: `train.weights` is none (the base trains, so there is nothing to
            cache), the weights are missing, or the disk is too full.
    """
    from bakeoff.backbone.build import resolve_weights
    from bakeoff.backbone.registry import input_size

    if recipe.weights == "none":
        raise BakeoffError(
            f"{backbone}: features are cached only for a frozen pretrained base, but "
            "train.weights is none (the whole network trains): set train.weights"
        )
    size = input_size(backbone, recipe.image_size)
    weights_sha = file_sha256(resolve_weights(backbone, recipe.weights, size))
    folder = Path(cache_dir) / "features" / backbone
    x, y, paths, computed = {}, {}, {}, []
    for name in splits:
        labels, classes = split_labels(split_dir, name)
        key = feature_key(backbone, weights_sha, size, split_key(split_dir, name, size))
        path = folder / f"{name}-{size}px-{key}.npy"
        with file_lock(folder / f".{name}-{size}px.lock"):
            if not path.is_file():
                pixels = split_pixels(split_dir, name, image_root, size, cache_dir)
                if extractor is None:
                    extractor = build_extractor(backbone, size, recipe.weights)
                _write_features(extractor, pixels, path)
                computed.append(name)
                for stale in folder.glob(f"{name}-{size}px-*.npy"):
                    if stale != path:
                        stale.unlink(missing_ok=True)
        x[name], y[name], paths[name] = np.load(path, mmap_mode="r"), labels, path
        if len(x[name]) != len(labels):
            raise BakeoffError(f"{path} does not match {name}.csv: delete it to rebuild")
    return Features(x, y, classes, paths, tuple(computed))


def _write_features(extractor: keras.Model, pixels: PixelSplit, path: Path) -> None:
    """One streamed forward pass over `pixels`, written row by row to `path` (atomically)."""
    from tqdm import tqdm

    from bakeoff.data.dataset import stream

    dim = int(extractor.output_shape[-1])
    n = len(pixels)
    what = f"the feature cache ({n} images x {dim} float32)"
    ensure_free_disk(path.parent, n * dim * 4, what, "free disk space")
    ds = stream(pixels.path, pixels.labels, len(pixels.classes), FEATURE_BATCH)
    size = int(extractor.input_shape[1])
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    full = disk_full_guard(path.parent, n * dim * 4, what, "free disk space", partial=tmp)
    guard = memory_guard("computing features", FEATURE_BATCH, size)
    try:
        with (
            guard,
            full,
            open(tmp, "wb") as fh,
            tqdm(total=n, desc="features", unit="img", leave=False) as bar,
        ):
            header = {"descr": "<f4", "fortran_order": False, "shape": (n, dim)}
            np.lib.format.write_array_header_1_0(fh, header)
            for batch, _ in ds:
                # Keras's compiled predict step: inference mode, traced once per model.
                out = np.asarray(extractor.predict_on_batch(batch), dtype="<f4")
                if not np.isfinite(out).all():
                    raise BakeoffError(
                        f"the frozen base gives non-finite features on {path.stem}: the "
                        "weights file is broken; check train.weights"
                    )
                fh.write(out.tobytes())
                bar.update(len(out))
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
