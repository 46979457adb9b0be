"""plots.py writes readable PNGs from training history and confusion counts."""

from __future__ import annotations

import numpy as np
from PIL import Image

from bakeoff.plots import plot_confusion, plot_history


def test_history_png_from_rows_with_two_phases(tmp_path):
    rows = [
        {"epoch": e, "phase": 1 if e < 3 else 2, "loss": 2 - e / 5, "accuracy": e / 5,
         "val_loss": 2.1 - e / 5, "val_accuracy": e / 6, "learning_rate": 1e-3}
        for e in range(5)
    ]  # fmt: skip
    path = plot_history(rows, tmp_path / "deep" / "curves.png", "SimpleCNN")
    with Image.open(path) as img:
        assert img.format == "PNG" and img.width > img.height


def test_confusion_png_handles_an_empty_class(tmp_path):
    cm = np.array([[5, 1, 0], [0, 0, 0], [2, 0, 7]])  # class "b" has no test images
    path = plot_confusion(cm, ["a", "b", "a long class name"], tmp_path / "cm.png", "test")
    with Image.open(path) as img:
        assert img.format == "PNG" and min(img.size) > 300
