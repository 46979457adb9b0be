"""Stage `evaluate` on a tiny trained model: the metrics file, confusion data, MLflow."""

from __future__ import annotations

import csv
import json
import math
import shutil

import pytest

from bakeoff import tracking
from bakeoff.config.wiring import params_kwargs
from bakeoff.errors import BakeoffError
from tests.model.tiny_models import shared_project, shrunk_params


@pytest.fixture(scope="module")
def evaluated(tmp_path_factory):
    """The shared project's StripeNet, evaluated: (root, metrics)."""
    with pytest.MonkeyPatch.context() as mp:
        root = shared_project(tmp_path_factory, mp)[0]
        yield root, json.loads((root / "metrics" / "StripeNet.json").read_text())


def test_metrics_file_has_every_field(evaluated):
    root, metrics = evaluated
    for key in ("test_accuracy", "test_macro_f1", "val_accuracy", "val_macro_f1", "size_mb",
                "latency_ms_b1", "latency_ms_b32", "throughput_ips", "train_seconds"):  # fmt: skip
        assert math.isfinite(metrics[key]), key
    assert metrics["test_accuracy"] >= 0.9  # the stripes are easy: the model learnt them
    assert metrics["latency_ms_b1"] > 0 and metrics["latency_ms_b32"] > 0
    assert metrics["throughput_ips"] > 0
    assert metrics["params"] > 0 and metrics["image_size"] == 32
    assert set(metrics["per_class"]) == {"dots", "horizontal", "vertical"}
    assert sum(c["support"] for c in metrics["per_class"].values()) == 9
    assert set(metrics["per_class"]["dots"]) == {"precision", "recall", "f1", "support"}
    size = (root / "models" / "StripeNet" / "model.keras").stat().st_size
    assert metrics["size_mb"] == pytest.approx(size / 1e6)


