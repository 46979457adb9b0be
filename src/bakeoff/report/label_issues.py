"""Probable label errors: confident learning (cleanlab) on the out-of-fold probabilities.

Cross-validation (`evaluate.cv_folds`) gives every accepted image class probabilities from
a head that never saw it: exactly the input of confident learning, which estimates how
often each class is filed as each other class and flags the images most likely filed
wrong. reports/label_issues.csv lists them, ranked by cleanlab (most likely wrong first),
with paths as in `data.source`; the user reviews them and lists the rejected ones in
`validate.exclude`. Without out-of-fold probabilities (from-scratch training, or
`cv_folds: 0`) there is no check: the CSV holds only its header and the report says why.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from bakeoff.evaluate.predictions import PROBA_PREFIX

COLUMNS = ["path", "given", "suggested", "score", "rank"]
# Whose probabilities: the recommended backbone's alone ("pick"), or the "mean" over every
# backbone with out-of-fold predictions. benchmarks/label_issues.py measures both: a weaker
# backbone in the mean hides some of the errors that the best one alone finds.
SOURCE = "pick"


@dataclass(frozen=True)
class LabelCheck:
    """The outcome: the ranked issues, whose probabilities, or why there is no check."""

    issues: pd.DataFrame  # COLUMNS, most likely wrong first
    checked: int  # images checked
    source: str  # e.g. "the mean of the out-of-fold probabilities of MobileNet, VGG16"
    reason: str | None = None  # why there is no check (then `issues` is empty)


def _probabilities(oof: pd.DataFrame, classes: list[str]) -> np.ndarray:
    return oof[[PROBA_PREFIX + c for c in classes]].to_numpy(dtype=np.float64)


def find_issues(paths: list[str], given: list[str], proba: np.ndarray, classes: list[str]):
    """cleanlab's ranked label issues.

    Args:
        paths: Each image's path.
        given: Each image's class as filed.
        proba: Out-of-fold probabilities, one column per class in `classes`.
        classes: The class names.

    Returns:
        A frame of `COLUMNS`: score is cleanlab's label quality (the self-confidence: the
        probability of the given class; low means likely wrong), rank starts at 1.
    """
    from cleanlab.filter import find_label_issues
    from cleanlab.rank import get_label_quality_scores

    index = {c: i for i, c in enumerate(classes)}
    labels = np.array([index[g] for g in given])
    proba = proba / proba.sum(axis=1, keepdims=True)
    ranked = find_label_issues(labels, proba, return_indices_ranked_by="self_confidence", n_jobs=1)
    quality = get_label_quality_scores(labels, proba, method="self_confidence")
    return pd.DataFrame(
        {
            "path": [paths[i] for i in ranked],
            "given": [given[i] for i in ranked],
            "suggested": [classes[int(proba[i].argmax())] for i in ranked],
            "score": np.round(quality[ranked], 4),
            "rank": np.arange(1, len(ranked) + 1),
        },
        columns=COLUMNS,
    )


def check_labels(
    oofs: dict[str, pd.DataFrame | None],
    classes: list[str],
    pick: str,
    off_reason: str | None,
    how: str = SOURCE,
) -> LabelCheck:
    """Run the check on the backbones' out-of-fold probabilities.

    Args:
        oofs: Backbone -> its oof.csv (None: evaluate did not cross-validate it).
        classes: The class names, in the order of the probability columns.
        pick: The recommended backbone.
        off_reason: Why the recommended backbone has no cross-validation, if it has none.
        how: "pick" (the recommended backbone's alone; the mean when it has none) or "mean"
            (every backbone that has probabilities).

    Returns:
        The check (with `reason` set when it cannot run).
    """
    have = {n: o for n, o in oofs.items() if o is not None and len(o)}
    lacking = [n for n, o in have.items() if PROBA_PREFIX + classes[0] not in o.columns]
    if not have:
        why = off_reason or "no backbone has out-of-fold predictions"
        return _none(f"no out-of-fold predictions ({why})")
    if lacking:
        return _none(
            f"the out-of-fold predictions of {', '.join(lacking)} have no probabilities: "
            "re-run `bakeoff evaluate` (or `dvc repro`)"
        )
    names = [pick] if how == "pick" and pick in have else sorted(have)
    frames = [have[n].sort_values("path", kind="stable").reset_index(drop=True) for n in names]
    paths = frames[0]["path"].astype(str).tolist()
    if any(f["path"].astype(str).tolist() != paths for f in frames[1:]):
        names, frames = names[:1], frames[:1]  # differing image sets: no mean to take
    proba = np.mean([_probabilities(f, classes) for f in frames], axis=0)
    issues = find_issues(paths, frames[0]["label"].astype(str).tolist(), proba, classes)
    source = f"{names[0]}'s out-of-fold probabilities"
    if len(names) > 1:
        source = "the mean of the out-of-fold probabilities of " + ", ".join(names)
    return LabelCheck(issues, len(paths), source)


def _none(reason: str) -> LabelCheck:
    return LabelCheck(pd.DataFrame(columns=COLUMNS), 0, "", reason)


def write_csv(check: LabelCheck, path: Path) -> Path:
    """reports/label_issues.csv (only the header when there is no check: DVC tracks it)."""
    path.unlink(missing_ok=True)
    check.issues.to_csv(path, index=False, columns=COLUMNS)
    return path
