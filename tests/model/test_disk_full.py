"""Disk full while a cache is written, on a real size-limited filesystem (a tmpfs mount).

Another writer may fill the disk after bakeoff's free-space check: the write then fails
with an error naming the sizes, and no partial cache is left to be read back; once there is
room again, the rerun builds the whole cache (temp file + rename: only complete files ever
carry a cache name)."""

from __future__ import annotations

import dataclasses
import os
import shutil
import subprocess

import numpy as np
import pytest

from bakeoff import resources
from bakeoff.backbone import features as features_module
from bakeoff.backbone.features import load_features
from bakeoff.data import pixels as pixels_module
from bakeoff.data.images import load_array
from bakeoff.data.pixels import split_pixels
from bakeoff.errors import BakeoffError

pytestmark = pytest.mark.slow


@pytest.fixture
def small_disk(tmp_path):
    """A 2 MB tmpfs mounted at tmp_path/disk, unmounted after the test."""
    disk = tmp_path / "disk"
    disk.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(disk)],
                          capture_output=True, text=True)  # fmt: skip
    if done.returncode != 0:
        pytest.skip(f"cannot mount a size-limited tmpfs here (needs root): {done.stderr.strip()}")
    try:
        yield disk
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=True)


def _fill_after_check(module, monkeypatch, disk):
    """Let the free-space check pass (no margin), then fill the disk but 8 kB, as another
    writer would: the cache write itself hits ENOSPC."""
    real = module.ensure_free_disk
    monkeypatch.setattr(resources, "DISK_MARGIN", 0)

    def check_then_fill(folder, needed, what, fix):
        real(folder, needed, what, fix)
        with open(disk / "other-writer.bin", "wb") as fh:
            fh.write(b"\0" * (shutil.disk_usage(disk).free - 8192))

    monkeypatch.setattr(module, "ensure_free_disk", check_then_fill)


def _cache_files(folder):
    return sorted(p.name for p in folder.rglob("*") if p.is_file() and p.suffix != ".lock")


def test_pixel_cache_on_a_disk_that_fills_up(tiny_data, small_disk, monkeypatch):
    raw, split = tiny_data
    cache = small_disk / "cache"
    _fill_after_check(pixels_module, monkeypatch, small_disk)
    with pytest.raises(BakeoffError) as err:
        split_pixels(split, "train", raw, 32, cache)
    message = str(err.value)
    assert "the disk filled up while writing the decode cache of the train split" in message
    assert "(18 images at 32 px) (55.3 kB)" in message and str(cache / "pixels") in message
    assert "kB is free now" in message and "lower train.image_size" in message
    assert _cache_files(cache) == [], "no partial cache, no temp file left behind"

    monkeypatch.undo()  # the other writer is gone: room again (on a disk this small,
    monkeypatch.setattr(resources, "DISK_MARGIN", 0)  # only without the 256 MB margin)
    (small_disk / "other-writer.bin").unlink()
    rerun = split_pixels(split, "train", raw, 32, cache)
    files = [raw / line.split(",")[0] for line in (split / "train.csv").read_text().split()[1:]]
    assert np.array_equal(rerun.array(), np.stack([load_array(f, 32) for f in files]))


def test_feature_cache_on_a_disk_that_fills_up(params, tiny_data, small_disk, tmp_path,
                                               monkeypatch):  # fmt: skip
    from bakeoff.backbone.build import build_base

    raw, split = tiny_data
    cache = small_disk / "cache"
    weights = tmp_path / "base.weights.h5"
    build_base("SimpleCNN", 32).save_weights(weights)
    recipe = dataclasses.replace(params.train, weights=str(weights), image_size=32, augment=False)
    monkeypatch.setattr(resources, "DISK_MARGIN", 0)  # a 2 MB disk: no 256 MB margin
    split_pixels(split, "train", raw, 32, cache)  # the pixels fit; then the disk fills
    _fill_after_check(features_module, monkeypatch, small_disk)
    full = r"the disk filled up while writing the feature cache \(18 images x \d+ float32\)"
    with pytest.raises(BakeoffError, match=full + r" \([\d.]+ kB\) to .*is free now"):
        load_features("SimpleCNN", recipe, split, raw, cache, splits=("train",))
    assert _cache_files(cache / "features") == []

    monkeypatch.undo()
    monkeypatch.setattr(resources, "DISK_MARGIN", 0)
    (small_disk / "other-writer.bin").unlink()
    rerun = load_features("SimpleCNN", recipe, split, raw, cache, splits=("train",))
    assert rerun.computed == ("train",) and np.isfinite(rerun.x_train).all()
    assert rerun.x_train.shape[0] == 18


def test_a_cache_larger_than_the_disk_is_refused_before_writing(tiny_data, small_disk):
    raw, split = tiny_data
    with pytest.raises(BakeoffError) as err:
        split_pixels(split, "train", raw, 32, small_disk / "cache")
    assert "needs 55.3 kB in" in str(err.value) and "MB is free" in str(err.value)
    assert _cache_files(small_disk / "cache") == []
    assert os.listdir(small_disk) == ["cache"]