def test_confusion_has_one_row_per_test_image(evaluated):
    root, result = evaluated
    with open(root / "plots" / "StripeNet" / "confusion.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    with open(root / "split" / "test.csv", newline="") as fh:
        test = list(csv.DictReader(fh))
    assert [r["actual"] for r in rows] == [t["label"] for t in test]
    correct = sum(r["actual"] == r["predicted"] for r in rows)
    assert correct / len(rows) == pytest.approx(result["test_accuracy"])
    assert (root / "plots" / "StripeNet" / "confusion.png").stat().st_size > 0


def test_predictions_name_each_test_image_with_its_confidence(evaluated):
    """plots/<b>/predictions.csv: what the report's mistake thumbnails are drawn from."""
    root = evaluated[0]
    with open(root / "plots" / "StripeNet" / "predictions.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    with open(root / "plots" / "StripeNet" / "confusion.csv", newline="") as fh:
        confusion = list(csv.DictReader(fh))
    with open(root / "split" / "test.csv", newline="") as fh:
        test = list(csv.DictReader(fh))
    assert [r["path"] for r in rows] == [t["path"] for t in test]
    assert [(r["actual"], r["predicted"]) for r in rows] == [
        (c["actual"], c["predicted"]) for c in confusion
    ]
    for r in rows:
        confidence, p_actual = float(r["confidence"]), float(r["p_actual"])
        assert 1 / 3 <= confidence <= 1 and 0 <= p_actual <= confidence
        assert (p_actual == confidence) == (r["actual"] == r["predicted"])


def test_numbers_are_on_the_finished_mlflow_run(evaluated):
    from mlflow import MlflowClient

    _, result = evaluated
    info = tracking.run_info(result["run_id"])
    assert info["status"] == "FINISHED"
    # Rounded to what the data supports: the runs table shows no float noise.
    assert info["metrics"]["test_accuracy"] == round(result["test_accuracy"], 4)
    # The comparison's numbers only: per-class F1 is a table, one seed has no spread.
    assert not any(k.startswith("test_f1") for k in info["metrics"])
    assert "test_accuracy_std" not in info["metrics"] and "n_seeds" not in info["metrics"]
    # The interval is the report's, at report.confidence: evaluate records no interval.
    assert "test_accuracy_interval" not in result and "test_acc_lo" not in info["metrics"]
    assert info["metrics"]["latency_ms_b1"] == round(result["latency_ms_b1"], 2)
    files = {a.path for a in MlflowClient().list_artifacts(result["run_id"], "evaluation")}
    assert {"evaluation/confusion.png", "evaluation/per_class.json"} <= files
    table = MlflowClient().load_table(
        MlflowClient().get_run(result["run_id"]).info.experiment_id,
        "evaluation/per_class.json", run_ids=[result["run_id"]],
    )  # fmt: skip
    assert table.set_index("class")["f1"]["dots"] == round(result["per_class"]["dots"]["f1"], 4)
    model_id = result["model_uri"].removeprefix("models:/")
    on_model = {m.key: m.value for m in MlflowClient().get_logged_model(model_id).metrics}
    assert on_model["test_accuracy"] == round(result["test_accuracy"], 4)


def test_real_training_run_gets_the_evaluation_too(evaluated):
    root = evaluated[0]
    metrics = json.loads((root / "metrics" / "SimpleCNN.json").read_text())
    train = json.loads((root / "models" / "SimpleCNN" / "train.json").read_text())
    assert metrics["run_id"] == train["run_id"] and metrics["image_size"] == train["image_size"]
    info = tracking.run_info(train["run_id"])
    assert info["status"] == "FINISHED"
    assert {"loss", "val_accuracy", "learning_rate", "test_accuracy"} <= set(info["metrics"])
    assert info["metrics"]["test_accuracy"] == round(metrics["test_accuracy"], 4)


def test_missing_model_says_to_train(tmp_path, params):
    from bakeoff.evaluate.stage import evaluate

    with pytest.raises(BakeoffError, match="bakeoff train MobileNet"):
        evaluate(
            "MobileNet",
            split_dir=tmp_path,
            image_root=tmp_path,
            model_dir=tmp_path / "models" / "MobileNet",
            metrics_path=tmp_path / "m.json",
            plots_dir=tmp_path / "plots",
            cache_dir=tmp_path / "cache",
            root=tmp_path,
            **params_kwargs(params, "MobileNet")["evaluate"],
        )


def test_a_training_run_missing_from_the_store_fails_naming_run_and_store(evaluated, tmp_path):
    """A model whose run is not in the store (models/ copied, store moved) is an error, not
    metrics that only metrics/<b>.json would ever see."""
    from bakeoff.evaluate.stage import evaluate

    root = evaluated[0]
    params = shrunk_params()
    model_dir = shutil.copytree(root / "models" / "StripeNet", tmp_path / "models" / "StripeNet")
    info = json.loads((model_dir / "train.json").read_text())
    (model_dir / "train.json").write_text(json.dumps(info | {"run_id": "f" * 32}))
    with pytest.raises(BakeoffError) as err:
        evaluate(
            "StripeNet",
            split_dir=root / "split",
            image_root=root / "raw",
            model_dir=model_dir,
            metrics_path=tmp_path / "metrics" / "StripeNet.json",
            plots_dir=tmp_path / "plots",
            cache_dir=root / "cache",
            root=root,
            **params_kwargs(params, "StripeNet")["evaluate"],
        )
    assert "f" * 32 in str(err.value)
    assert str(root / "mlruns" / "mlflow.db") in str(err.value)
    assert not (tmp_path / "metrics").exists(), "no metrics file for an untracked evaluation"


def test_diverged_model_scores_nan_not_a_lucky_argmax():
    import numpy as np

    from bakeoff.model.inference import scores

    proba = np.full((3, 3), np.nan)
    result = scores(np.array([0, 0, 0]), proba, ["a", "b", "c"])  # argmax of NaN is 0
    assert math.isnan(result["accuracy"]) and math.isnan(result["macro_f1"])
