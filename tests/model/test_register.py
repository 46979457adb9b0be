"""Stage `register`: promotion never regresses, failed or NaN runs are never registered."""

from __future__ import annotations

import dataclasses
import json
import math
import shutil

import pytest

from bakeoff import tracking
from bakeoff.register import register
from tests.model.tiny_models import shared_project


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


def _register(project, backbones, **register_params):
    root, params, raw, split = project
    params = dataclasses.replace(
        params, register=dataclasses.replace(params.register, **register_params)
    )
    out = root / "reports" / "register.json"
    result = register(params, backbones, root / "models", root / "metrics", split, raw, out)
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

    worse = _register(project, ["Constant"], model_name=name)
    assert worse["decision"] == "challenger"
    assert "does not beat" in worse["reason"]
    assert worse["champion"]["test_accuracy"] > worse["candidate"]["test_accuracy"]
    assert str(tracking.get_version_by_alias(name, "champion").version) == first["version"]
    challenger = tracking.get_version_by_alias(name, "challenger")
    assert str(challenger.version) == worse["version"] != first["version"]
    assert challenger.tags["reason"] == worse["reason"]
    assert challenger.tags["backbone"] == "Constant"

    again = _register(project, ["StripeNet"], model_name=name)
    assert again["decision"] == "rejected" and "already the champion" in again["reason"]
    assert str(tracking.get_version_by_alias(name, "champion").version) == first["version"]


def test_a_better_candidate_needs_min_improvement(project):
    assert _register(project, ["Constant"], model_name="margin")["decision"] == "promoted"
    small = _register(project, ["StripeNet"], model_name="margin", min_improvement=0.9)
    assert small["decision"] == "challenger" and "min_improvement=0.9" in small["reason"]
    enough = _register(project, ["StripeNet"], model_name="margin", min_improvement=0.5)
    assert enough["decision"] == "promoted" and "beats" in enough["reason"]
    assert str(tracking.get_version_by_alias("margin", "champion").version) == enough["version"]
    assert tracking.get_version_by_alias("margin", "challenger") is None


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
    result = register(p, ["Constant"], root / "models", root / "metrics", renamed, raw, out).report
    assert result["decision"] == "promoted" and "other classes" in result["reason"]
    assert str(tracking.get_version_by_alias("classes", "champion").version) == result["version"]
    assert (
        tracking.version_for_uri(f"models:/classes/{first['version']}").tags["superseded_by"]
        == result["version"]
    )


def test_budgets_filter_candidates(project):
    root = project[0]
    fast = json.loads((root / "metrics" / "Constant.json").read_text())["latency_ms_b1"]
    result = _register(project, ["StripeNet"], model_name="budget", max_latency_ms=fast / 1e6)
    assert result["decision"] == "none"
    assert "latency" in result["not_eligible"]["StripeNet"]
    result = _register(project, ["StripeNet"], model_name="budget", max_size_mb=1e-6)
    assert result["decision"] == "none" and "MB" in result["reason"]
    assert tracking.get_version_by_alias("budget", "champion") is None
