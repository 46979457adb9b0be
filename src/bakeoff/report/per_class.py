"""Per-class test accuracy of every backbone: a classes x backbones table, as a heat map.

Per-class accuracy is the share of a class's test images predicted as that class (its
recall), computed from the per-image predictions the evaluate stage wrote.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

# Light red -> pale yellow -> light green (ColorBrewer RdYlGn's inner stops): dark text
# stays readable on every cell.
NOTE = "The share of each class's test images predicted right, for every backbone."
_STOPS = np.array([[244, 165, 130], [255, 255, 191], [145, 207, 96]], dtype=float)


def accuracy(
    predictions: Mapping[str, tuple[np.ndarray, np.ndarray]], classes: Sequence[str]
) -> pd.DataFrame:
    """Per-class accuracy, one row per class and one column per backbone.

    Args:
        predictions: backbone -> (actual, predicted) class names per test image.
        classes: The class names, in the table's order.

    Returns:
        The table (NaN for a class with no test image), plus an `images` column: the
        class's number of test images.
    """
    table = {}
    actual = None
    for name, (actual, predicted) in predictions.items():
        table[name] = [
            float(np.mean(predicted[actual == c] == c)) if (actual == c).any() else np.nan
            for c in classes
        ]
    frame = pd.DataFrame(table, index=list(classes))
    counts = [int((actual == c).sum()) if actual is not None else 0 for c in classes]
    frame.insert(0, "images", counts)
    return frame


def colour(value: float, low: float, high: float) -> str:
    """The cell's background: red at `low`, yellow halfway, green at `high`."""
    if value != value:  # NaN: no test image of this class
        return "#ffffff"
    t = 0.5 if high <= low else min(max((value - low) / (high - low), 0.0), 1.0)
    i = min(int(t * 2), 1)
    rgb = _STOPS[i] + (_STOPS[i + 1] - _STOPS[i]) * (t * 2 - i)
    return "#{:02x}{:02x}{:02x}".format(*np.rint(rgb).astype(int))


def heat_cells(frame: pd.DataFrame) -> dict:
    """Header and rows of (text, background colour) for the HTML, and the colour range."""
    values = frame.drop(columns="images").to_numpy(dtype=float)
    finite = values[np.isfinite(values)]
    low, high = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
    rows = []
    for cls, row in frame.iterrows():
        cells = [(f"{v:.4f}" if v == v else "-", colour(v, low, high)) for v in row.iloc[1:]]
        rows.append({"cls": str(cls), "images": int(row["images"]), "cells": cells})
    return {"backbones": list(frame.columns[1:]), "rows": rows, "low": low, "high": high}


def markdown(frame: pd.DataFrame) -> str:
    """The same table in markdown (no colours)."""
    head = ["Class", "Test images", *frame.columns[1:]]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for cls, row in frame.iterrows():
        values = [f"{v:.4f}" if v == v else "-" for v in row.iloc[1:]]
        lines.append("| " + " | ".join([str(cls), str(int(row["images"])), *values]) + " |")
    return "\n".join(lines)
