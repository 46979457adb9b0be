"""One seed's training run: the recipe's phases, tracked in MLflow, resumable after a crash.

Phase 1 trains the head (frozen pretrained base; on cached features, tuned) or everything
(weights none); optional phase 2 unfreezes the top of the base. State that must survive
`kill -9` (the MLflow run id, Keras's BackupAndRestore backups, the per-epoch history, the
best checkpoint) lives in `state_dir`, which is cleared once the model is written.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import shutil
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from bakeoff import tracking
from bakeoff.config import Params, TrainParams
from bakeoff.errors import BakeoffError
from bakeoff.lineage import file_sha256
from bakeoff.train.head_phase import (
    Builder,
    cached_head,
    load_phase,
    train_head,
    tuning_off_reason,
)
from bakeoff.train.inputs import TrainInputs
from bakeoff.train.model import base_layer, build_model
from bakeoff.train.phases import Phase, best_row, fit_phase, read_history, write_history
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


def _fingerprint(backbone: str, recipe: TrainParams, trials: int, version: str) -> str:
    """What a resumed run must share with the crashed one (else it starts afresh)."""
    text = json.dumps(
        [backbone, dataclasses.asdict(recipe), trials, version], sort_keys=True, default=str
    )
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _resume_state(state_dir: Path, fingerprint: str) -> str | None:
    """The run id of a crashed run with the same inputs; stale state is removed."""
    run_file = state_dir / "run.json"
    if run_file.is_file():
        saved = json.loads(run_file.read_text())
        if saved.get("fingerprint") == fingerprint:
            return saved.get("run_id")
    shutil.rmtree(state_dir, ignore_errors=True)
    return None


def _unfreeze_top(model: keras.Model, n_layers: int) -> None:
    """Make the top `n_layers` of the base trainable; BatchNorm stays frozen (inference)."""
    base = base_layer(model)
    base.trainable = True
    for i, layer in enumerate(base.layers):
        top = i >= len(base.layers) - n_layers
        layer.trainable = top and not isinstance(layer, keras.layers.BatchNormalization)


def _run_phases(
    build: Builder,
    recipe: TrainParams,
    trials: int,
    data: TrainInputs,
    state_dir: Path,
    run_id: str,
) -> tuple[keras.Model, list[dict], dict]:
    """Phase 1 (the head on cached features, or Keras `fit`), then the optional phase 2.

    Returns:
        (the model at its best epoch, the history of both phases, the tuning summary).
    """
    frozen = recipe.weights != "none"
    phase1_done = state_dir / "phase1.weights.h5"
    tuning = {"status": "off", "reason": tuning_off_reason(recipe, trials)}
    if phase1_done.is_file():  # phase 2 crashed: phase 1's result is kept
        if cached_head(recipe):
            model = load_phase(build, state_dir)
            tuning = json.loads((state_dir / "tune.json").read_text())
        else:
            model = build(0.0)
            model.load_weights(phase1_done)
    elif cached_head(recipe):
        model, tuning = train_head(build, recipe, trials, data, state_dir, run_id)
        model.save_weights(phase1_done)
    else:
        print(f"head tuning off: {tuning['reason']}")
        model = build(0.0)
        phase1 = Phase(1, recipe.learning_rate, recipe.epochs, 0, recipe.min_epochs)
        fit_phase(model, phase1, recipe, data, state_dir)
        model.save_weights(phase1_done)
    history = read_history(state_dir)
    if frozen and recipe.fine_tune_layers > 0:
        _unfreeze_top(model, recipe.fine_tune_layers)
        done = len(history)
        phase2 = Phase(
            2, recipe.fine_tune_learning_rate, done + recipe.fine_tune_epochs, done, done
        )
        fit_phase(model, phase2, recipe, data, state_dir)
        history = read_history(state_dir)
    best = state_dir / "best.keras"
    if best.is_file():  # the best epoch over both phases and any restarts
        with warnings.catch_warnings():
            # It may hold another phase's optimizer state (or none): only weights matter.
            warnings.simplefilter("ignore", UserWarning)
            model.load_weights(best)
    return model, history, tuning


@dataclass(frozen=True)
class SeedInputs:
    """What every seed of one backbone trains on."""

    backbone: str
    size: int
    weights_file: Path | None
    version: str
    data: TrainInputs
    classes: list[str]
    root: Path  # the project root: MLflow store, git commit


def train_seed(inputs: SeedInputs, params: Params, where: RunPaths) -> TrainResult:
    """One seed's resumable, tracked training; writes where.out_dir (model.keras, train.json)."""
    backbone, data, classes = inputs.backbone, inputs.data, inputs.classes
    recipe = params.for_backbone(backbone)
    state_dir = where.state_dir
    fingerprint = _fingerprint(backbone, recipe, params.tune.trials, inputs.version)
    run_id = _resume_state(state_dir, fingerprint)
    state_dir.mkdir(parents=True, exist_ok=True)

    keras.utils.set_random_seed(recipe.seed)
    tf.config.experimental.enable_op_determinism()
    tags = {
        "data_version": inputs.version,
        "dvc_stage": f"train@{backbone}",
        "seed": str(recipe.seed),
        "weights": recipe.weights,
        "weights_sha256": file_sha256(inputs.weights_file) if inputs.weights_file else "none",
    }

    def build(l2: float) -> keras.Model:
        n = len(classes)
        return build_model(backbone, n, inputs.size, recipe.weights, recipe.bn_momentum, l2)

    journal = state_dir / "journal.jsonl"
    try:
        with tracking.training_run(params, backbone, run_id, tags, inputs.root, journal) as run_id:
            (state_dir / "run.json").write_text(
                json.dumps({"run_id": run_id, "fingerprint": fingerprint})
            )
            trained = Trained.load(state_dir, run_id)
            if trained is None:
                tracking.log_split(run_id, data.split_dir, inputs.version)
                start = time.perf_counter()
                model, history, tuning = _run_phases(
                    build, recipe, params.tune.trials, data, state_dir, run_id
                )
                trained = Trained.of(model, history, tuning, time.perf_counter() - start)
                trained.save(state_dir)
            run = dataclasses.replace(where, run_id=run_id, tags=tags)
            example = data.example()
            result = _write_outputs(trained, run, recipe, classes, example)
    except tracking.TrackingUnavailable as exc:
        # Trained (or training) while the server stayed away: everything stays in state_dir
        # (journal, model, history), and the rerun uploads it to the same run, untrained.
        raise tracking.TrackingUnavailable(
            f"{exc}; the training is kept in {state_dir}: rerun `bakeoff train {backbone}` "
            "once the server answers, to upload it to the same run without training again"
        ) from None
    except BakeoffError:
        # A diverged run would diverge again from its backup: the next attempt starts afresh.
        shutil.rmtree(state_dir, ignore_errors=True)
        raise
    shutil.rmtree(state_dir, ignore_errors=True)
    return result


