"""plots/<backbone>/predictions.csv: one row per test image, written by evaluate, read by report.

The confusion CSV keeps only class names (DVC's `confusion` template reads it); this file adds
what the report needs to show the mistakes as pictures, as fastai's `plot_top_losses` does:
the image's path under data/raw, the predicted class's probability (the confidence) and the
true class's probability (its loss is -log of it).
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from bakeoff.errors import BakeoffError

FIELDS = ["path", "actual", "predicted", "confidence", "p_actual"]
# plots/<backbone>/oof.csv's probability columns, p_<class> (written by cross-validation,
# read by the report's label check).
PROBA_PREFIX = "p_"


def write_predictions(
    path: Path, files: list[str], y: np.ndarray, proba: np.ndarray, classes: list[str]
) -> Path:
    """Write one row per test image, in manifest order.

    Args:
        path: The CSV to write.
        files: The manifest paths (relative to data/raw), in the order of `y` and `proba`.
        y: True class indices.
        proba: (N, classes) predicted probabilities.
        classes: The class names.

    Returns:
        `path`.
    """
    if not len(files) == len(y) == len(proba):
        raise ValueError(f"{len(files)} files, {len(y)} labels and {len(proba)} predictions")
    pred = proba.argmax(axis=1)
    with open(path, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(FIELDS)
        for file, true, guess, p in zip(files, y, pred, proba, strict=True):
            writer.writerow(
                [file, classes[true], classes[guess], f"{p[guess]:.6f}", f"{p[true]:.6f}"]
            )
    return path


def read_mistakes(path: Path, limit: int | None = None) -> list[dict[str, str | float]]:
    """The misclassified images, most confident mistakes first (then highest loss).

    Args:
        path: plots/<backbone>/predictions.csv.
        limit: At most this many rows (None: all).

    Returns:
        Rows with path, actual, predicted (str), confidence and p_actual (float).

    Raises:
        BakeoffError: The file is missing or lacks a column (an older evaluate wrote it).
    """
    backbone = Path(path).parent.name
    if not Path(path).is_file():
        raise BakeoffError(
            f"the per-image test predictions of {backbone} are missing: no file {path}; "
            f"run `bakeoff evaluate {backbone}` (or `dvc repro`)"
        )
    with open(path, newline="") as fh:
        reader = csv.DictReader(fh)
        lacking = sorted(set(FIELDS) - set(reader.fieldnames or []))
        if lacking:
            raise BakeoffError(
                f"{path} lacks {', '.join(lacking)}: re-run `bakeoff evaluate {backbone}`"
            )
        try:
            rows = [
                {**r, "confidence": float(r["confidence"]), "p_actual": float(r["p_actual"])}
                for r in reader
                if r["actual"] != r["predicted"]
            ]
        except (TypeError, ValueError) as exc:  # a cut or hand-edited file
            raise BakeoffError(
                f"{path} line {reader.line_num} is not a prediction ({exc}): "
                f"re-run `bakeoff evaluate {backbone}`"
            ) from None
    rows.sort(key=lambda r: (-r["confidence"], r["p_actual"], r["path"]))
    return rows[:limit]
