"""Comparing models on the same images: the one bootstrap, McNemar, and the corrected t-test.

Every interval in bakeoff (evaluate's accuracy intervals, the report's ties, register's
promotion) comes from `scipy.stats.bootstrap` through this module, percentile method,
seeded: the same inputs give the same numbers. Two models scored on the same images are
compared *paired* (`paired=True`): each resample draws the same images for both, so the
image-to-image difficulty cancels out.

Under k-fold cross-validation the fold accuracies are not independent (any two training
sets share (k-2)/(k-1) of their images), so a plain t-test over folds underestimates the
variance and finds differences that are not there. Nadeau and Bengio's corrected
resampled t-test (Machine Learning 52, 2003) inflates the variance by
(1/k + n_test/n_train) instead of 1/k; Bouckaert and Frank (PAKDD 2004) found it the
best-calibrated of the cheap tests. `corrected_resampled_t` computes it.

Pure functions on arrays (numpy, scipy): tested without models.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

_BATCH = 250  # resamples evaluated at once: bounds memory at 250 x n per array


def bootstrap(
    samples: Sequence[np.ndarray],
    statistic: Callable[..., np.ndarray],
    n_resamples: int,
    confidence: float,
    seed: int,
    alternative: str = "two-sided",
) -> tuple[float, float]:
    """Percentile bootstrap interval of `statistic`, images resampled together (paired).

    Args:
        samples: 1-D arrays of the same length, one entry per image (e.g. labels and two
            models' predictions); every resample draws the same images from each.
        statistic: Vectorised: called with the resampled arrays (shape (..., n)) and
            `axis=-1`, returns one value per resample.
        n_resamples: Number of resamples.
        confidence: e.g. 0.95.
        seed: Seeds the resampling.
        alternative: "two-sided", or "greater" for a one-sided lower bound (high is inf).

    Returns:
        (low, high).
    """
    from scipy.stats import bootstrap as scipy_bootstrap

    arrays = tuple(np.asarray(s) for s in samples)
    if not arrays or len(arrays[0]) == 0 or len({len(a) for a in arrays}) != 1:
        raise ValueError("the bootstrap needs non-empty samples of one length (the same images)")
    result = scipy_bootstrap(
        arrays,
        statistic,
        n_resamples=n_resamples,
        batch=_BATCH,
        vectorized=True,
        paired=True,
        axis=-1,
        confidence_level=confidence,
        alternative=alternative,
        method="percentile",
        rng=np.random.default_rng(seed),
    )
    interval = result.confidence_interval
    return float(interval.low), float(interval.high)


def _mean(x: np.ndarray, axis: int = -1) -> np.ndarray:
    return np.mean(x, axis=axis)


def accuracy_interval(
    correct: np.ndarray, n_resamples: int, confidence: float, seed: int
) -> tuple[float, float]:
    """Bootstrap interval of an accuracy from 0/1 per image (1 = predicted right)."""
    return bootstrap([np.asarray(correct, float)], _mean, n_resamples, confidence, seed)


def _difference(a: np.ndarray, b: np.ndarray, axis: int = -1) -> np.ndarray:
    return np.mean(a, axis=axis) - np.mean(b, axis=axis)


def paired_difference(
    correct_a: np.ndarray, correct_b: np.ndarray, n_resamples: int, confidence: float, seed: int
) -> tuple[float, float, float]:
    """Accuracy of a minus accuracy of b on the same images, with its paired interval.

    Returns:
        (difference, low, high).
    """
    a, b = np.asarray(correct_a, float), np.asarray(correct_b, float)
    low, high = bootstrap([a, b], _difference, n_resamples, confidence, seed)
    return float(a.mean() - b.mean()), low, high


def mcnemar_p(correct_a: np.ndarray, correct_b: np.ndarray) -> float:
    """Two-sided exact McNemar p-value: a binomial test on the images only one got right."""
    from scipy.stats import binomtest

    a, b = np.asarray(correct_a, bool), np.asarray(correct_b, bool)
    a_only, b_only = int((a & ~b).sum()), int((~a & b).sum())
    if a_only + b_only == 0:
        return 1.0
    return float(binomtest(a_only, a_only + b_only, 0.5).pvalue)


def fold_accuracies(correct: np.ndarray, folds: np.ndarray) -> np.ndarray:
    """Accuracy of each fold (folds numbered 0..k-1), from 0/1 per image."""
    correct, folds = np.asarray(correct, float), np.asarray(folds)
    return np.array([correct[folds == f].mean() for f in range(int(folds.max()) + 1)])


def corrected_resampled_t(
    correct_a: np.ndarray, correct_b: np.ndarray, folds: np.ndarray, confidence: float
) -> dict[str, Any]:
    """Nadeau and Bengio's corrected resampled t-test of accuracy a - b over k folds.

    Args:
        correct_a, correct_b: 0/1 per image, out-of-fold predictions of two models.
        folds: The fold (0..k-1) that held each image out.
        confidence: e.g. 0.95, for the interval of the mean difference.

    Returns:
        {"difference", "interval": [low, high], "p", "t", "folds"}: mean per-fold
        difference, its corrected interval, two-sided p-value (NaN when every fold gives
        the same difference: then there is no spread to test with).
    """
    from scipy.stats import t as student_t

    folds = np.asarray(folds)
    d = fold_accuracies(correct_a, folds) - fold_accuracies(correct_b, folds)
    k = len(d)
    n_test = len(folds) / k  # the mean held-out fold
    variance = (1 / k + n_test / (len(folds) - n_test)) * d.var(ddof=1)
    mean = float(d.mean())
    if variance <= 0:
        return {"difference": mean, "interval": [mean, mean], "p": float("nan"),
                "t": float("nan"), "folds": k}  # fmt: skip
    se = float(np.sqrt(variance))
    t = mean / se
    half = float(student_t.ppf(0.5 + confidence / 2, k - 1)) * se
    p = float(2 * student_t.sf(abs(t), k - 1))
    return {"difference": mean, "interval": [mean - half, mean + half], "p": p, "t": t,
            "folds": k}  # fmt: skip
