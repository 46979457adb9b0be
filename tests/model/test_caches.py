"""The decode cache and the feature cache: used when valid, rebuilt when data, size or
weights change; streaming feeds training exactly the batches the in-memory pipeline did."""

from __future__ import annotations

import csv
import dataclasses

import numpy as np
import pytest

from bakeoff.backbone import features as features_module
from bakeoff.backbone.features import load_features
from bakeoff.data import pixels as pixels_module
from bakeoff.data.dataset import stream
from bakeoff.data.images import load_array
from bakeoff.data.pixels import split_pixels
from bakeoff.lineage import file_sha256


def _count_decodes(monkeypatch) -> list[str]:
    calls: list[str] = []
    real = pixels_module.images.load_array

    def counting(path, size):
        calls.append(str(path))
        return real(path, size)

    monkeypatch.setattr(pixels_module.images, "load_array", counting)
    return calls


def _replace_image(raw, split, name: str = "train") -> None:
    """Change one image's bytes and record its new sha256 in the manifest (as split would)."""
    path = split / f"{name}.csv"
    with open(path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    image = raw / rows[0]["path"]
    pixels = np.asarray(load_array(image, 32))
    from PIL import Image

    Image.fromarray(255 - pixels).save(image)
    rows[0]["sha256"] = file_sha256(image)
    with open(path, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=["path", "label", "sha256"])
        writer.writeheader()
        writer.writerows(rows)


def test_stream_feeds_the_batches_of_the_in_memory_pipeline(tiny_data, tmp_path):
    import tensorflow as tf

    raw, split = tiny_data
    train = split_pixels(split, "train", raw, 32, tmp_path / "cache")
    with open(split / "train.csv", newline="") as fh:
        files = [raw / row["path"] for row in csv.DictReader(fh)]
    x = np.stack([load_array(f, 32) for f in files])  # what train used to hold in memory
    assert np.array_equal(train.array(), x), "the cache holds what the one decode gives"

    # The pipeline before streaming: every image in memory, cached as float, shuffled.
    old = (
        tf.data.Dataset.from_tensor_slices((x, train.labels))
        .map(lambda a, b: (tf.cast(a, tf.float32), tf.one_hot(b, 3)))
        .cache()
        .shuffle(len(x), seed=7, reshuffle_each_iteration=True)
        .batch(4)
    )
    new = stream(train.path, train.labels, 3, 4, shuffle=True, seed=7)
    for _ in range(2):  # two epochs: the same reshuffled order too
        got, want = list(new.as_numpy_iterator()), list(old.as_numpy_iterator())
        assert len(got) == len(want)
        for (xg, yg), (xw, yw) in zip(got, want, strict=True):
            assert np.array_equal(xg, xw) and np.array_equal(yg, yw)


def test_decode_cache_is_reused_and_rebuilt_when_data_or_size_change(
    tiny_data, tmp_path, monkeypatch
):
    raw, split = tiny_data
    cache = tmp_path / "cache"
    decodes = _count_decodes(monkeypatch)
    first = split_pixels(split, "train", raw, 32, cache)
    n = len(first)
    assert len(decodes) == n
    again = split_pixels(split, "train", raw, 32, cache)
    assert again.path == first.path and len(decodes) == n, "reused: nothing decoded"

    bigger = split_pixels(split, "train", raw, 40, cache)
    assert bigger.path != first.path and len(decodes) == 2 * n
    assert bigger.array().shape == (n, 40, 40, 3)

    val_before = split_pixels(split, "val", raw, 32, cache).path
    _replace_image(raw, split)
    changed = split_pixels(split, "train", raw, 32, cache)
    assert changed.path != first.path and len(decodes) == 3 * n + len(
        split_pixels(split, "val", raw, 32, cache)
    )
    assert not first.path.exists(), "the old version of the split is removed"
    assert split_pixels(split, "val", raw, 32, cache).path == val_before, "val untouched"


def _weights(tmp_path, seed: int):
    import keras

    from bakeoff.backbone.build import build_base

    keras.utils.set_random_seed(seed)
    path = tmp_path / f"w{seed}.weights.h5"
    build_base("SimpleCNN", 32).save_weights(path)
    return path


def test_feature_cache_runs_the_base_once_per_image_and_is_keyed(
    params, tiny_data, tmp_path, monkeypatch
):
    raw, split = tiny_data
    cache = tmp_path / "cache"
    recipe = dataclasses.replace(
        params.train, weights=str(_weights(tmp_path, 1)), image_size=32, augment=False
    )
    forwarded: list[int] = []
    real = features_module._write_features

    def counting(extractor, pixels, path):
        forwarded.append(len(pixels))
        return real(extractor, pixels, path)

    monkeypatch.setattr(features_module, "_write_features", counting)
    first = load_features("SimpleCNN", recipe, split, raw, cache)
    n_train, n_val = len(first.y_train), len(first.y_val)
    assert forwarded == [n_train, n_val] and first.computed == ("train", "val")
    assert first.x_train.shape[0] == n_train and first.x_train.dtype == np.float32

    again = load_features("SimpleCNN", recipe, split, raw, cache)
    assert len(forwarded) == 2 and again.computed == (), "read from disk, base not run"
    assert np.array_equal(again.x_val, first.x_val)
    assert again.paths == first.paths

    _replace_image(raw, split, "val")
    assert load_features("SimpleCNN", recipe, split, raw, cache).computed == ("val",)
    resized = dataclasses.replace(recipe, image_size=40)
    assert load_features("SimpleCNN", resized, split, raw, cache).computed == ("train", "val")
    other = dataclasses.replace(recipe, weights=str(_weights(tmp_path, 2)))
    assert load_features("SimpleCNN", other, split, raw, cache).computed == ("train", "val")
    assert len(forwarded) == 7


def test_train_reuses_cached_features_bit_for_bit(params, tiny_data, tmp_path, tracking_uri):
    from bakeoff.train.stage import train

    raw, split = tiny_data
    recipe = dataclasses.replace(
        params.train, weights=str(_weights(tmp_path, 1)), epochs=3, augment=False,
        cache_features=True, learning_rate=0.01,
    )  # fmt: skip
    p = dataclasses.replace(params, train=recipe)
    cache = tmp_path / "cache"

    def run(tag):
        root = tmp_path / tag
        return train("SimpleCNN", p.train, split, raw, root / "m", root / "s", root / "p",
                     tune=p.tune, tracking_params=p.tracking, cache_dir=cache,
                     root=tmp_path)  # fmt: skip

    first = run("a")
    files = sorted((cache / "features" / "SimpleCNN").glob("*.npy"))
    assert len(files) == 2
    stamps = [f.stat().st_mtime_ns for f in files]

    def refuse(*args, **kwargs):
        raise AssertionError("features recomputed although cached")

    mp = pytest.MonkeyPatch()
    mp.setattr(features_module, "_write_features", refuse)
    try:
        second = run("b")
    finally:
        mp.undo()
    assert [f.stat().st_mtime_ns for f in files] == stamps
    assert (second.val_accuracy, second.val_loss) == (first.val_accuracy, first.val_loss)
    assert first.val_accuracy > 0.5, "the head learns on the cached features"


def test_out_of_disk_and_out_of_memory_are_errors_that_name_the_size(
    tiny_data, tmp_path, monkeypatch
):
    import shutil
    from collections import namedtuple

    from bakeoff import resources
    from bakeoff.errors import BakeoffError

    raw, split = tiny_data
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(resources.shutil, "disk_usage", lambda _: usage(10**9, 10**9, 10**6))
    with pytest.raises(
        BakeoffError, match=r"decode cache .* needs 55\.3 kB .* only 1\.0 MB is free"
    ):
        split_pixels(split, "train", raw, 32, tmp_path / "cache")
    assert not list((tmp_path / "cache" / "pixels").glob("*.npy")), "nothing half-written"
    monkeypatch.setattr(resources.shutil, "disk_usage", shutil.disk_usage)

    with (
        pytest.raises(
            BakeoffError, match=r"out of memory .* batch size 64 and 512 px .* 201\.3 MB"
        ),
        resources.memory_guard("training X", 64, 512),
    ):
        raise MemoryError


def test_a_large_jpeg_is_decoded_at_reduced_scale_like_the_full_decode(tmp_path):
    """load_array decodes a JPEG much larger than the target at a reduced DCT scale: the
    pixels stay within a few levels of a full decode + resize, and EXIF rotation holds."""
    from PIL import Image

    from bakeoff.data.images import open_rgb, open_rgb_described

    ramp = np.linspace(0, 255, 2400, dtype=np.float32)
    noise = np.random.default_rng(0).normal(0, 8, (1600, 2400, 3))
    big = np.clip(np.outer(np.linspace(0, 1, 1600), ramp)[..., None] + noise, 0, 255)
    path = tmp_path / "photo.jpg"
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees on display
    Image.fromarray(big.astype(np.uint8)).save(path, quality=90, exif=exif)

    fast = load_array(path, 64)
    full = np.asarray(open_rgb(path).resize((64, 64), Image.Resampling.BILINEAR))
    assert fast.shape == full.shape == (64, 64, 3)
    assert np.abs(fast.astype(int) - full).mean() < 1.5
    # Upright: the brightest corner of the rotated photo is where the full decode has it.
    assert np.unravel_index(fast.sum(-1).argmax(), (64, 64)) == pytest.approx(
        np.unravel_index(full.sum(-1).argmax(), (64, 64)), abs=3
    )
    # 1/8 of the pixels per side decoded (64 px asked of 2400x1600), never below 64.
    assert open_rgb_described(path, size_hint=64)[0].size == (200, 300)