@dataclass(frozen=True)
class RunPaths:
    """Where one training run writes, and the tags it carries."""

    backbone: str
    run_id: str
    out_dir: Path
    plots_dir: Path
    state_dir: Path
    tags: dict[str, str]


def _write_outputs(
    trained: Trained, run: RunPaths, recipe: TrainParams, classes, example
) -> TrainResult:
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
    model.save(model_path)
    artifacts = [csv_path, png_path] + [p for p in [state_dir / "best.keras"] if p.is_file()]
    tracking.log_artifacts(artifacts, run_id, artifact_path="training")
    model_uri = tracking.log_keras_model(model, example.astype(np.float32), run_id, classes=classes)
    tracking.log_metrics(
        {
            "best_val_accuracy": best["val_accuracy"],
            "best_epoch": best["epoch"],
            "train_seconds": seconds,
        }
        | {
            f"{k}_val_accuracy": tuning[f"{k}_val_accuracy"]
            for k in ("default", "tuned")
            if f"{k}_val_accuracy" in tuning
        },
        run_id,
    )
    tracking.set_tags({"tuning": tuning["status"]}, run_id)
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
        "weights_sha256": tags["weights_sha256"],
        "seed": recipe.seed,
        "tuning": tuning,
        "params": dataclasses.asdict(recipe),
        "classes": classes,
        "model_uri": model_uri,
        "data_version": tags["data_version"],
    }
    (out_dir / "train.json").write_text(json.dumps(summary, indent=2, default=str) + "\n")
    return TrainResult(
        backbone,
        run_id,
        summary["val_accuracy"],
        summary["val_loss"],
        summary["best_epoch"],
        summary["epochs_run"],
        summary["train_seconds"],
        model_path,
    )
