"""Pairwise statistics and cross-validation folds: the one bootstrap, McNemar, Nadeau-Bengio,
folds that respect classes and duplicates, and the report's choice of comparison."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from bakeoff.compare import (
    accuracy_interval,
    bootstrap,
    corrected_resampled_t,
    mcnemar_p,
    paired_difference,
)
from bakeoff.errors import BakeoffError
from bakeoff.evaluate.crossval import make_folds
from bakeoff.report.stats import CV, TEST, Evidence, rank


def _correct(n: int, right: int, seed: int) -> np.ndarray:
    out = np.zeros(n)
    out[np.random.default_rng(seed).choice(n, right, replace=False)] = 1
    return out


def test_the_bootstrap_is_seeded_and_paired_intervals_are_tighter():
    a = _correct(300, 240, 0)
    b = a.copy()
    b[np.flatnonzero(a)[:15]] = 0  # b is a minus 15 images: 5 pt worse, always
    assert accuracy_interval(a, 1000, 0.95, 1) == accuracy_interval(a, 1000, 0.95, 1)
    assert accuracy_interval(a, 1000, 0.95, 1) != accuracy_interval(a, 1000, 0.95, 2)
    diff, low, high = paired_difference(a, b, 1000, 0.95, 1)
    assert diff == pytest.approx(0.05) and 0 < low < diff < high
    # Unpaired, the two 95% intervals overlap: pairing is what shows the difference.
    assert accuracy_interval(b, 1000, 0.95, 1)[1] > accuracy_interval(a, 1000, 0.95, 1)[0]
    lower, upper = bootstrap(
        [a, b], lambda x, y, axis: x.mean(axis) - y.mean(axis), 1000, 0.95, 1, "greater"
    )
    assert low < lower < diff and upper == np.inf, "one-sided: a tighter lower bound"
    with pytest.raises(ValueError, match="same images"):
        paired_difference(a, b[:-1], 100, 0.95, 1)


def test_mcnemar_counts_only_the_discordant_images():
    a = np.array([1, 1, 1, 1, 0, 0] * 10, bool)
    assert mcnemar_p(a, a) == 1.0
    b = a.copy()
    b[:2] = False  # 2 discordant images: far from significant
    assert mcnemar_p(a, b) == pytest.approx(0.5)


def test_the_corrected_t_test_is_wider_than_the_plain_one_over_folds():
    from scipy.stats import ttest_rel

    from bakeoff.compare import fold_accuracies

    folds = np.arange(300) % 5
    a, b = _correct(300, 255, 1), _correct(300, 240, 2)
    nb = corrected_resampled_t(a, b, folds, 0.95)
    plain = ttest_rel(fold_accuracies(a, folds), fold_accuracies(b, folds))
    assert nb["difference"] == pytest.approx(0.05) and nb["folds"] == 5
    assert nb["p"] > plain.pvalue, "the overlap of training sets widens the variance"
    # (1/k + n_test/n_train) / (1/k) = (0.2 + 0.25) / 0.2: t shrinks by sqrt(2.25) = 1.5.
    assert plain.statistic / nb["t"] == pytest.approx(1.5)
    low, high = nb["interval"]
    assert low < nb["difference"] < high
    same = corrected_resampled_t(a, a, folds, 0.95)
    assert np.isnan(same["p"]) and same["interval"] == [0.0, 0.0]


def test_folds_are_stratified_seeded_and_keep_duplicates_together():
    y = np.repeat([0, 1, 2], 40)
    groups = np.array([f"sha{i}" for i in range(120)], dtype=object)
    groups[[0, 1, 2]] = "dup"  # three copies of one file
    groups[[50, 51]] = "dup2"
    fold = make_folds(y, groups, 5, seed=42)
    assert np.array_equal(fold, make_folds(y, groups, 5, seed=42)), "seeded"
    assert not np.array_equal(fold, make_folds(y, groups, 5, seed=7))
    assert len(set(fold[[0, 1, 2]])) == 1 and len(set(fold[[50, 51]])) == 1
    for label in range(3):
        counts = np.bincount(fold[y == label], minlength=5)
        assert counts.max() - counts.min() <= 3, counts
    with pytest.raises(BakeoffError, match=r"fewer than evaluate\.cv_folds"):
        make_folds(np.array([0] * 10 + [1] * 4), np.arange(14).astype(str), 5, 0)
    with pytest.raises(BakeoffError, match="at least 3"):
        make_folds(y, groups, 2, 0)


def _evidence(name: str, right: int, seed: int, cv: bool = True, folds=None) -> Evidence:
    images = np.array([f"c/{i:03d}.png" for i in range(300)])
    folds = np.arange(300) % 5 if folds is None else folds
    test = _correct(45, 40, seed)
    if not cv:
        return Evidence(name, test, cv_off_reason="train.weights is none: ...")
    return Evidence(name, test, (0.9, 0.0, 1), _correct(300, right, seed), images, folds)


def test_ranking_uses_cross_validation_when_every_backbone_has_it():
    ranking = rank(
        [_evidence("A", 270, 0), _evidence("B", 240, 1), _evidence("C", 266, 2)], 1000, 0.95, 0
    )
    assert ranking.basis == CV and ranking.best == "A"
    assert "all 300 accepted images" in ranking.note and "5-fold" in ranking.note
    assert ranking.measure == "cross-validated accuracy over 300 images"
    assert ranking.pairs["B"]["tied"] is False and ranking.pairs["B"]["vs_best_low"] > 0
    assert "C" in ranking.tied, "1.3 pt apart on 300 images: tied"
    assert {"mcnemar_p", "nb_p", "nb_low", "nb_high"} <= set(ranking.pairs["B"])
    # Without every backbone's out-of-fold predictions, the comparison is on the test split.
    assert rank([_evidence("A", 270, 0, cv=False), _evidence("B", 240, 1)], 1000, 0.95, 0
                ).basis == TEST  # fmt: skip


def test_ranking_says_why_cv_is_off_and_refuses_different_folds():
    ranking = rank([_evidence("A", 270, 0, cv=False), _evidence("B", 240, 1)], 1000, 0.95, 0)
    assert ranking.basis == TEST and "45 held-out test images" in ranking.note
    assert "A: train.weights is none" in ranking.note
    other = np.roll(np.arange(300) % 5, 1)
    with pytest.raises(BakeoffError, match="different images or folds"):
        rank([_evidence("A", 270, 0), _evidence("B", 240, 1, folds=other)], 100, 0.95, 0)


def test_the_report_recommends_on_cross_validation(tmp_path, monkeypatch):
    """The report's hand-made inputs plus out-of-fold predictions: Small is 7 pt below Big
    on 300 images (not tied under CV, unlike on the test split), so Big is recommended."""
    from bakeoff.config.params import load_params
    from tests.code.report_fixtures import SPECS, make_inputs, run_report, with_training_runs
    from tests.conftest import REPO

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    params = load_params(REPO / "params.yaml")
    metrics = make_inputs(tmp_path)
    with_training_runs(params, tmp_path, metrics)
    right = {"Big": 280, "Small": 259, "Bad": 200}
    for name in SPECS:
        correct = _correct(300, right[name], 0).astype(bool)
        labels = np.array(["bag", "coat", "shirt"])[np.arange(300) % 3]
        predicted = np.where(correct, labels, "coat")
        predicted[~correct & (labels == "coat")] = "bag"
        oof = pd.DataFrame({"path": [f"x/{i:03d}.png" for i in range(300)], "label": labels,
                            "fold": np.arange(300) % 5, "predicted": predicted})  # fmt: skip
        oof.to_csv(tmp_path / "plots" / name / "oof.csv", index=False)
        m = metrics[name] | {"cv_accuracy": right[name] / 300, "cv_n": 300,
                             "cv_macro_f1": 0.8}  # fmt: skip
        (tmp_path / "metrics" / f"{name}.json").write_text(json.dumps(m))
    run_report(params, tmp_path)
    md = (tmp_path / "reports" / "comparison.md").read_text()
    assert "**Recommendation: Big.**" in md
    assert "best cross-validated accuracy over 300 images (0.9333)" in md
    assert "out-of-fold predictions of all 300 accepted images" in md
    table = pd.read_csv(tmp_path / "reports" / "comparison.csv", index_col="backbone")
    assert table.loc["Small", "cv_accuracy"] == pytest.approx(259 / 300)
    assert table.loc["Small", "vs_best"] == pytest.approx(21 / 300)
    assert not table.loc["Small", "tied"] and table.loc["Small", "nb_p"] > 0
