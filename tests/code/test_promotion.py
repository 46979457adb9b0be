"""Promotion is a paired test: a 6-image gain on 600 test images is noise, not a champion."""

from __future__ import annotations

import numpy as np
import pytest

from bakeoff.register.promotion import mcnemar_p, outcome, paired_test
from bakeoff.retrain_summary import _paired_test_line

N, CLASSES = 600, 10


def _predictions(n_right: int, shift: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Labels and predictions right on `n_right` images, starting at image `shift`."""
    y = np.arange(N) % CLASSES
    right = np.zeros(N, bool)
    right[(np.arange(n_right) + shift) % N] = True
    return y, np.where(right, y, (y + 1) % CLASSES)


def _test(pred_new, pred_old, y, metric="accuracy", **kw):
    return paired_test(y, pred_new, pred_old, metric, CLASSES, 2000, 0.95, 42, **kw)


def test_a_six_image_gain_on_600_images_is_not_promoted():
    # A retrain at 0.8600 against the champion's 0.8500, the images they get right largely
    # shared but not all (60 images each only one of them gets right).
    y, old = _predictions(510)
    _, new = _predictions(516, shift=60)
    test = _test(new, old, y)
    assert test["challenger"] == pytest.approx(0.86) and test["champion"] == pytest.approx(0.85)
    assert test["difference"] == pytest.approx(0.01) and test["n"] == N
    assert test["lower_bound"] < 0 < test["difference"]
    low, high = test["interval"]
    assert low < test["lower_bound"] < test["difference"] < high
    assert test["discordant"] == {"challenger_only_right": 66, "champion_only_right": 60}
    assert test["mcnemar_p"] > 0.5
    decision, reason = outcome(test, 0.0, "champion v1")
    assert decision == "challenger"
    assert "gain +0.0100" in reason and "McNemar" in reason and "600 test images" in reason


def test_a_real_gain_is_promoted_and_min_improvement_is_on_the_lower_bound():
    y, old = _predictions(480)
    _, new = _predictions(540)  # +10 pt, every image the champion gets right kept
    test = _test(new, old, y)
    assert test["discordant"] == {"challenger_only_right": 60, "champion_only_right": 0}
    assert 0.07 < test["lower_bound"] < 0.1 and test["mcnemar_p"] < 1e-10
    assert outcome(test, 0.0, "champion v1")[0] == "promoted"
    assert outcome(test, 0.05, "champion v1")[0] == "promoted"
    # The observed gain (0.10) exceeds 0.09, but its lower bound does not: not shown.
    assert outcome(test, 0.09, "champion v1")[0] == "challenger"


def test_identical_or_worse_models_are_never_promoted():
    y, old = _predictions(500)
    same = _test(old, old, y)
    assert same["difference"] == 0 and same["lower_bound"] == 0 and same["mcnemar_p"] == 1.0
    assert outcome(same, 0.0, "champion v1")[0] == "challenger"
    _, worse = _predictions(400)
    # (A negative register.min_improvement, which would let this through, is refused when
    # params.yaml loads: tests/code/test_config.py.)
    assert outcome(_test(worse, old, y), 0.0, "champion v1")[0] == "challenger"


def test_the_test_is_reproducible_and_works_on_macro_f1():
    y, old = _predictions(500)
    _, new = _predictions(560, shift=10)
    assert _test(new, old, y) == _test(new, old, y)
    f1 = _test(new, old, y, metric="macro_f1")
    assert f1["metric"] == "macro_f1" and 0 < f1["lower_bound"] < f1["difference"]
    with pytest.raises(ValueError, match="metric"):
        _test(new, old, y, metric="latency")


def test_mcnemar_matches_the_exact_binomial():
    right_new = np.array([True] * 6 + [False] * 4)
    right_old = np.array([False] * 6 + [False] * 4)
    assert mcnemar_p(right_new, right_old) == pytest.approx(2 * 0.5**6)


def test_the_retrain_artifact_shows_the_test():
    y, old = _predictions(510)
    _, new = _predictions(516, shift=60)
    line = _paired_test_line(_test(new, old, y))
    assert "n=600" in line and "difference +0.0100" in line and "McNemar p=" in line
    assert "none" in _paired_test_line(None)
