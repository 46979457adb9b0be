"""The sentences around the report's tables: champion, budgets, definitions and galleries.

Built once and shown by both pages (markdown and HTML), so they cannot disagree.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from bakeoff.report import gallery
from bakeoff.report.render import limit
from bakeoff.report.settings import ReportSettings
from bakeoff.report.stats import CV


def champion(register: Mapping[str, Any]) -> tuple[str | None, str | None, str]:
    """(backbone, version) holding the `champion` alias after the register stage, and a
    sentence about it."""
    decision, reason = register.get("decision"), str(register.get("reason", ""))
    # The register's reason may end on the decision itself ("no champion yet: promoted").
    reason = reason.removesuffix(f": {decision}")
    last = f"Last register decision: {decision}" + (f", {reason}." if reason else ".")
    held = register if decision == "promoted" else (register.get("champion") or {})
    name, version = held.get("backbone"), held.get("version")
    if not name:
        return None, None, f"none yet. {last}"
    return name, version, f"{name} ({register.get('model_name')} version {version}). {last}"


def budgets(
    params: ReportSettings, table: pd.DataFrame, found: Mapping[str, list[str]]
) -> list[dict]:
    """Each budget: its limits, the backbones that fit and the most accurate of them."""
    out = []
    for label, fits in found.items():
        budget = (params.budgets or {})[label]
        best_fit = max(fits, key=lambda n: table.loc[n, "test_accuracy"]) if fits else None
        out.append(
            {
                "label": label,
                "limits": f"latency {limit(budget.max_latency_ms, 'ms')}, "
                f"size {limit(budget.max_size_mb, 'MB')}",
                "fits": ", ".join(fits) or "none",
                "best": best_fit,
            }
        )
    return out


TIED = (
    "a backbone is statistically tied with the most accurate one when the paired "
    "bootstrap interval of their difference contains 0 or, with several seeds, their means "
    "differ by no more than the sum of their standard deviations."
)


def definitions(params: ReportSettings, table: pd.DataFrame, n_test: int) -> dict[str, str]:
    """What each column of the main and details tables measures, by its key in the table.

    The HTML shows them as the column titles' tooltips; both pages list them once, under
    "How the numbers were measured".
    """
    conf = f"{100 * params.confidence:g}%"
    cv_n = table["cv_n"].dropna()
    over = f"all {int(cv_n.max())} accepted images" if len(cv_n) else "all accepted images"
    return {
        "cv_accuracy": f"out-of-fold predictions of k-fold cross-validation over {over} "
        "(the same folds for every backbone).",
        "cv_interval_text": f"the {conf} percentile bootstrap interval of the CV accuracy.",
        "test_accuracy": f"on the {n_test} held-out test images.",
        "interval": f"the {conf} percentile bootstrap interval of the test accuracy over the "
        f"test images ({params.bootstrap} resamples, seed {params.seed}).",
        "latency_ms_b1": "ms per image at batch 1, measured on the evaluation machine.",
        "size_mb": "the saved model file, in MB.",
        "test_macro_f1": "the unweighted mean of the classes' F1 on the test images.",
        "cv_macro_f1": "the same on the out-of-fold predictions.",
        "seeds_text": "mean ± standard deviation over `train.seeds` (the other columns show "
        "the seed with the best validation accuracy).",
        "default_val_accuracy": "validation accuracy of the head before tuning on cached "
        "features; - without a feature cache, where tuning is off.",
        "tuned_val_accuracy": "the same after tuning (the same number of trials for every "
        "backbone, selected on validation only).",
        "latency_ms_b32": "ms per image within a batch of 32, measured on the evaluation machine.",
        "throughput_ips": "images per second at batch 32.",
        "params": "the parameters of the whole model, frozen ones included.",
        "train_seconds": "wall-clock time of the training.",
        "epochs_text": "epochs run, and the epoch whose weights were kept.",
    }


def front_text(front: list[str]) -> str:
    """The Pareto front, fastest first; a front of one is the fastest and most accurate."""
    if len(front) == 1:
        return f"{front[0]} alone (the most accurate backbone is also the fastest)"
    return ", ".join(front)


def how_to_read(basis: str) -> str:
    """The one line under the main table: its order, and where the columns are explained."""
    measure = "CV accuracy" if basis == CV else "test accuracy"
    return (
        f"How to read this: rows are ranked by {measure}, the measure that decides; what "
        "“tied” and each column mean is under “How the numbers were measured” at the end."
    )


def galleries(
    roles: Mapping[str, str], plots_dir: Path, image_root: Path, limit: int = gallery.MAX_SHOWN
) -> list[dict[str, Any]]:
    """The mistake galleries: one per backbone in `roles` (backbone -> its role).

    Args:
        roles: e.g. {"Small": "the recommendation", "Big": "the champion"}; one backbone
            holding both roles appears once.
        plots_dir: Where plots/<backbone>/predictions.csv are.
        image_root: data/raw (the images the paths name).
        limit: Thumbnails per backbone.
    """
    out = []
    for name, role in roles.items():
        shown, total = gallery.mistakes(plots_dir / name / "predictions.csv", image_root, limit)
        which = f"{len(shown)} of its {total}" if len(shown) < total else f"Its {total}"
        caption = (
            f"{which} misclassified test images, the most confident mistakes first: true "
            "class, predicted class and the predicted class's probability."
            if total
            else "No test image is misclassified."
        )
        out.append({"title": f"{name} ({role})", "shown": shown, "caption": caption})
    return out
