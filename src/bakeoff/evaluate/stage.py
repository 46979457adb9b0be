"""Stage `evaluate`: accuracy, per-class scores, confusion matrix, size and latency of one model.

The numbers go to metrics/<backbone>.json (a DVC metric) and to the backbone's MLflow run,
so the MLflow UI and `dvc metrics show` tell the same story.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from bakeoff import tracking
from bakeoff.config.params import EvaluateParams, TrackingParams, TrainParams
from bakeoff.errors import BakeoffError
from bakeoff.evaluate.seeds import seed_scores
from bakeoff.model.inference import measure_latency, predict_proba, read_train_info, scores

if TYPE_CHECKING:
    from bakeoff.data.pixels import PixelSplit


@dataclass(frozen=True)
class Evaluation:
    """What `evaluate` wrote: the metrics (as in metrics/<backbone>.json) and the file."""

    metrics: dict[str, Any]
    path: Path

    def __str__(self) -> str:
        m = self.metrics
        return (
            f"{m['backbone']}: test accuracy {m['test_accuracy']:.4f}, macro-F1 "
            f"{m['test_macro_f1']:.4f}, val accuracy {m['val_accuracy']:.4f}, "
            f"{m['latency_ms_b1']:.2f} ms/image at batch 1, {m['size_mb']:.1f} MB -> {self.path}"
        )


def evaluate(
    backbone: str,
    params: EvaluateParams,
    split_dir: Path,
    image_root: Path,
    model_dir: Path,
    metrics_path: Path,
    plots_dir: Path,
    *,
    train: TrainParams,
    trials: int,
    seed: int,
    tracking_params: TrackingParams,
    cache_dir: Path,
    root: Path,
) -> Evaluation:
    """Evaluate one trained backbone on the val and test splits.

    The accuracy intervals are the report's (at `report.confidence`): this stage records
    the per-image results they come from (predictions.csv, oof.csv).

    Args:
        backbone: The backbone name.
        params: The evaluate section (latency timing, cross-validation folds).
        split_dir: data/split (manifests and classes.json).
        image_root: data/raw (the manifest paths are relative to it).
        model_dir: models/<backbone> (model.keras + train.json).
        metrics_path: metrics/<backbone>.json to write.
        plots_dir: plots/<backbone> (confusion.csv and confusion.png).
        train: The train section (this backbone's overrides are applied): the recipe the
            model was trained with, which its cross-validated heads follow.
        trials: tune.trials, each cross-validation fold's tuning budget.
        seed: The top-level `seed`: of the cross-validation folds.
        tracking_params: The tracking section (the MLflow store).
        cache_dir: The decode and feature caches, shared with train.
        root: The project root (MLflow store).

    Returns:
        The metrics and the path they were written to.
    """
    from bakeoff.data.pixels import split_pixels
    from bakeoff.model.loading import load_trained

    info = read_train_info(model_dir)
    tracking.configure(tracking_params, root)
    _check_run(backbone, info.get("run_id"))  # before any output is written
    model = load_trained(Path(model_dir) / "model.keras")
    size = int(info.get("image_size") or model.input_shape[1])
    test_px = split_pixels(split_dir, "test", image_root, size, cache_dir)
    val_px = split_pixels(split_dir, "val", image_root, size, cache_dir)
    classes, y_test, y_val = test_px.classes, test_px.labels, val_px.labels
    if info.get("classes") and list(info["classes"]) != list(classes):
        raise BakeoffError(
            f"{backbone} was trained on classes {info['classes']} but the split has {classes}: "
            f"re-run `bakeoff train {backbone}`"
        )
    from bakeoff.evaluate.frozen import frozen_evaluation, head_proba

    where = {"split_dir": split_dir, "image_root": image_root, "cache_dir": cache_dir,
             "oof_path": Path(plots_dir) / "oof.csv"}  # fmt: skip
    # A frozen base + head: the head on the cached features (the base ran once per image).
    recipe = train.for_backbone(backbone)
    cv_settings = (params.cv_folds, trials, seed)
    cached, cv = frozen_evaluation(model, backbone, recipe, cv_settings, info, where)

    def proba(m: Any, split: str, pixels: PixelSplit) -> np.ndarray:
        return head_proba(m, cached[split]) if cached else predict_proba(m, pixels)

    test_proba = proba(model, "test", test_px)
    test = scores(y_test, test_proba, classes)
    val = scores(y_val, proba(model, "val", val_px), classes)
    model_file = Path(model_dir) / "model.keras"
    metrics = {
        "backbone": backbone,
        "test_accuracy": test["accuracy"],
        "test_macro_f1": test["macro_f1"],
        "val_accuracy": val["accuracy"],
        "val_macro_f1": val["macro_f1"],
        "per_class": test["per_class"],
        "params": int(model.count_params()),
        "size_mb": model_file.stat().st_size / 1e6,
        **measure_latency(model, test_px.rows().read([0]), params.latency_warmup,
                          params.latency_repeats),
        "train_seconds": info.get("train_seconds"),
        "run_id": info.get("run_id"),
        "model_uri": info.get("model_uri"),
        "image_size": size,
        "status": info.get("status"),
        "data_version": info.get("data_version"),
        "n_test": len(y_test),
        **cv,
    }  # fmt: skip
    splits = {"test": test_px, "val": val_px}
    metrics |= seed_scores(info, Path(model_dir), metrics, splits, proba)
    files = _write_outputs(metrics, y_test, test["pred"], classes, Path(metrics_path), plots_dir)
    files.append(_write_predictions(split_dir, Path(plots_dir), y_test, test_proba, classes))
    _log_to_run(metrics, files)
    return Evaluation(metrics, Path(metrics_path))


def _write_outputs(
    metrics: dict[str, Any],
    y: np.ndarray,
    pred: np.ndarray,
    classes: list[str],
    metrics_path: Path,
    plots_dir: Path,
) -> list[Path]:
    """metrics/<b>.json, plots/<b>/confusion.{csv,png}; returns the files written."""
    from sklearn.metrics import confusion_matrix

    from bakeoff.plots import plot_confusion

    plots_dir = Path(plots_dir)
    plots_dir.mkdir(parents=True, exist_ok=True)
    _write_confusion_csv(plots_dir / "confusion.csv", y, pred, classes)
    cm = confusion_matrix(y, pred, labels=list(range(len(classes))))
    title = f"{metrics['backbone']}: test confusion"
    plot_confusion(cm, classes, plots_dir / "confusion.png", title)
    metrics_path.parent.mkdir(parents=True, exist_ok=True)
    metrics_path.write_text(json.dumps(metrics, indent=2) + "\n")
    files = [metrics_path, plots_dir / "confusion.png", plots_dir / "confusion.csv"]
    return files + [p for p in [plots_dir / "oof.csv"] if metrics.get("cv_n")]


def _write_predictions(
    split_dir: Path, plots_dir: Path, y: np.ndarray, proba: np.ndarray, classes: list[str]
) -> Path:
    """plots/<b>/predictions.csv: each test image's path, classes and confidence (the
    report shows the mistakes as thumbnails)."""
    from bakeoff.data.dataset import read_manifest
    from bakeoff.evaluate.predictions import write_predictions

    files = [row["path"] for row in read_manifest(split_dir, "test")]
    return write_predictions(plots_dir / "predictions.csv", files, y, proba, classes)


def _write_confusion_csv(path: Path, y: np.ndarray, pred: np.ndarray, classes: list[str]) -> None:
    """One row per test image, class names: DVC's `confusion` plot template reads this."""
    with open(path, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["actual", "predicted"])
        writer.writerows((classes[a], classes[p]) for a, p in zip(y, pred, strict=True))


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _check_run(backbone: str, run_id: str | None) -> None:
    """The training run must be in the store: otherwise the metrics would exist only in
    metrics/<b>.json, unseen by the MLflow UI (the store moved, or models/ was copied)."""
    if not run_id or not tracking.run_exists(run_id):
        raise BakeoffError(
            f"the training run {run_id!r} of {backbone} is not in the MLflow store "
            f"{tracking.tracking_uri()}: point MLFLOW_TRACKING_URI (or tracking.tracking_uri) "
            f"at the store it was trained with, or re-run `bakeoff train {backbone}`"
        )


