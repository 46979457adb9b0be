"""`bakeoff predict`: classify images with the champion (or any logged) model."""

from __future__ import annotations

import json
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

from bakeoff import tracking
from bakeoff.config.params import Params
from bakeoff.errors import BakeoffError

CHUNK = 64  # images decoded and classified at a time: memory is flat in the folder's size
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp"}


@dataclass
class Prediction:
    """The top-k labels of one image, or why it could not be classified."""

    path: str
    labels: list[str] = field(default_factory=list)
    probabilities: list[float] = field(default_factory=list)
    error: str | None = None


def expand(images: list[Path]) -> list[Path]:
    """Files as given; folders searched recursively for image files, hidden ones skipped.

    Raises:
        BakeoffError: A path does not exist, or no images were found.
    """
    files: list[Path] = []
    for item in map(Path, images):
        if item.is_file():
            files.append(item)
        elif item.is_dir():
            for path in sorted(item.rglob("*")):
                hidden = any(part.startswith(".") for part in path.relative_to(item).parts)
                if path.is_file() and not hidden and path.suffix.lower() in IMAGE_SUFFIXES:
                    files.append(path)
        else:
            raise BakeoffError(f"no such file or folder: {item}")
    if not files:
        names = ", ".join(map(str, images))
        raise BakeoffError(f"no image files ({', '.join(sorted(IMAGE_SUFFIXES))}) in {names}")
    return files


def _model_uri(params: Params, model_uri: str | None) -> str:
    if model_uri:
        return model_uri
    name = params.register.model_name
    if tracking.get_version_by_alias(name, "champion") is None:
        raise BakeoffError(
            f"no champion for model '{name}' in {tracking.tracking_uri()}: run `dvc repro` "
            "(or `bakeoff register` after training), or pass --model-uri"
        )
    return f"models:/{name}@champion"


def predict(
    images: list[Path],
    params: Params,
    top_k: int = 3,
    model_uri: str | None = None,
    *,
    root: Path,
) -> list[Prediction]:
    """Classify image files and folders.

    Args:
        images: Image files and/or folders (searched recursively).
        params: All params (register.model_name, tracking).
        top_k: How many labels per image, most probable first.
        model_uri: An MLflow model URI; default `models:/<register.model_name>@champion`.
        root: The project root (MLflow store).

    Returns:
        One Prediction per image, in input order; unreadable images carry an `error`.
    """
    from tqdm import tqdm

    files = expand(images)
    tracking.configure(params.tracking, root)
    uri = _model_uri(params, model_uri)
    model = tracking.load_keras_model(uri)
    n_classes = int(model.output_shape[-1])
    classes = tracking.model_classes(uri)
    if not classes or len(classes) != n_classes:
        # Made-up names (class_0, ...) would be labels nobody can act on, or wrong ones.
        found = f"{len(classes)} class names" if classes else "no class names"
        raise BakeoffError(
            f"model {uri} has {n_classes} outputs but {found} in its metadata: use a model "
            "logged by `bakeoff train` (it stores the class names), or re-train it"
        )
    size = int(model.input_shape[1])
    results = [Prediction(str(path)) for path in files]
    with tqdm(total=len(files), desc="classifying", unit="img", disable=len(files) < 100) as bar:
        # Chunks keep memory flat however many images a folder holds.
        for start in range(0, len(files), CHUNK):
            chunk = results[start : start + CHUNK]
            _classify(model, chunk, size, classes, min(top_k, n_classes))
            bar.update(len(chunk))
    return results


def _classify(model, chunk: list[Prediction], size: int, classes: list[str], k: int) -> None:
    """Fill in the top-k labels of one chunk; unreadable files get an error instead."""
    import numpy as np

    from bakeoff.data.images import load_array

    def decode(result: Prediction):
        try:
            return load_array(result.path, size)
        except Exception as exc:  # any reason: one bad file must not stop the batch
            result.error = f"cannot read image: {type(exc).__name__}: {exc}"
            return None

    # PIL releases the GIL while decoding and resizing: threads keep both cores busy.
    with ThreadPoolExecutor(min(8, (os.cpu_count() or 1) + 2)) as pool:
        decoded = list(pool.map(decode, chunk))
    pixels = [p for p in decoded if p is not None]
    ok = [r for r, p in zip(chunk, decoded, strict=True) if p is not None]
    if not pixels:
        return
    # The model holds its own preprocessing: it takes 0..255 RGB at its input size.
    proba = model.predict(np.stack(pixels).astype("float32"), batch_size=32, verbose=0)
    for result, row in zip(ok, proba, strict=True):
        best = np.argsort(row)[::-1][:k]
        result.labels = [classes[i] for i in best]
        result.probabilities = [round(float(row[i]), 6) for i in best]


def format_predictions(results: list[Prediction], as_json: bool = False) -> str:
    """Predictions as text (one line per image) or as a JSON list."""
    if as_json:
        return json.dumps([asdict(r) for r in results], indent=2)
    lines = []
    for r in results:
        if r.error:
            lines.append(f"{r.path}: ERROR {r.error}")
        else:
            pairs = zip(r.labels, r.probabilities, strict=True)
            top = ", ".join(f"{label} {p:.1%}" for label, p in pairs)
            lines.append(f"{r.path}: {top}")
    return "\n".join(lines)
