"""Head tuning on cached features: it reaches a tuned logistic-regression probe, fairly."""

from __future__ import annotations

import numpy as np
import pytest

from bakeoff.config.wiring import params_kwargs
from bakeoff.head.trainer import HeadParams, HeadTrainer, predict_head
from bakeoff.head.tune import tune

N_CLASSES = 4


def _real_features(seed: int = 0) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Features of a seeded random frozen "backbone": class-dependent latent images through a
    fixed random ReLU layer (256 features, like a pooled base); nearly separable classes.
    A 160/120/120 split, as bakeoff's 15% val and test splits of a small folder."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 1.3, (N_CLASSES, 12))
    w, b = rng.normal(0, 1 / np.sqrt(12), (12, 256)), rng.normal(0, 0.5, 256)
    out = {}
    for name, n in (("train", 160), ("val", 120), ("test", 120)):
        y = np.arange(n) % N_CLASSES
        z = centres[y] + rng.normal(0, 1.0, (n, 12))
        out[name] = (np.maximum(z @ w + b, 0).astype(np.float32) * 3.0, y)
    return out


def _probe_accuracy(data) -> float:
    """The standard baseline: logistic regression, C chosen by 5-fold CV on train."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GridSearchCV
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    pipe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=5000))
    probe = GridSearchCV(pipe, {"logisticregression__C": np.logspace(-4, 4, 17)}, cv=5)
    probe.fit(*data["train"])
    return float(probe.score(*data["test"]))


def _tune(data, trials: int, seed: int = 42, on_trial=None):
    (x_tr, y_tr), (x_va, y_va) = data["train"], data["val"]
    return tune(
        x_tr, y_tr, x_va, y_va, N_CLASSES, HeadParams(learning_rate=0.001, batch_size=32),
        trials=trials, seed=seed, max_epochs=500, patience=10,
        on_trial=on_trial,
    )  # fmt: skip


def test_tuned_head_reaches_the_logistic_regression_probe_less_one_image():
    data = _real_features()
    x_te, y_te = data["test"]
    probe = _probe_accuracy(data)
    seen = []
    result = _tune(data, trials=20, on_trial=seen.append)
    tuned = float((predict_head(result.best_fit.weights, x_te) == y_te).mean())
    print(f"probe {probe:.4f}, tuned head {tuned:.4f}, default head "
          f"{(predict_head(result.default_fit.weights, x_te) == y_te).mean():.4f}")  # fmt: skip
    assert tuned >= probe - 1 / len(y_te)
    # The fixture catches an under-trained head: 12 epochs at the default learning rate
    # fall well short of the probe.
    (x_tr, y_tr), (x_va, y_va) = data["train"], data["val"]
    short = HeadTrainer(x_tr, y_tr, x_va, y_va, N_CLASSES).fit(
        HeadParams(0.001, 32), seed=42, max_epochs=12, patience=12
    )
    assert (predict_head(short.weights, x_te) == y_te).mean() < probe - 2 / len(y_te)
    # Selected on validation only, never worse there than the default head.
    summary = result.summary()
    assert summary["tuned_val_accuracy"] >= summary["default_val_accuracy"]
    assert summary["trials"] == 20 == len(seen) and [t["number"] for t in seen] == list(range(20))
    assert summary["pruned"] > 0, "successive halving stops hopeless trials early"
    assert {t["state"] for t in seen} == {"COMPLETE", "PRUNED"}
    # Converged: early stopping on val loss ended the fit well before the 500-epoch cap.
    assert result.best_fit.best_epoch < len(result.best_fit.history) < 500


def test_tuning_is_a_pure_seeded_function_of_the_features():
    data = _real_features(seed=1)
    first, again = _tune(data, trials=4), _tune(data, trials=4)
    assert first.best == again.best
    assert first.best_fit.history == again.best_fit.history
    assert [t["params"] for t in first.trials] == [t["params"] for t in again.trials]
    other = _tune(data, trials=4, seed=7)
    assert [t["params"] for t in other.trials] != [t["params"] for t in first.trials]
    off = _tune(data, trials=0)
    assert off.best == off.default and off.trials == []
    assert off.default_fit.history == first.default_fit.history


def test_train_tunes_the_head_logs_each_trial_as_a_child_run_and_keeps_the_winner(
    params, tiny_data, tmp_path, tracking_uri
):
    import dataclasses
    import json

    from mlflow import MlflowClient

    from bakeoff.backbone.build import build_base
    from bakeoff.evaluate.stage import evaluate
    from bakeoff.train.stage import train

    raw, split = tiny_data
    weights = tmp_path / "pretrained.weights.h5"
    build_base("SimpleCNN", 32).save_weights(weights)
    recipe = dataclasses.replace(params.train, weights=str(weights), augment=False, head_epochs=60)
    params = dataclasses.replace(
        params, train=recipe, tune=dataclasses.replace(params.tune, trials=3)
    )
    out = tmp_path / "models" / "SimpleCNN"
    result = train(
        "SimpleCNN", params.train, split, raw, out, tmp_path / "state", tmp_path / "plots",
        tune=params.tune, tracking_params=params.tracking, cache_dir=tmp_path / "cache",
        root=tmp_path,
    )  # fmt: skip

    info = json.loads((out / "train.json").read_text())
    tuning = info["tuning"]
    assert tuning["status"] == "on" and tuning["trials"] == 3 and tuning["reason"] is None
    assert tuning["tuned_val_accuracy"] >= tuning["default_val_accuracy"]
    assert info["val_accuracy"] == pytest.approx(tuning["tuned_val_accuracy"])
    assert info["epochs_run"] > 1 and info["seeds"][0]["tuning"]["status"] == "on"
    client = MlflowClient(tracking_uri)
    run = client.get_run(result.run_id)
    assert run.data.tags["tuning"] == "on"
    assert run.data.metrics["tuned_val_accuracy"] == pytest.approx(tuning["tuned_val_accuracy"])
    children = client.search_runs(
        [run.info.experiment_id], f"tags.mlflow.parentRunId = '{result.run_id}'"
    )
    assert sorted(c.info.run_name for c in children) == ["trial-0", "trial-1", "trial-2"]
    assert all("learning_rate" in c.data.params and "val_accuracy" in c.data.metrics
               for c in children)  # fmt: skip
    # The saved Keras model is the selected head: evaluate finds the same val accuracy.
    metrics = evaluate(
        "SimpleCNN", split_dir=split, image_root=raw, model_dir=out,
        metrics_path=tmp_path / "m.json", plots_dir=tmp_path / "p",
        cache_dir=tmp_path / "cache", root=tmp_path,
        **params_kwargs(params, "SimpleCNN")["evaluate"],
    )  # fmt: skip
    assert metrics.metrics["val_accuracy"] == pytest.approx(info["val_accuracy"])


def test_without_a_feature_cache_tuning_is_off_and_says_why(
    params, tiny_data, tmp_path, tracking_uri, capsys
):
    import json

    from bakeoff.train.stage import train

    raw, split = tiny_data
    out = tmp_path / "models" / "SimpleCNN"
    train("SimpleCNN", params.train, split, raw, out, tmp_path / "state", tmp_path / "plots",
          tune=params.tune, tracking_params=params.tracking, cache_dir=tmp_path / "cache",
          root=tmp_path)  # fmt: skip
    tuning = json.loads((out / "train.json").read_text())["tuning"]
    assert tuning["status"] == "off" and "train.weights is none" in tuning["reason"]
    assert f"head tuning off: {tuning['reason']}" in capsys.readouterr().out


def test_trainers_of_one_shape_keep_their_own_fit_when_interleaved():
    """Two trainers of the same (feature size, classes) share one compiled program; each
    trainer's weights stay its own fit, whatever the other fitted since."""
    a, b = _real_features(seed=2), _real_features(seed=3)
    hp = HeadParams(learning_rate=0.01, batch_size=32)

    def trainer(data):
        (x_tr, y_tr), (x_va, y_va) = data["train"], data["val"]
        return HeadTrainer(x_tr, y_tr, x_va, y_va, N_CLASSES)

    alone = trainer(a)
    alone.fit(hp, seed=5, max_epochs=20, patience=20)
    expected = alone.weights()

    first, second = trainer(a), trainer(b)
    fit_a = first.fit(hp, seed=5, max_epochs=20, patience=20)
    second.fit(hp, seed=6, max_epochs=20, patience=20)
    got = first.weights()
    assert set(got) == set(expected)
    for key in expected:
        np.testing.assert_array_equal(got[key], expected[key], err_msg=key)
    # The fit's own copy (its best epoch) is untouched too.
    x_te, y_te = a["test"]
    assert (predict_head(fit_a.weights, x_te) == y_te).mean() > 0.5
    with pytest.raises(RuntimeError, match="fit"):
        trainer(b).weights()
