"""Repeated seeds in evaluation: every seed's scores, and the spread of its test accuracy.

With `train.seeds` listing several seeds, `train` keeps each seed's model; evaluate scores
them all (the selected seed's numbers are the headline, as one seed's would be), so the
report can show the mean and spread and register can pick the best (backbone, seed).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from bakeoff import tracking


def seed_scores(
    info: dict[str, Any],
    model_dir: Path,
    selected: dict[str, Any],
    splits: dict,
    proba: Callable[[Any, str, Any], np.ndarray] | None = None,
) -> dict[str, Any]:
    """Every seed's val and test scores (train.json `seeds`), and the test accuracy's spread.

    Args:
        info: The backbone's train.json (the selected seed's, with the `seeds` list).
        model_dir: models/<backbone> (each other seed's model in seeds/<seed>/).
        selected: The selected seed's metrics (already computed: not scored twice).
        splits: {"test": pixels, "val": pixels} (`PixelSplit`s at the model's size).
        proba: (model, split name, pixels) -> class probabilities; evaluate's reads the
            feature cache for a frozen base + head (default: the full model predicts).

    Returns:
        {"seeds": [...], "test_accuracy_mean": m, "test_accuracy_std": s, "n_seeds": n}.
    """
    from bakeoff.model.inference import predict_proba, scores
    from bakeoff.model.loading import load_trained

    keys = ("val_accuracy", "val_macro_f1", "test_accuracy", "test_macro_f1")
    seeds = []
    for entry in info.get("seeds") or [{"seed": None, "run_id": info.get("run_id"), "path": "."}]:
        row = {k: entry.get(k) for k in ("seed", "run_id", "model_uri")}
        if entry.get("run_id") == selected["run_id"]:
            row |= {k: selected[k] for k in keys}
        else:
            model = load_trained(Path(model_dir) / entry["path"] / "model.keras")
            for split in ("val", "test"):
                pixels = splits[split]
                p = proba(model, split, pixels) if proba else predict_proba(model, pixels)
                got = scores(pixels.labels, p, pixels.classes)
                row |= {f"{split}_accuracy": got["accuracy"], f"{split}_macro_f1": got["macro_f1"]}
            if row["run_id"] and tracking.run_exists(row["run_id"]):
                numbers = tracking.rounded({k: row[k] for k in keys})
                tracking.log_metrics(numbers, row["run_id"])
        seeds.append(row)
    accuracies = np.array([row["test_accuracy"] for row in seeds], dtype=float)
    return {
        "seeds": seeds,
        "n_seeds": len(seeds),
        "test_accuracy_mean": float(accuracies.mean()),
        # The sample standard deviation over seeds (0 with one seed: no spread measured).
        "test_accuracy_std": float(accuracies.std(ddof=1)) if len(seeds) > 1 else 0.0,
    }
