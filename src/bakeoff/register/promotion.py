"""Promotion as a paired test: does the challenger really beat the champion?

Both models are scored on the same current test images, so the comparison is paired: each
bootstrap resample draws the same images for both, and image difficulty cancels out. The
challenger is promoted only when the one-sided lower confidence bound of its gain exceeds
`register.min_improvement` (at 0: the gain is shown at `register.confidence`). A 6-image
difference on 600 images is noise, not a new champion. McNemar's exact test on the
discordant images is reported alongside, as a second opinion a reader may know better.

Pure functions on label arrays (numpy, scipy): tested without models or MLflow.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from bakeoff.compare import bootstrap, mcnemar_p
from bakeoff.config.sections import test_metric

__all__ = ["mcnemar_p", "outcome", "paired_test"]


def _macro_f1(y: np.ndarray, pred: np.ndarray, n_classes: int) -> np.ndarray:
    """Macro-F1 of each row of (resamples, n) label arrays, classes absent from both at 0."""
    scores = np.zeros(y.shape[0])
    for k in range(n_classes):
        tp = ((pred == k) & (y == k)).sum(axis=1)
        fp = ((pred == k) & (y != k)).sum(axis=1)
        fn = ((pred != k) & (y == k)).sum(axis=1)
        denom = 2 * tp + fp + fn
        scores += np.divide(2 * tp, denom, out=np.zeros(y.shape[0]), where=denom > 0)
    return scores / n_classes


def _score(metric: str, y: np.ndarray, pred: np.ndarray, n_classes: int) -> np.ndarray:
    """The metric over the last axis: one value per row of (..., n) label arrays."""
    if metric == "accuracy":
        return (y == pred).mean(axis=-1)
    if metric == "macro_f1":
        lead = y.shape[:-1]
        flat = _macro_f1(y.reshape(-1, y.shape[-1]), pred.reshape(-1, y.shape[-1]), n_classes)
        return flat.reshape(lead)
    raise ValueError(f"no paired test for metric {metric!r}: use accuracy or macro_f1")


def paired_test(
    y: np.ndarray,
    pred_new: np.ndarray,
    pred_old: np.ndarray,
    metric: str,
    n_classes: int,
    n_resamples: int,
    confidence: float,
    seed: int,
) -> dict[str, Any]:
    """Paired bootstrap of the metric's gain of `pred_new` over `pred_old` on the same images.

    Args:
        y: True labels of the test images.
        pred_new: The challenger's predicted labels, same images in the same order.
        pred_old: The champion's predicted labels.
        metric: "accuracy" or "macro_f1".
        n_classes: Number of classes (for macro-F1).
        n_resamples: Bootstrap resamples.
        confidence: e.g. 0.95: the lower bound is the (1 - confidence) quantile of the gain.
        seed: Seed of the resampling (the same inputs give the same decision).

    Returns:
        The test as plain JSON values: new/old scores, difference, one-sided lower bound,
        two-sided interval, McNemar p-value, discordant counts and n.
    """
    y, pred_new, pred_old = (np.asarray(a, dtype=np.int64) for a in (y, pred_new, pred_old))
    if not len(y) == len(pred_new) == len(pred_old) or len(y) == 0:
        raise ValueError("paired test needs the same non-empty test images for both models")

    def gain(y_, new_, old_, axis: int = -1) -> np.ndarray:
        return _score(metric, y_, new_, n_classes) - _score(metric, y_, old_, n_classes)

    samples = (y, pred_new, pred_old)
    low, high = bootstrap(samples, gain, n_resamples, confidence, seed)
    lower, _ = bootstrap(samples, gain, n_resamples, confidence, seed, alternative="greater")
    new = float(_score(metric, y, pred_new, n_classes))
    old = float(_score(metric, y, pred_old, n_classes))
    right_new, right_old = pred_new == y, pred_old == y
    return {
        "method": "paired bootstrap over the test images",
        "metric": metric,
        "n": len(y),
        "challenger": new,
        "champion": old,
        "difference": new - old,
        "lower_bound": lower,
        "confidence": confidence,
        "interval": [float(low), float(high)],
        "resamples": n_resamples,
        "seed": seed,
        "discordant": {
            "challenger_only_right": int((right_new & ~right_old).sum()),
            "champion_only_right": int((~right_new & right_old).sum()),
        },
        "mcnemar_p": mcnemar_p(right_new, right_old),
    }


def outcome(test: dict[str, Any], min_improvement: float, champion: str) -> tuple[str, str]:
    """`promoted` when the gain's lower bound exceeds `min_improvement`, else `challenger`.

    Args:
        test: A `paired_test` result.
        min_improvement: register.min_improvement (same unit as the metric; at least 0,
            checked when params.yaml loads: a negative one would promote a regression).
        champion: How to name the champion in the reason (e.g. "champion v3").

    Returns:
        (decision, reason): the reason quotes the difference, the bound, the p-value and n.
    """
    conf = f"{100 * test['confidence']:g}%"
    name = test_metric(test["metric"])
    facts = (
        f"{name} {test['challenger']:.4f} vs {champion} {test['champion']:.4f}"
        f" on the same {test['n']} test images: gain {test['difference']:+.4f}, {conf} lower "
        f"bound {test['lower_bound']:+.4f} (paired bootstrap; McNemar p={test['mcnemar_p']:.3g})"
    )
    if test["lower_bound"] > min_improvement:
        return "promoted", f"{facts} > register.min_improvement={min_improvement}: promoted"
    return "challenger", (
        f"{facts} does not exceed register.min_improvement={min_improvement}: "
        "the gain is not shown, the champion stays"
    )