def _log_to_run(metrics: dict[str, Any], files: list[Path]) -> None:
    """The comparison numbers on the training run (which stays FINISHED or FAILED), rounded
    and under names the runs table shows whole; per-class F1 as a table artifact, since a
    metric per class would bury the comparison in the UI's charts. The accuracy intervals are
    the report's: it logs them on this run at `report.confidence`."""
    run_id = metrics["run_id"]
    skip = ("image_size", "n_test", "train_seconds", "params", "cv_folds", "cv_trials",
            "cv_n", "n_seeds")  # fmt: skip
    if metrics.get("n_seeds", 1) == 1:  # one seed: its mean is test_accuracy, no spread
        skip += ("test_accuracy_mean", "test_accuracy_std")
    numbers = {k: float(v) for k, v in metrics.items() if k not in skip and _is_number(v)}
    numbers["param_count"] = float(metrics["params"])
    tracking.log_metrics(tracking.rounded(numbers), run_id, model_uri=metrics.get("model_uri"))
    per_class = [
        {"class": c, **{k: round(float(v), 4) for k, v in s.items() if _is_number(v)}}
        for c, s in metrics["per_class"].items()
    ]
    tracking.log_table(per_class, "evaluation/per_class.json", run_id)
    tracking.log_artifacts(files, run_id, artifact_path="evaluation")
