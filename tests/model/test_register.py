"""Stage `register`: promotion never regresses, failed or NaN runs are never registered."""

from __future__ import annotations

import dataclasses
import json
import math
import shutil

import pytest

from bakeoff import tracking
from bakeoff.config.params import Budget
from bakeoff.config.wiring import params_kwargs
from bakeoff.register.stage import register
from tests.model.tiny_models import make_trained, shared_project


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    """StripeNet learnt the data, Constant always says class 0, VGG16's training failed
    and EfficientNetB0 diverged (NaN) - both with metrics that would otherwise win - and
    Stale's metrics belong to another training run."""
    with pytest.MonkeyPatch.context() as mp:
        root, params, raw, split = shared_project(tmp_path_factory, mp)
        good = json.loads((root / "metrics" / "StripeNet.json").read_text())
        for name, status, value in (
            ("VGG16", "FAILED", 1.0),
            ("EfficientNetB0", "FINISHED", math.nan),
        ):
            model_dir = root / "models" / name
            model_dir.mkdir(parents=True)
            train = json.loads((root / "models" / "StripeNet" / "train.json").read_text())
            (model_dir / "train.json").write_text(json.dumps(train | {"status": status}))
            metrics = good | {"val_accuracy": value, "test_accuracy": value, "latency_ms_b1": 1e-3}
            (root / "metrics" / f"{name}.json").write_text(json.dumps(metrics))
        stale = root / "models" / "Stale"
        shutil.copytree(root / "models" / "StripeNet", stale)  # metrics of another run:
        shutil.copy(root / "metrics" / "Constant.json", root / "metrics" / "Stale.json")
        yield root, params, raw, split


def _register(project, backbones, budgets=None, **register_params):
    root, params, raw, split = project
    params = dataclasses.replace(params, budgets=budgets if budgets is not None else params.budgets)
    params = dataclasses.replace(
        params, register=dataclasses.replace(params.register, **register_params)
    )
    out = root / "reports" / "register.json"
    result = register(
        params.register, backbones, root / "models", root / "metrics", split, raw, out,
        seed=params.seed, bootstrap=params.bootstrap, budgets=params.budgets,
        tracking_params=params.tracking, cache_dir=root / "cache", root=root,
    )  # fmt: skip
    assert json.loads(out.read_text()) == result.report
    assert result.report["decision"] in str(result)
    return result.report


def test_promotion_never_regresses(project):
    name = "promotion"
    first = _register(project, ["Constant", "StripeNet"], model_name=name)
    assert (first["decision"], first["backbone"]) == ("promoted", "StripeNet")
    assert "no champion yet" in first["reason"]
    champion = tracking.get_version_by_alias(name, "champion")
    assert str(champion.version) == first["version"]
    assert json.loads(champion.tags["classes"]) == ["dots", "horizontal", "vertical"]
    # What the registry page shows a person: a sentence, and numbers rounded to 4 digits.
    assert champion.description.startswith("First champion: StripeNet")
    assert len(champion.tags["val_accuracy"].lstrip("0.")) <= 4

    worse = _register(project, ["Constant"], model_name=name)
    assert worse["decision"] == "challenger"
    assert "the gain is not shown" in worse["reason"]
    assert worse["paired_test"]["difference"] < 0 and worse["paired_test"]["n"] == 9
    assert worse["champion"]["test_accuracy"] > worse["candidate"]["test_accuracy"]
    assert str(tracking.get_version_by_alias(name, "champion").version) == first["version"]
    challenger = tracking.get_version_by_alias(name, "challenger")
    assert str(challenger.version) == worse["version"] != first["version"]
    assert challenger.tags["reason"] == worse["reason"]
    assert challenger.tags["backbone"] == "Constant"
    assert challenger.description.startswith("Kept as challenger: Constant")
    assert challenger.description.endswith(f"champion v{first['version']} stays.")

    again = _register(project, ["StripeNet"], model_name=name)
    assert again["decision"] == "rejected" and "already the champion" in again["reason"]
    assert str(tracking.get_version_by_alias(name, "champion").version) == first["version"]


