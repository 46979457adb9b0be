"""The comparison report's hand-made inputs with known answers, shared by the report tests.

Three backbones over 300 test images: Big is the most accurate; Small is 1 pt below it
(tied), 10x faster and 33x smaller; Bad is the fastest and smallest but clearly worse.
"""

from __future__ import annotations

import csv
import dataclasses
import json
from pathlib import Path

from bakeoff.config.params import Budget, load_params
from tests.conftest import REPO

N_TEST = 300
CLASSES = ["bag", "coat", "shirt"]
# Big is the most accurate; Small is 1 pt below it (tied), 10x faster and 33x smaller;
# Bad is the fastest and smallest but clearly worse.
SPECS = {
    "Big": dict(
        right=range(0, 270),
        latency=50.0,
        b32=20.0,
        size=500.0,
        params=100_000_000,
        seeds=3,
        tuning={"status": "on", "default_val_accuracy": 0.78, "tuned_val_accuracy": 0.8},
    ),
    "Small": dict(
        right=[*range(0, 264), 270, 271, 272],
        latency=5.0,
        b32=1.5,
        size=15.0,
        params=3_500_000,
        seeds=3,
        tuning={"status": "on", "default_val_accuracy": 0.75, "tuned_val_accuracy": 0.8},
    ),
    "Bad": dict(
        right=range(0, 180),
        latency=2.0,
        b32=0.5,
        size=5.0,
        params=250_000,
        tuning={"status": "off", "reason": "train.weights is none"},
    ),
}


