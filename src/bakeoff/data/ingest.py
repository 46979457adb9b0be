"""Stage `ingest`: bring the source images into data/raw/<class>/<file>.

The source is only ever read. A folder source is copied as it is (hidden files skipped),
so that `validate` sees every problem the user has to fix, including files outside any
class folder. What cannot be copied faithfully is recorded in `data/raw/.ingest.json`
(symlinks leading outside the source root, broken symlinks, empty class folders, which
DVC does not keep) and `validate` merges that report into its manifest.
"""

from __future__ import annotations

import gzip
import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from bakeoff.config.params import DataParams
from bakeoff.data.folders import INGEST_REPORT, walk_class_folders
from bakeoff.errors import BakeoffError
from bakeoff.resources import ensure_free_disk

FASHION_MNIST_CLASSES = [
    "T-shirt_top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle_boot",
]  # fmt: skip
FASHION_MNIST_FILES = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz")
FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")  # Debian's dataset-fashion-mnist


@dataclass
class IngestResult:
    """What ingest wrote."""

    out_dir: Path
    source: str
    per_class: dict[str, int]
    skipped: list[dict[str, str]] = field(default_factory=list)

    def __str__(self) -> str:
        total = sum(self.per_class.values())
        lines = [f"ingested {total} files in {len(self.per_class)} folders from {self.source}"]
        lines += [f"  {name}: {n}" for name, n in sorted(self.per_class.items())]
        if self.skipped:
            lines.append(f"  {len(self.skipped)} entries left for validate to report")
        return "\n".join(lines) + f"\n-> {self.out_dir}"


def ingest(params: DataParams, out_dir: Path, root: Path, *, seed: int) -> IngestResult:
    """Write the source images to `out_dir/<class>/<file>`, clearing `out_dir` first.

    Args:
        params: The `data` section: `source` is an image folder, a folder of Fashion-MNIST
            idx files (the demo) or `fashion-mnist` (Debian's folder of them, else a
            download through Keras).
        out_dir: The raw data folder (a DVC output: rebuilt from scratch every time).
        root: The project root: a relative `data.source` is relative to it, whatever the
            current directory of the process (a Prefect worker, a test).
        seed: The top-level `seed`: of the Fashion-MNIST sample.

    Returns:
        Counts per folder and the entries left for validate to report.
    """
    if params.source == "fashion-mnist":
        images, labels = _load_fashion_mnist(FASHION_MNIST_DIR)
        _clear(out_dir)
        return _write_fashion_mnist(images, labels, params.per_class, seed, out_dir)
    source = Path(params.source).expanduser()
    if not source.is_absolute():
        source = Path(root) / source
    if is_fashion_mnist_dir(source):
        # The demo as a path, so that dvc.yaml can name it as ingest's dependency.
        images, labels = _load_fashion_mnist(source)
        _clear(out_dir)
        return _write_fashion_mnist(images, labels, params.per_class, seed, out_dir)
    if not source.is_dir():
        what = "does not exist" if not source.exists() else "is not a folder"
        raise BakeoffError(
            f"data.source {source} {what}: set data.source in params.yaml to a folder with "
            "one sub-folder per class, or to `fashion-mnist`"
        )
    src, out = source.resolve(), out_dir.resolve()
    if src == out or src in out.parents or out in src.parents:
        # Clearing out_dir would delete the user's images: refuse any overlap.
        raise BakeoffError(
            f"data.source {source} overlaps the output folder {out_dir}: keep the source "
            "images outside it"
        )
    ensure_free_disk(
        out_dir.parent,
        _folder_bytes(source),
        f"copying {source} into {out_dir}",
        "free disk space (DVC's cache shares these files: ingest needs the folder's size once)",
    )
    _clear(out_dir)
    return _copy_folder(source, out_dir)


def is_fashion_mnist_dir(folder: Path) -> bool:
    """A folder of Fashion-MNIST idx files (Debian's dataset-fashion-mnist), not of images."""
    return all((folder / name).is_file() for name in FASHION_MNIST_FILES)


def _folder_bytes(source: Path) -> int:
    """The bytes ingest will copy: the files it copies, in-root links followed as it does."""
    return sum(e.path.stat().st_size for e in walk_class_folders(source) if not e.problem)


def _clear(out_dir: Path) -> None:
    if out_dir.is_symlink() or out_dir.is_file():
        out_dir.unlink()
    elif out_dir.exists():
        shutil.rmtree(out_dir)
    out_dir.mkdir(parents=True)


def read_idx(path: Path) -> np.ndarray:
    """The array in a gzipped idx file (Fashion-MNIST's format), as uint8."""
    with gzip.open(path, "rb") as fh:
        data = fh.read()
    ndim = data[3]
    dims = [int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def _load_fashion_mnist(folder: Path) -> tuple[np.ndarray, np.ndarray]:
    images = folder / "train-images-idx3-ubyte.gz"
    labels = folder / "train-labels-idx1-ubyte.gz"
    if images.is_file() and labels.is_file():
        return read_idx(images), read_idx(labels)
    try:  # Keras downloads it: works only online.
        import keras

        (x, y), _ = keras.datasets.fashion_mnist.load_data()
        return x, y
    except Exception as exc:  # any download failure means the same fix
        raise BakeoffError(
            f"Fashion-MNIST not found in {folder} (need {images.name} and {labels.name}) and "
            f"the download failed ({type(exc).__name__}): run `apt-get install "
            "dataset-fashion-mnist` or set data.source to a folder of the idx files"
        ) from None


def _write_fashion_mnist(
    images: np.ndarray, labels: np.ndarray, per_class: int, seed: int, out_dir: Path
) -> IngestResult:
    from PIL import Image

    rng = np.random.default_rng(seed)
    counts = {}
    for index, name in enumerate(FASHION_MNIST_CLASSES):
        pool = np.flatnonzero(labels == index)
        if per_class < 1 or per_class > len(pool):
            raise BakeoffError(f"data.per_class must be between 1 and {len(pool)}, got {per_class}")
        chosen = np.sort(rng.choice(pool, size=per_class, replace=False))
        (out_dir / name).mkdir()
        for i in chosen:
            # The file name is the index in the idx file: same params, same names and bytes.
            Image.fromarray(images[i], "L").save(out_dir / name / f"{name}_{i:05d}.png")
        counts[name] = per_class
    return IngestResult(out_dir, "fashion-mnist", counts)


def _copy_folder(source: Path, out_dir: Path) -> IngestResult:
    counts: dict[str, int] = {}
    skipped: list[dict[str, str]] = []
    for entry in walk_class_folders(source):
        if entry.problem:
            skipped.append({"path": entry.rel, "reason": entry.problem})
            continue
        dest = out_dir / entry.rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(entry.path, dest)  # follows in-root links: the copy holds the bytes
        counts[entry.label or "."] = counts.get(entry.label or ".", 0) + 1
    if skipped:
        report = json.dumps(skipped, indent=1, sort_keys=True)
        (out_dir / INGEST_REPORT).write_text(report + "\n")
    return IngestResult(out_dir, str(source), counts, skipped)