def test_a_better_candidate_needs_a_gain_shown_beyond_min_improvement(project):
    assert _register(project, ["Constant"], model_name="margin")["decision"] == "promoted"
    small = _register(project, ["StripeNet"], model_name="margin", min_improvement=0.9)
    assert small["decision"] == "challenger" and "min_improvement=0.9" in small["reason"]
    test = small["paired_test"]
    assert test["difference"] > 0.5 and 0 < test["lower_bound"] < 0.9
    enough = _register(project, ["StripeNet"], model_name="margin", min_improvement=0.2)
    assert enough["decision"] == "promoted" and "promoted" in enough["reason"]
    assert enough["paired_test"]["lower_bound"] > 0.2
    assert str(tracking.get_version_by_alias("margin", "champion").version) == enough["version"]
    assert tracking.get_version_by_alias("margin", "challenger") is None


def test_a_reseeded_retrain_on_unchanged_data_is_not_promoted_on_noise(project):
    from bakeoff.evaluate.stage import evaluate

    root, params, raw, split = project
    # The same recipe and data, another seed: a new run whose test accuracy may differ by
    # an image or two, which no paired test takes for a gain.
    make_trained("Reseeded", params, raw, split, root / "models", "good", seed=1)
    evaluate(
        "Reseeded",
        split_dir=split,
        image_root=raw,
        model_dir=root / "models" / "Reseeded",
        metrics_path=root / "metrics" / "Reseeded.json",
        plots_dir=root / "plots" / "Reseeded",
        cache_dir=root / "cache",
        root=root,
        **params_kwargs(params, "Reseeded")["evaluate"],
    )
    first = _register(project, ["StripeNet"], model_name="reseed")
    assert first["decision"] == "promoted" and first["paired_test"] is None
    again = _register(project, ["Reseeded"], model_name="reseed")
    assert (again["decision"], again["backbone"]) == ("challenger", "Reseeded")
    test = again["paired_test"]
    assert test["n"] == 9 and test["confidence"] == 0.95 and test["lower_bound"] <= 0
    assert {"difference", "interval", "mcnemar_p", "discordant"} <= test.keys()
    assert f"gain {test['difference']:+.4f}" in again["reason"]
    assert str(tracking.get_version_by_alias("reseed", "champion").version) == first["version"]
    assert str(tracking.get_version_by_alias("reseed", "challenger").version) == again["version"]


def test_failed_and_nan_runs_are_never_registered(project):
    result = _register(
        project, ["VGG16", "EfficientNetB0", "Stale", "SimpleCNN"], model_name="safe"
    )
    assert (result["decision"], result["backbone"]) == ("promoted", "SimpleCNN")  # real train()
    assert "FAILED" in result["not_eligible"]["VGG16"]
    assert "not finite" in result["not_eligible"]["EfficientNetB0"]
    assert "bakeoff evaluate Stale" in result["not_eligible"]["Stale"]

    none = _register(project, ["VGG16", "EfficientNetB0"], model_name="nothing")
    assert none["decision"] == "none" and none["version"] is None
    assert "VGG16" in none["reason"] and "EfficientNetB0" in none["reason"]
    assert tracking.get_version_by_alias("nothing", "champion") is None


def test_new_classes_make_the_champion_incomparable(project, tmp_path):
    root, params, raw, split = project
    first = _register(project, ["StripeNet"], model_name="classes")
    assert first["decision"] == "promoted"
    renamed = shutil.copytree(split, tmp_path / "split")
    (renamed / "classes.json").write_text(json.dumps(["cats", "dogs", "fish"]))
    out = tmp_path / "register.json"
    p = dataclasses.replace(
        params, register=dataclasses.replace(params.register, model_name="classes")
    )
    result = register(
        p.register, ["Constant"], root / "models", root / "metrics", renamed, raw, out,
        seed=p.seed, bootstrap=p.bootstrap, budgets=p.budgets, tracking_params=p.tracking,
        cache_dir=root / "cache", root=root,
    ).report  # fmt: skip
    assert result["decision"] == "promoted" and "other classes" in result["reason"]
    assert str(tracking.get_version_by_alias("classes", "champion").version) == result["version"]
    assert (
        tracking.version_for_uri(f"models:/classes/{first['version']}").tags["superseded_by"]
        == result["version"]
    )


