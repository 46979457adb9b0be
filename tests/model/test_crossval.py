"""Cross-validation on cached features, on ~300 generated images (15% mislabelled).

The frozen "pretrained" base is SimpleCNN with a saved random initialisation as its weights
file, as in test_caches (random ImageNet-shaped MobileNets give collapsed features). The
test predictions come from the cache (equal to the full model's), every image gets one
out-of-fold prediction, and the CV interval is at most half as wide as the test split's:
cross-validation exists to separate backbones the small test split cannot."""

from __future__ import annotations

import csv
import dataclasses
import json
import shutil

import keras
import numpy as np
import pytest

from bakeoff.config.wiring import params_kwargs
from tests.conftest import CLASSES, make_image_folder
from tests.model.tiny_models import module_store, shrunk_params

PER_CLASS, FLIPPED, SIZE = 100, 0.15, 32


def _noisy_folder(root):
    """3 x 100 striped images, 15% of them filed under a wrong class: a hard ceiling."""
    raw = make_image_folder(root, per_class=PER_CLASS, size=SIZE)
    rng = np.random.default_rng(3)
    for label in CLASSES:
        files = sorted((root / label).iterdir())
        for f in rng.choice(files, int(FLIPPED * PER_CLASS), replace=False):
            other = CLASSES[(CLASSES.index(label) + 1) % len(CLASSES)]
            shutil.move(f, root / other / f"flipped_{f.name}")
    return raw


def _accepted(raw, path):
    import hashlib

    with open(path, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["path", "label", "sha256"])
        for f in sorted(raw.rglob("*.png")):
            sha = hashlib.sha256(f.read_bytes()).hexdigest()
            writer.writerow([str(f.relative_to(raw)), f.parent.name, sha])
    return path


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    """SimpleCNN with a frozen weights file, trained and evaluated with 5-fold CV."""
    from bakeoff.backbone.build import build_base
    from bakeoff.data.split import split
    from bakeoff.evaluate.stage import evaluate
    from bakeoff.train.stage import train

    with pytest.MonkeyPatch.context() as mp:
        root = module_store(tmp_path_factory, mp)
        keras.utils.set_random_seed(0)
        weights = root / "SimpleCNN.weights.h5"
        build_base("SimpleCNN", SIZE).save_weights(weights)
        raw = _noisy_folder(root / "raw")
        base = shrunk_params()
        split(base.split, _accepted(raw, root / "accepted.csv"), root / "split", seed=base.seed)
        recipe = dataclasses.replace(
            base.train, weights=str(weights), image_size=SIZE, augment=False,
            cache_features=True, fine_tune_layers=0, head_epochs=200,
        )  # fmt: skip
        params = dataclasses.replace(
            base, train=recipe, tune=dataclasses.replace(base.tune, trials=2),
            evaluate=dataclasses.replace(base.evaluate, cv_folds=5),
        )  # fmt: skip
        kw = {"cache_dir": root / "cache", "root": root}
        train("SimpleCNN", params.train, root / "split", raw, root / "models" / "SimpleCNN",
              root / "state", root / "plots" / "SimpleCNN", tune=params.tune,
              tracking_params=params.tracking, **kw)  # fmt: skip
        evaluate("SimpleCNN", split_dir=root / "split", image_root=raw,
                 model_dir=root / "models" / "SimpleCNN",
                 metrics_path=root / "metrics" / "SimpleCNN.json",
                 plots_dir=root / "plots" / "SimpleCNN",
                 **params_kwargs(params, "SimpleCNN")["evaluate"], **kw)  # fmt: skip
        metrics = json.loads((root / "metrics" / "SimpleCNN.json").read_text())
        yield root, params, raw, metrics


