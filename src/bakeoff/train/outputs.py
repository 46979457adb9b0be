"""What a finished training run leaves: model.keras, train.json, history files, and the
same in its MLflow run."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bakeoff import tracking
from bakeoff.config.params import TrainParams
from bakeoff.train.history import best_row, write_history
from bakeoff.train.trained import Trained


@dataclass(frozen=True)
class TrainResult:
    """What `bakeoff train` reports: the best epoch of a finished run."""

    backbone: str
    run_id: str
    val_accuracy: float
    val_loss: float
    best_epoch: int
    epochs_run: int
    train_seconds: float
    model_path: Path

    def __str__(self) -> str:
        return (
            f"{self.backbone}: val_accuracy {self.val_accuracy:.4f} (epoch {self.best_epoch}, "
            f"{self.epochs_run} epochs, {self.train_seconds:.0f} s) -> {self.model_path} "
            f"[run {self.run_id}]"
        )


@dataclass(frozen=True)
class RunRecord:
    """One training run: its MLflow run id and tags, and where it writes its outputs."""

    backbone: str
    run_id: str
    out_dir: Path
    plots_dir: Path
    state_dir: Path
    tags: dict[str, str]
    model_name: str = ""  # the logged model's name (default: the backbone)


def write_outputs(
    trained: Trained, run: RunRecord, recipe: TrainParams, classes: list[str], example
) -> TrainResult:
    """models/<b>/ (model.keras, train.json), plots/<b>/ history files, all logged to the run."""
    model, history, seconds, tuning = (
        trained.model,
        trained.history,
        trained.seconds,
        trained.tuning,
    )
    backbone, run_id, tags = run.backbone, run.run_id, run.tags
    out_dir, plots_dir, state_dir = run.out_dir, run.plots_dir, run.state_dir
    best = best_row(history, state_dir)
    plots_dir.mkdir(parents=True, exist_ok=True)
    out_dir.mkdir(parents=True, exist_ok=True)
    csv_path, png_path = write_history(history, plots_dir, title=backbone)
    model_path = out_dir / "model.keras"
    model.save(model_path)  # Trained.of made it the inference model (no optimizer state)
    artifacts = [csv_path, png_path] + [p for p in [state_dir / "best.keras"] if p.is_file()]
    tracking.log_artifacts(artifacts, run_id, artifact_path="training")
    name = run.model_name or backbone
    model_uri = tracking.log_keras_model(
        model, example.astype(np.float32), run_id, classes=classes, name=name
    )
    _log_numbers(run_id, best, seconds, tuning)
    summary = {
        "backbone": backbone,
        "run_id": run_id,
        "status": "FINISHED",
        "image_size": int(model.inputs[0].shape[1]),
        "batch_size": recipe.batch_size,
        "epochs_run": len(history),
        "best_epoch": int(best["epoch"]),
        "val_accuracy": float(best["val_accuracy"]),
        "val_loss": float(best["val_loss"]),
        "train_seconds": round(seconds, 2),
        "weights": recipe.weights,
        "source": _source(backbone),
        "weights_sha256": tags["weights_sha256"],
        "seed": recipe.seed,
        "tuning": tuning,
        "params": dataclasses.asdict(recipe),
        "classes": classes,
        "model_uri": model_uri,
        "data_version": tags["data_version"],
    }
    (out_dir / "train.json").write_text(json.dumps(summary, indent=2, default=str) + "\n")
    keys = ("val_accuracy", "val_loss", "best_epoch", "epochs_run", "train_seconds")
    return TrainResult(backbone, run_id, *(summary[k] for k in keys), model_path)


def _log_numbers(run_id: str, best: dict, seconds: float, tuning: dict) -> None:
    """The best epoch's numbers and the tuning outcome on the run."""
    tuned = {
        f"{k}_val_accuracy": tuning[f"{k}_val_accuracy"]
        for k in ("default", "tuned")
        if f"{k}_val_accuracy" in tuning
    }
    numbers = {
        "best_val_accuracy": best["val_accuracy"],
        "best_epoch": best["epoch"],
        "train_seconds": seconds,
    }
    tracking.log_metrics(tracking.rounded(numbers | tuned), run_id)
    tracking.set_tags({"tuning": tuning["status"]}, run_id)


def _source(backbone: str) -> str | None:
    """Where a keras-hub backbone comes from (a Kaggle handle, hf://timm/..., a folder)."""
    from bakeoff.backbone.registry import get_backbone

    hub = get_backbone(backbone).hub
    return hub.handle if hub is not None else None