def _write(path: Path, rows: list[dict], fields: list[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)


def _image(root: Path, cls: str, i: int) -> str:
    """A small PNG under data/raw; returns its manifest path (relative to data/raw)."""
    from PIL import Image

    path = root / "data" / "raw" / cls / f"{cls}_{i:03d}.png"
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        shade = (60 + 60 * CLASSES.index(cls), 140, 220 - (i % 100))
        Image.new("RGB", (40, 30), shade).save(path)
    return f"{cls}/{path.name}"


def _train_json(name: str, spec: dict, scratch: bool) -> dict:
    """models/<name>/train.json as train writes it: a frozen ImageNet base with a tuned head
    on cached features, or (no tuning, or `scratch`) from scratch."""
    scratch = scratch or spec["tuning"]["status"] == "off"
    recipe = {"weights": "none" if scratch else "imagenet", "epochs": 12, "patience": 4,
              "augment": scratch, "cache_features": True, "head_epochs": 500,
              "head_patience": 10, "fine_tune_layers": 0, "fine_tune_epochs": 5}  # fmt: skip
    return {"backbone": name, "epochs_run": 4, "best_epoch": 3, "classes": CLASSES,
            "tuning": {"status": "off", "reason": "train.weights is none"} if scratch
            else spec["tuning"] | {"trials": 20},
            "weights": recipe["weights"], "image_size": 32 if scratch else 224,
            "params": recipe}  # fmt: skip


def make_inputs(root: Path, scratch: bool = False) -> dict[str, dict]:
    """metrics/, plots/, models/, data/raw/ and reports/register.json for the 3 backbones
    (Big and Small on a frozen ImageNet base, Bad from scratch; all from scratch if `scratch`)."""
    actual = [CLASSES[i % 3] for i in range(N_TEST)]
    files = [_image(root, cls, i) for i, cls in enumerate(actual)]
    all_metrics = {}
    for k, (name, spec) in enumerate(SPECS.items()):
        right = set(spec["right"])
        predicted = [a if i in right else CLASSES[(i + 1) % 3] for i, a in enumerate(actual)]
        _write(
            root / "plots" / name / "confusion.csv",
            [{"actual": a, "predicted": p} for a, p in zip(actual, predicted, strict=True)],
            ["actual", "predicted"],
        )
        # The prediction's confidence is known per image (image i: 0.4 + (i % 50) / 100), so
        # the order of the mistakes is known.
        _write(
            root / "plots" / name / "predictions.csv",
            [
                {
                    "path": f,
                    "actual": a,
                    "predicted": p,
                    "confidence": 0.4 + (i % 50) / 100,
                    "p_actual": 0.1 if a != p else 0.4 + (i % 50) / 100,
                }
                for i, (f, a, p) in enumerate(zip(files, actual, predicted, strict=True))
            ],
            ["path", "actual", "predicted", "confidence", "p_actual"],
        )
        history = [
            dict(
                epoch=e,
                phase=1,
                loss=1 / e,
                accuracy=0.5 + 0.05 * e,
                val_loss=1.2 / e,
                val_accuracy=0.45 + 0.05 * e + 0.01 * k,
                learning_rate=0.001,
            )
            for e in range(1, 5)
        ]
        _write(root / "plots" / name / "history.csv", history, list(history[0]))
        metrics = {
            "backbone": name,
            "test_accuracy": len(right) / N_TEST,
            "test_macro_f1": len(right) / N_TEST - 0.0123,
            "val_accuracy": 0.8,
            "val_macro_f1": 0.79,
            "per_class": {},
            "params": spec["params"],
            "size_mb": spec["size"],
            "latency_ms_b1": spec["latency"],
            "latency_ms_b32": spec["b32"],
            "throughput_ips": 1000 / spec["b32"],
            "train_seconds": 123.456 + k,
            "run_id": f"run{k}",
            "image_size": 32,
            # Big and Small trained with 3 seeds each, Bad with one.
            "n_seeds": spec.get("seeds", 1),
            "test_accuracy_mean": len(right) / N_TEST - 0.005 * (spec.get("seeds", 1) > 1),
            "test_accuracy_std": 0.0125 if spec.get("seeds", 1) > 1 else 0.0,
        }
        (root / "metrics").mkdir(exist_ok=True)
        (root / "metrics" / f"{name}.json").write_text(json.dumps(metrics))
        (root / "models" / name).mkdir(parents=True)
        (root / "models" / name / "train.json").write_text(
            json.dumps(_train_json(name, spec, scratch))
        )
        all_metrics[name] = metrics
    (root / "reports").mkdir()
    (root / "reports" / "register.json").write_text(
        json.dumps(
            {
                "decision": "challenger",
                "reason": "Small is not better than the champion",
                "model_name": "image-classifier",
                "version": "2",
                "backbone": "Small",
                "champion": {"backbone": "Big", "version": "1"},
            }
        )
    )
    (root / "reports" / "export.json").write_text(json.dumps(EXPORT))
    return all_metrics


def _variant(name: str, accuracy: float, recommended: bool, note: str = "") -> dict:
    return {"variant": name, "test_accuracy": accuracy, "accuracy_change": accuracy - 0.8,
            "agreement": 0.95, "size_mb": 1.5, "latency_ms_b1": 0.25, "input_dtype": "float32",
            "recommended": recommended, "note": note}  # fmt: skip


# reports/export.json as the export stage writes it (the champion is Big, version 1).
EXPORT = {
    "backbone": "Big",
    "source": "champion: image-classifier version 1",
    "version": "1",
    "image_size": 32,
    "n_test": N_TEST,
    "threads": 1,
    "max_accuracy_drop": 0.02,
    "keras": {"test_accuracy": 0.8, "size_mb": 6.0},
    "variants": [
        _variant("float32", 0.8, True),
        _variant("float16", 0.7, False, "not recommended: loses 0.1000 test accuracy (...)"),
        _variant("int8", 0.79, True) | {"input_dtype": "uint8"},
    ],
    "pick": "int8",
}


def shrunk_params():
    """The project's params with known budgets and fewer resamples (faster, same logic)."""
    real = load_params(REPO / "params.yaml")
    budgets = {
        "edge": Budget(max_latency_ms=10.0, max_size_mb=20.0),
        "tiny": Budget(max_latency_ms=None, max_size_mb=10.0),
        "server": Budget(max_latency_ms=100.0, max_size_mb=None),
    }
    return dataclasses.replace(real, bootstrap=500, budgets=budgets)


def run_report(params, root: Path, backbones: list[str] | None = None) -> Path:
    """The report stage on the project at `root`, its arguments as the CLI passes them."""
    from bakeoff.config.layout import ProjectPaths
    from bakeoff.config.wiring import stage_kwargs
    from bakeoff.report.stage import report

    kwargs = stage_kwargs(ProjectPaths(root), params=params)["report"]
    return report(**kwargs | {"backbones": backbones or list(SPECS)})


def with_training_runs(params, root: Path, metrics: dict[str, dict]) -> None:
    """Each backbone's metrics point at a real (empty) training run in the store: the report
    logs each backbone's accuracy interval there."""
    import mlflow

    from bakeoff import tracking

    experiment_id = tracking.configure(params.tracking, root)
    client = mlflow.MlflowClient(tracking.tracking_uri())
    for name, m in metrics.items():
        m["run_id"] = client.create_run(experiment_id, run_name=name).info.run_id
        (root / "metrics" / f"{name}.json").write_text(json.dumps(m))
