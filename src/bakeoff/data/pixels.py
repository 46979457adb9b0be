"""The decode cache: each split decoded and resized once, kept on disk as a uint8 `.npy`.

An image becomes pixels in one place (`images.load_array`: EXIF, CMYK, 16-bit, alpha on
white). Its result for every image of a split, at one size, is written once to
`<cache_dir>/pixels/<split>-<size>px-<key>.npy`, where the key hashes the split manifest
(path, label and the sha256 of every file), the class list, the size and the decode code.
Later epochs, other backbones at the same size, evaluate and reruns read rows back with
`pread`: memory stays flat in the number of images, and the page cache (not the process)
holds what the disk already has. A plain `.npy` (not TFRecord shards): fixed-size rows
mean random access for shuffling by offset arithmetic, no parsing, and numpy opens it.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bakeoff.data import images
from bakeoff.data.dataset import manifest_file, read_classes, read_manifest
from bakeoff.data.npy_rows import NpyRows
from bakeoff.errors import BakeoffError
from bakeoff.lineage import file_sha256
from bakeoff.resources import disk_full_guard, ensure_free_disk

_CHUNK = 256  # images decoded in flight: bounds memory whatever the split's size


@contextmanager
def file_lock(path: Path):
    """An exclusive lock: two trainings of one flow never build the same cache at once."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


@dataclass(frozen=True)
class PixelSplit:
    """One split's decoded pixels on disk, and its labels.

    Attributes:
        path: The uint8 `.npy` of shape (N, size, size, 3), rows in manifest order.
        labels: Integer labels (N,), positions in `classes`.
        classes: The class names.
        key: The cache key (what a feature cache built on these pixels is keyed by).
    """

    path: Path
    labels: np.ndarray
    classes: list[str]
    key: str

    def __len__(self) -> int:
        return len(self.labels)

    def rows(self) -> NpyRows:
        """A reader of the rows (open one per consumer; it holds a file descriptor)."""
        return NpyRows(self.path)

    def array(self) -> np.ndarray:
        """The pixels as a read-only memory map (small splits, tests, a handful of rows)."""
        return np.load(self.path, mmap_mode="r")


def _decode_version() -> str:
    # The decode function's source is part of the key: a change there rebuilds the cache.
    return file_sha256(Path(images.__file__))[:16]


def split_key(split_dir: Path, name: str, image_size: int) -> str:
    """The cache key of a split's pixels: its manifest, the classes, the size, the decoder."""
    digest = hashlib.sha256()
    for part in (
        (Path(split_dir) / f"{name}.csv").read_bytes(),
        json.dumps(read_classes(split_dir)),
    ):
        digest.update(part if isinstance(part, bytes) else part.encode())
    digest.update(f"|{image_size}|{_decode_version()}".encode())
    return digest.hexdigest()[:16]


def split_labels(split_dir: Path, name: str) -> tuple[np.ndarray, list[str]]:
    """(int64 labels in manifest order, class names) of one split.

    Raises:
        BakeoffError: No manifest, or labels that are not in classes.json.
    """
    classes = read_classes(split_dir)
    rows = read_manifest(split_dir, name)
    index = {label: i for i, label in enumerate(classes)}
    unknown = sorted({r["label"] for r in rows} - index.keys())
    if unknown:
        raise BakeoffError(f"{name}.csv has labels not in classes.json: {unknown}: re-run split")
    return np.array([index[r["label"]] for r in rows], dtype=np.int64), classes


def split_pixels(
    split_dir: Path, name: str, image_root: Path, image_size: int, cache_dir: Path
) -> PixelSplit:
    """One split's pixels from the decode cache, decoding (in parallel) only on a miss.

    Args:
        split_dir: data/split (the manifests and classes.json).
        name: "train", "val" or "test".
        image_root: The folder the manifest paths are relative to (data/raw).
        image_size: Square side in pixels.
        cache_dir: The cache root (.bakeoff/cache); pixels go to its `pixels/` folder.

    Returns:
        The split's pixels on disk and its labels.

    Raises:
        BakeoffError: Missing manifest or images, unknown labels, or not enough disk.
    """
    labels, classes = split_labels(split_dir, name)
    rows = read_manifest(split_dir, name)
    key = split_key(split_dir, name, image_size)
    folder = Path(cache_dir) / "pixels"
    path = folder / f"{name}-{image_size}px-{key}.npy"
    with file_lock(folder / f".{name}-{image_size}px.lock"):
        if not path.is_file():
            files = [manifest_file(image_root, r["path"], f"{name}.csv") for r in rows]
            _write_pixels(files, path, image_size, name)
            # Older versions of this split at this size are never read again.
            for stale in folder.glob(f"{name}-{image_size}px-*.npy"):
                if stale != path:
                    stale.unlink(missing_ok=True)
    return PixelSplit(path, labels, classes, key)


def _decode(path: Path, size: int) -> np.ndarray:
    try:
        return images.load_array(path, size)
    except Exception as exc:  # any reason: the manifest promised a readable image
        raise BakeoffError(
            f"cannot decode {path} ({type(exc).__name__}: {exc}): it changed after validate; "
            "re-run validate and split"
        ) from None


def _write_pixels(files: list[Path], path: Path, size: int, name: str) -> None:
    """Decode `files` in order into a new `.npy` at `path` (atomically: temp, then rename)."""
    from tqdm import tqdm

    missing = [str(f) for f in files if not f.is_file()]
    if missing:
        raise BakeoffError(
            f"{len(missing)} images of {name}.csv are missing (e.g. {missing[0]}): "
            "re-run ingest/validate/split"
        )
    shape = (len(files), size, size, 3)
    what = f"the decode cache of the {name} split ({len(files)} images at {size} px)"
    fix = "free disk space or lower train.image_size"
    ensure_free_disk(path.parent, int(np.prod(shape)), what, fix)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    full = disk_full_guard(path.parent, int(np.prod(shape)), what, fix, partial=tmp)
    # PIL releases the GIL while decoding and resizing, so threads keep every core busy.
    workers = min(32, (os.cpu_count() or 1) + 2)
    try:
        with full, open(tmp, "wb") as fh, ThreadPoolExecutor(workers) as pool:
            header = {"descr": "|u1", "fortran_order": False, "shape": shape}
            np.lib.format.write_array_header_1_0(fh, header)
            bar = tqdm(total=len(files), desc=f"decoding {name} images", unit="img", leave=False)
            for start in range(0, len(files), _CHUNK):
                chunk = files[start : start + _CHUNK]
                for pixels in pool.map(lambda f: _decode(f, size), chunk):
                    fh.write(pixels.tobytes())
                bar.update(len(chunk))
            bar.close()
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
