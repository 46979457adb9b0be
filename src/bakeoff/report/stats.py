"""The statistics behind the comparison report: which comparison, and which backbones are tied.

Backbones are compared on the cross-validated, out-of-fold predictions of all accepted
images when every backbone has them (a frozen base with the feature cache, evaluate.cv_folds
> 0), else on the held-out test split (which stays the champion's final check either way).
On either basis, "statistically tied with the best" means the paired bootstrap interval of
the accuracy difference over the same images contains 0 (on the test split also when the
seeds' spreads of test accuracy overlap).
Under cross-validation McNemar's exact test and Nadeau and Bengio's corrected resampled
t-test over the folds are reported next to it; docs/backbones.md says why the bootstrap decides.

Pure functions on arrays (numpy, scipy via `bakeoff.compare`), so the report's reasoning
is tested without models, images or MLflow. Which of the tied backbones to pick (speed,
size, the Pareto front, budgets) is `bakeoff.report.pick`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from bakeoff.compare import accuracy_interval as bootstrap_interval
from bakeoff.compare import corrected_resampled_t, mcnemar_p, paired_difference
from bakeoff.errors import BakeoffError

__all__ = ["Evidence", "Ranking", "bootstrap_interval", "paired_difference", "rank",
           "tied_by_seeds"]  # fmt: skip

CV, TEST = "cross-validation", "test split"


def tied_by_seeds(a: tuple[float, float, int], b: tuple[float, float, int]) -> bool:
    """Whether two backbones' test accuracies over seeds are within their spread.

    Args:
        a, b: (mean test accuracy over seeds, its sample standard deviation, seeds).

    Returns:
        True when both have at least two seeds and their means differ by no more than the
        sum of their standard deviations: the seed, not the backbone, may be the gap.
    """
    (mean_a, std_a, n_a), (mean_b, std_b, n_b) = a, b
    return n_a >= 2 and n_b >= 2 and abs(mean_a - mean_b) <= std_a + std_b


@dataclass(frozen=True)
class Evidence:
    """One backbone's per-image results.

    Attributes:
        name: The backbone.
        test_correct: 0/1 per held-out test image (the same images for every backbone).
        spread: (mean test accuracy over seeds, its standard deviation, seeds).
        cv_correct: 0/1 per image of its out-of-fold predictions, or None (CV off).
        cv_images: The image of each entry of `cv_correct` (same order for every backbone).
        folds: The fold that held each image out.
        cv_off_reason: Why there is no cross-validation (from metrics/<backbone>.json).
    """

    name: str
    test_correct: np.ndarray
    spread: tuple[float, float, int] = (0.0, 0.0, 1)
    cv_correct: np.ndarray | None = None
    cv_images: np.ndarray | None = None
    folds: np.ndarray | None = None
    cv_off_reason: str | None = None


@dataclass(frozen=True)
class Ranking:
    """The comparison: its basis, the best backbone, the ties and every pair's numbers.

    Attributes:
        basis: CV ("cross-validation") or TEST ("test split").
        note: One sentence: what the comparison is on, and why (e.g. why CV is off).
        measure: What `accuracy` is, as the recommendation's reason says it.
        accuracy: name -> accuracy on the basis.
        best: The most accurate backbone.
        tied: name -> (best minus name, low, high) for the backbones tied with the best.
        pairs: name -> the comparison with the best as table fields (vs_best, vs_best_low,
            vs_best_high, mcnemar_p, nb_p, nb_low, nb_high, tied); empty for the best.
    """

    basis: str
    note: str
    measure: str
    accuracy: dict[str, float]
    best: str
    tied: dict[str, tuple[float, float, float]] = field(default_factory=dict)
    pairs: dict[str, dict[str, Any]] = field(default_factory=dict)


def _basis(evidence: Sequence[Evidence]) -> tuple[str, str]:
    """CV when every backbone has out-of-fold predictions of the same images, else TEST."""
    off = [e for e in evidence if e.cv_correct is None]
    n_test = len(evidence[0].test_correct)
    if off:
        reasons = {e.cv_off_reason or "no cross-validation" for e in off}
        # One reason shared by every backbone (the usual case) is said once.
        why = (
            reasons.pop()
            if len(reasons) == 1 and len(off) == len(evidence)
            else "; ".join(f"{e.name}: {e.cv_off_reason or 'no cross-validation'}" for e in off)
        )
        return (
            TEST,
            f"Compared on the {n_test} held-out test images: cross-validation is off ({why}).",
        )
    first = evidence[0]
    for e in evidence[1:]:
        same = len(e.cv_images) == len(first.cv_images) and (e.cv_images == first.cv_images).all()
        if not same or not (e.folds == first.folds).all():
            raise BakeoffError(
                f"{e.name} and {first.name} were cross-validated on different images or folds "
                "(their oof.csv differ): re-run `dvc repro` so every backbone is evaluated "
                "on the same data"
            )
    k = int(first.folds.max()) + 1
    return CV, (
        f"Compared on the out-of-fold predictions of all {len(first.cv_correct)} accepted "
        f"images ({k}-fold cross-validation of the head, the same folds for every backbone); "
        f"the {n_test} held-out test images stay the champion's final check."
    )


def rank(evidence: Sequence[Evidence], n_resamples: int, confidence: float, seed: int) -> Ranking:
    """The best backbone on the comparison's basis, and which backbones are tied with it.

    Args:
        evidence: Every backbone's per-image results.
        n_resamples, confidence, seed: The paired bootstrap's (report section).

    Returns:
        The ranking (see `Ranking`).
    """
    basis, note = _basis(evidence)
    cv = basis == CV
    correct = {e.name: np.asarray(e.cv_correct if cv else e.test_correct, float)
               for e in evidence}  # fmt: skip
    accuracy = {name: float(c.mean()) for name, c in correct.items()}
    best = max(accuracy, key=accuracy.__getitem__)  # the first on ties, as idxmax
    spread = {e.name: e.spread for e in evidence}
    tied, pairs = {}, {}
    for e in evidence:
        if e.name == best:
            pairs[e.name] = {}
            continue
        diff, low, high = paired_difference(
            correct[best], correct[e.name], n_resamples, confidence, seed
        )
        row = {"vs_best": diff, "vs_best_low": low, "vs_best_high": high,
               "mcnemar_p": mcnemar_p(correct[best], correct[e.name])}  # fmt: skip
        if cv:
            nb = corrected_resampled_t(correct[best], correct[e.name], e.folds, confidence)
            row |= {"nb_p": nb["p"], "nb_low": nb["interval"][0], "nb_high": nb["interval"][1]}
        # The seeds' spread is of test-split accuracies: it speaks to a test-split comparison.
        by_seeds = not cv and tied_by_seeds(spread[best], spread[e.name])
        row["tied"] = bool(low <= 0 <= high or by_seeds)
        if row["tied"]:
            tied[e.name] = (diff, low, high)
        pairs[e.name] = row
    n = len(next(iter(correct.values())))
    measure = f"cross-validated accuracy over {n} images" if cv else "test accuracy"
    return Ranking(basis, note, measure, accuracy, best, tied, pairs)
