"""train.seeds: one run per seed, the spread in the metrics, the best (backbone, seed) by val."""

from __future__ import annotations

import dataclasses
import json

import pytest

from bakeoff.config.wiring import params_kwargs


def test_each_seed_is_a_run_evaluated_and_register_picks_the_best_seed_by_val(
    params, tiny_data, tmp_path, tracking_uri
):
    from mlflow import MlflowClient

    from bakeoff.evaluate.stage import evaluate
    from bakeoff.register.stage import register
    from bakeoff.train.stage import train

    raw, split = tiny_data
    params = dataclasses.replace(params, train=dataclasses.replace(params.train, seeds=[1, 2]))
    models = tmp_path / "models"
    result = train("SimpleCNN", params.train, split, raw, models / "SimpleCNN",
                   tmp_path / "state", tmp_path / "plots" / "SimpleCNN", tune=params.tune,
                   tracking_params=params.tracking, cache_dir=tmp_path / "cache",
                   root=tmp_path)  # fmt: skip

    info = json.loads((models / "SimpleCNN" / "train.json").read_text())
    seeds = info["seeds"]
    assert [s["seed"] for s in seeds] == [1, 2] and len({s["run_id"] for s in seeds}) == 2
    for s in seeds:
        assert (models / "SimpleCNN" / s["path"] / "model.keras").is_file()
        run = MlflowClient(tracking_uri).get_run(s["run_id"])
        assert run.data.tags["seed"] == str(s["seed"]) and run.data.params["train.seeds"] == (
            f"[{s['seed']}]"
        )
    best_seed = max(seeds, key=lambda s: s["val_accuracy"])  # the first seed on ties
    assert info["seed"] == best_seed["seed"]
    assert info["run_id"] == best_seed["run_id"] == result.run_id
    assert (tmp_path / "plots" / "SimpleCNN" / "history.csv").is_file()

    metrics = evaluate(
        "SimpleCNN",
        split_dir=split,
        image_root=raw,
        model_dir=models / "SimpleCNN",
        metrics_path=tmp_path / "metrics" / "SimpleCNN.json",
        plots_dir=tmp_path / "plots" / "SimpleCNN",
        cache_dir=tmp_path / "cache",
        root=tmp_path,
        **params_kwargs(params, "SimpleCNN")["evaluate"],
    ).metrics
    assert metrics["n_seeds"] == 2 and [s["seed"] for s in metrics["seeds"]] == [1, 2]
    accuracies = [s["test_accuracy"] for s in metrics["seeds"]]
    assert metrics["test_accuracy_mean"] == pytest.approx(sum(accuracies) / 2)
    assert metrics["test_accuracy_std"] == pytest.approx(
        abs(accuracies[0] - accuracies[1]) / 2**0.5
    )
    other = next(s for s in metrics["seeds"] if s["run_id"] != info["run_id"])
    run = MlflowClient(tracking_uri).get_run(other["run_id"])
    assert run.data.metrics["test_accuracy"] == round(other["test_accuracy"], 4)  # as the UI shows
    # Each seed's logged model is named apart, in its run's experiment.
    model = MlflowClient(tracking_uri).get_logged_model(other["model_uri"].removeprefix("models:/"))
    assert (model.name, model.experiment_id) == (
        f"SimpleCNN-seed{other['seed']}", run.info.experiment_id
    )  # fmt: skip

    decision = register(params.register, ["SimpleCNN"], models, tmp_path / "metrics", split,
                        raw, tmp_path / "register.json", seed=params.seed,
                        bootstrap=params.bootstrap, budgets=params.budgets,
                        tracking_params=params.tracking, cache_dir=tmp_path / "cache",
                        root=tmp_path).report  # fmt: skip
    pick = max(metrics["seeds"], key=lambda s: s["val_accuracy"])
    assert decision["candidate"]["seed"] == pick["seed"]
    assert decision["candidate"]["run_id"] == pick["run_id"]
