"""The sentences around the report's tables: champion, budgets, notes and mistake galleries.

Built once and shown by both pages (markdown and HTML), so they cannot disagree.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from bakeoff.report import gallery
from bakeoff.report.render import COLUMN_NOTES, TIE_NOTE, limit
from bakeoff.report.settings import ReportSettings
from bakeoff.report.table import missing


def champion(register: Mapping[str, Any]) -> tuple[str | None, str | None, str]:
    """(backbone, version) holding the `champion` alias after the register stage, and a
    sentence about it."""
    decision, reason = register.get("decision"), register.get("reason", "")
    held = register if decision == "promoted" else (register.get("champion") or {})
    name, version = held.get("backbone"), held.get("version")
    if not name:
        return None, None, f"none yet (last register decision: {decision}; {reason})."
    model = f"{register.get('model_name')} version {version}, alias champion"
    return name, version, f"{name} ({model}; last register decision: {decision}, {reason})."


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


def notes(params: ReportSettings, table: pd.DataFrame, n_test: int) -> list[str]:
    """What the main table's numbers are: intervals, cross-validation, latency, seeds."""
    conf = f"{100 * params.confidence:g}"
    out = []
    cv_n = table["cv_n"].dropna()
    if len(cv_n):
        out.append(
            f"CV accuracy: out-of-fold predictions of k-fold cross-validation over all "
            f"{int(cv_n.max())} accepted images (the same folds for every backbone), with its "
            f"{conf}% interval."
        )
    reasons = sorted({str(r) for r in table.get("cv_off_reason", pd.Series()).dropna()})
    if reasons:
        out.append("Cross-validation is off: " + "; ".join(reasons) + ".")
    out.append(
        f"Test accuracy on the {n_test} held-out test images; the interval is a {conf}% "
        f"percentile bootstrap over them ({params.bootstrap} resamples, seed "
        f"{params.seed}). Latency is measured on the evaluation machine: ms per image "
        "at batch 1, and per image within a batch of 32."
    )
    shown = [note for key, note in COLUMN_NOTES.items() if not table[key].map(missing).all()]
    return [*out, " ".join([TIE_NOTE, *shown])]


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