def test_the_cv_interval_is_at_most_half_as_wide_as_the_test_splits(project):
    """Both intervals as the report computes them, from the per-image results evaluate wrote."""
    from bakeoff.compare import accuracy_interval

    root, params, _, m = project
    assert m["cv_n"] == 3 * PER_CLASS and m["n_test"] < 0.2 * m["cv_n"]
    # Not a degenerate pass: both intervals have width, the labels' noise caps accuracy.
    assert 0.4 < m["cv_accuracy"] < 0.95 and 0.3 < m["test_accuracy"] < 1.0
    plots = root / "plots" / "SimpleCNN"
    with open(plots / "oof.csv") as fh:
        oof = [r["label"] == r["predicted"] for r in csv.DictReader(fh)]
    with open(plots / "confusion.csv") as fh:
        test = [r["actual"] == r["predicted"] for r in csv.DictReader(fh)]
    stats = (params.bootstrap, params.report.confidence, params.seed)
    cv_interval, test_interval = accuracy_interval(oof, *stats), accuracy_interval(test, *stats)
    cv_width = cv_interval[1] - cv_interval[0]
    test_width = test_interval[1] - test_interval[0]
    print(f"CV {m['cv_accuracy']:.3f} {cv_interval} on {m['cv_n']} images, test "
          f"{m['test_accuracy']:.3f} {test_interval} on {m['n_test']}")  # fmt: skip
    assert 0 < cv_width <= 0.5 * test_width, (cv_width, test_width)
    assert cv_interval[0] <= m["cv_accuracy"] <= cv_interval[1]
    assert m["cv_folds"] == 5 and len(m["cv_fold_accuracy"]) == 5
    assert m["cv_off_reason"] is None and 0 < m["cv_macro_f1"] <= 1


def test_every_image_has_one_out_of_fold_prediction(project):
    root, _, raw, m = project
    with open(root / "plots" / "SimpleCNN" / "oof.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert sorted(r["path"] for r in rows) == sorted(
        str(f.relative_to(raw)) for f in raw.rglob("*.png")
    )
    assert {r["fold"] for r in rows} == {"0", "1", "2", "3", "4"}
    right = np.mean([r["label"] == r["predicted"] for r in rows])
    assert right == pytest.approx(m["cv_accuracy"])


def test_out_of_fold_probabilities_are_written_for_the_label_check(project):
    root = project[0]
    with open(root / "plots" / "SimpleCNN" / "oof.csv", newline="") as fh:
        reader = csv.DictReader(fh)
        rows = list(reader)
    columns = [f"p_{c}" for c in sorted(CLASSES)]
    assert reader.fieldnames == ["path", "label", "fold", "predicted", *columns]
    proba = np.array([[float(r[c]) for c in columns] for r in rows])
    assert np.allclose(proba.sum(axis=1), 1.0, atol=1e-4)
    assert [sorted(CLASSES)[i] for i in proba.argmax(axis=1)] == [r["predicted"] for r in rows]


def test_test_predictions_from_the_cache_equal_the_full_models(project, monkeypatch):
    """evaluate never ran the base on the test images: the head on cached features gives the
    full model's probabilities."""
    from bakeoff.backbone.features import load_features
    from bakeoff.data.pixels import split_pixels
    from bakeoff.evaluate.frozen import head_proba
    from bakeoff.model.inference import predict_proba

    root, params, raw, m = project
    model = keras.saving.load_model(root / "models" / "SimpleCNN" / "model.keras")
    test_px = split_pixels(root / "split", "test", raw, SIZE, root / "cache")
    full = predict_proba(model, test_px)
    feats = load_features("SimpleCNN", params.train, root / "split", raw, root / "cache",
                          splits=("test",))  # fmt: skip
    assert feats.computed == (), "evaluate put the test features into the cache"
    cached = head_proba(model, feats.x_test)
    np.testing.assert_allclose(cached, full, atol=1e-4)
    assert (full.argmax(1) == test_px.labels).mean() == pytest.approx(m["test_accuracy"])


def test_cv_off_is_recorded_with_its_reason(project, tmp_path):
    from bakeoff.evaluate.frozen import cv_off_reason

    _, params, _, _ = project
    assert cv_off_reason(params.train, 5) is None
    off = cv_off_reason(dataclasses.replace(params.train, weights="none"), 5)
    assert "train.weights is none" in off
    # Augmenting a frozen base is refused at load unless the cache is off (sections.py).
    augmented = dataclasses.replace(params.train, augment=True, cache_features=False)
    assert "augment" in cv_off_reason(augmented, 5)
    tuned = dataclasses.replace(params.train, fine_tune_layers=2)
    assert "fine-tuning" in cv_off_reason(tuned, 5)
    assert cv_off_reason(params.train, 0) == "evaluate.cv_folds is 0"