def test_budgets_filter_candidates(project):
    root = project[0]
    fast = json.loads((root / "metrics" / "Constant.json").read_text())["latency_ms_b1"]
    budgets = {"fast": Budget(max_latency_ms=fast / 1e6), "small": Budget(max_size_mb=1e-6)}
    result = _register(project, ["StripeNet"], model_name="budget", budget="fast", budgets=budgets)
    assert result["decision"] == "none"
    assert "latency" in result["not_eligible"]["StripeNet"]
    assert "(budget fast)" in result["not_eligible"]["StripeNet"]
    result = _register(project, ["StripeNet"], model_name="budget", budget="small", budgets=budgets)
    assert result["decision"] == "none" and "MB" in result["reason"]
    assert tracking.get_version_by_alias("budget", "champion") is None


def _unreadable(monkeypatch, method: str):
    """The store answers `method` with a 503 (a server whose database restarts)."""
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException
    from mlflow.protos.databricks_pb2 import TEMPORARILY_UNAVAILABLE

    from bakeoff.tracking import outage

    def fail(self, *args, **kwargs):
        raise MlflowException("API request failed: 503", error_code=TEMPORARILY_UNAVAILABLE)

    monkeypatch.setattr(outage, "BACKOFF", (0.05,))
    monkeypatch.setattr(MlflowClient, method, fail)


@pytest.mark.parametrize(
    ("method", "what"),
    [("get_model_version_by_alias", "champion"), ("get_model_version", "classes")],
)
def test_a_failed_registry_read_promotes_nothing(project, monkeypatch, method, what):
    """A champion or its class names that could not be read is not "no champion" nor
    "other classes": register fails naming the server, and no version is registered."""
    from mlflow import MlflowClient

    root, params, raw, split = project
    name = f"unreadable-{what}"
    first = _register(project, ["Constant"], model_name=name)
    assert first["decision"] == "promoted"
    _unreadable(monkeypatch, method)
    short = dataclasses.replace(
        params,
        tracking=dataclasses.replace(params.tracking, outage_timeout=0.5),
        register=dataclasses.replace(params.register, model_name=name),
    )
    with pytest.raises(tracking.TrackingUnavailable, match="MLflow tracking server sqlite:///"):
        register(short.register, ["StripeNet"], root / "models", root / "metrics", split, raw,
                 root / "reports" / f"{name}.json", seed=short.seed,
                 bootstrap=short.bootstrap, budgets=short.budgets,
                 tracking_params=short.tracking, cache_dir=root / "cache", root=root)  # fmt: skip
    monkeypatch.undo()
    versions = MlflowClient(tracking.tracking_uri()).search_model_versions(f"name = '{name}'")
    assert [v.version for v in versions] == [int(first["version"])]
    assert str(tracking.get_version_by_alias(name, "champion").version) == first["version"]


def test_a_rerun_reuses_the_version_of_the_same_run(project):
    """A register killed after registering the version, before moving the alias: the
    rerun finds that version instead of registering the run's model twice."""
    from mlflow import MlflowClient

    root = project[0]
    name = "rerun"
    train = json.loads((root / "models" / "StripeNet" / "train.json").read_text())
    crashed = tracking.register_version(train["model_uri"], name, {"run_id": train["run_id"]})
    result = _register(project, ["StripeNet"], model_name=name)
    assert result["decision"] == "promoted" and result["version"] == crashed
    versions = MlflowClient(tracking.tracking_uri()).search_model_versions(f"name = '{name}'")
    assert len(versions) == 1 and versions[0].tags["decision"] == "promoted"
