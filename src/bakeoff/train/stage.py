"""The train stage: one backbone, the recipe, tracked in MLflow, resumable after a crash.

Phase 1 trains the head (frozen pretrained base) or everything (weights none); optional
phase 2 unfreezes the top of the base. State that must survive `kill -9` (the MLflow run
id, Keras's BackupAndRestore backups, the per-epoch history, the best checkpoint) lives in
`state_dir`, which is cleared once the model is written.
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
from bakeoff.data.dataset import load_split
from bakeoff.errors import BakeoffError
from bakeoff.lineage import data_version, file_sha256
from bakeoff.train.model import base_layer, build_model, get_backbone, resolve_weights
from bakeoff.train.phases import Phase, fit_phase, read_history, write_history


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


def split_data_version(split_dir: Path) -> str:
    """Data version of the accepted manifest next to the split, else of the split manifests."""
    accepted = Path(split_dir).parent / "validated" / "accepted.csv"
    if accepted.is_file():
        return data_version(accepted)
    digest = hashlib.sha256()
    for name in ("classes.json", "train.csv", "val.csv", "test.csv"):
        path = Path(split_dir) / name
        if path.is_file():
            digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def _fingerprint(backbone: str, tp: TrainParams, version: str) -> str:
    """What a resumed run must share with the crashed one (else it starts afresh)."""
    text = json.dumps([backbone, dataclasses.asdict(tp), version], sort_keys=True, default=str)
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


def _run_phases(model, tp: TrainParams, data: dict, state_dir: Path) -> list[dict]:
    frozen = tp.weights != "none"
    phase1 = Phase(1, tp.learning_rate, tp.epochs, 0, tp.min_epochs)
    phase1_done = state_dir / "phase1.weights.h5"
    if phase1_done.is_file():  # phase 2 crashed: phase 1's result is kept
        model.load_weights(phase1_done)
    else:
        cache = frozen and tp.cache_features and not tp.augment
        fit_phase(model, phase1, tp, data, state_dir, cache_features=cache)
        model.save_weights(phase1_done)
    history = read_history(state_dir)
    if frozen and tp.fine_tune_layers > 0:
        _unfreeze_top(model, tp.fine_tune_layers)
        done = len(history)
        phase2 = Phase(2, tp.fine_tune_learning_rate, done + tp.fine_tune_epochs, done, done)
        fit_phase(model, phase2, tp, data, state_dir, cache_features=False)
        history = read_history(state_dir)
    best = state_dir / "best.keras"
    if best.is_file():  # the best epoch over both phases and any restarts
        with warnings.catch_warnings():
            # It may hold another phase's optimizer state (or none): only weights matter.
            warnings.simplefilter("ignore", UserWarning)
            model.load_weights(best)
    return history


def train(
    backbone: str,
    params: Params,
    split_dir: Path,
    image_root: Path,
    out_dir: Path,
    state_dir: Path,
    plots_dir: Path | None = None,
) -> TrainResult:
    """Train one backbone with the recipe and write models/<backbone>/.

    Args:
        backbone: A registry name.
        params: All params (the train section with this backbone's overrides applies).
        split_dir: data/split (train/val manifests, classes.json).
        image_root: The folder manifest paths are relative to (data/raw).
        out_dir: models/<backbone>/ (model.keras, train.json).
        state_dir: Resumable state (.bakeoff/train/<backbone>/).
        plots_dir: plots/<backbone>/ (default: next to models/, from out_dir).

    Returns:
        The result of the finished run.

    Raises:
        BakeoffError: Bad params, missing weights or data, or training diverged (NaN).
    """
    tp = params.for_backbone(backbone)
    entry = get_backbone(backbone)
    size = tp.image_size or entry.default_size
    weights_file = resolve_weights(backbone, tp.weights, size)  # fail before loading data
    out_dir, state_dir = Path(out_dir), Path(state_dir)
    plots_dir = Path(plots_dir or out_dir.parent.parent / "plots" / backbone)
    # Stale outputs of an earlier run must never outlive a failed one.
    for stale in ("model.keras", "train.json"):
        (out_dir / stale).unlink(missing_ok=True)
    version = split_data_version(split_dir)
    fingerprint = _fingerprint(backbone, tp, version)
    run_id = _resume_state(state_dir, fingerprint)
    state_dir.mkdir(parents=True, exist_ok=True)

    keras.utils.set_random_seed(tp.seed)
    tf.config.experimental.enable_op_determinism()
    x_tr, y_tr, classes = load_split(split_dir, "train", image_root, size)
    x_va, y_va, _ = load_split(split_dir, "val", image_root, size)
    data = {"train": (x_tr, y_tr), "val": (x_va, y_va), "n_classes": len(classes)}
    tags = {
        "data_version": version,
        "dvc_stage": f"train@{backbone}",
        "weights": tp.weights,
        "weights_sha256": file_sha256(weights_file) if weights_file else "none",
    }
    try:
        with tracking.training_run(params, backbone, run_id, tags) as run_id:
            (state_dir / "run.json").write_text(
                json.dumps({"run_id": run_id, "fingerprint": fingerprint})
            )
            start = time.perf_counter()
            model = build_model(backbone, len(classes), size, tp.weights, tp.bn_momentum)
            history = _run_phases(model, tp, data, state_dir)
            seconds = time.perf_counter() - start
            run = _Run(backbone, run_id, out_dir, plots_dir, state_dir, tags)
            result = _write_outputs(model, run, tp, history, classes, seconds, x_va[:4])
    except BakeoffError:
        # A diverged run would diverge again from its backup: the next attempt starts afresh.
        shutil.rmtree(state_dir, ignore_errors=True)
        raise
    shutil.rmtree(state_dir, ignore_errors=True)
    return result


@dataclass(frozen=True)
class _Run:
    """Where one training run writes, and the tags it carries."""

    backbone: str
    run_id: str
    out_dir: Path
    plots_dir: Path
    state_dir: Path
    tags: dict[str, str]


def _write_outputs(
    model, run: _Run, tp: TrainParams, history, classes, seconds: float, example
) -> TrainResult:
    backbone, run_id, tags = run.backbone, run.run_id, run.tags
    out_dir, plots_dir, state_dir = run.out_dir, run.plots_dir, run.state_dir
    best = max(history, key=lambda row: row["val_accuracy"])
    plots_dir.mkdir(parents=True, exist_ok=True)
    out_dir.mkdir(parents=True, exist_ok=True)
    csv_path, png_path = write_history(history, plots_dir, title=backbone)
    model_path = out_dir / "model.keras"
    # A plain functional copy: no optimizer state, so model.keras is the inference model.
    keras.Model(model.inputs, model.outputs, name=model.name).save(model_path)
    artifacts = [csv_path, png_path] + [p for p in [state_dir / "best.keras"] if p.is_file()]
    tracking.log_artifacts(artifacts, run_id, artifact_path="training")
    model_uri = tracking.log_keras_model(model, example.astype(np.float32), run_id, classes=classes)
    tracking.log_metrics(
        {
            "best_val_accuracy": best["val_accuracy"],
            "best_epoch": best["epoch"],
            "train_seconds": seconds,
        },
        run_id,
    )
    summary = {
        "backbone": backbone,
        "run_id": run_id,
        "status": "FINISHED",
        "image_size": int(model.inputs[0].shape[1]),
        "batch_size": tp.batch_size,
        "epochs_run": len(history),
        "best_epoch": int(best["epoch"]),
        "val_accuracy": float(best["val_accuracy"]),
        "val_loss": float(best["val_loss"]),
        "train_seconds": round(seconds, 2),
        "weights": tp.weights,
        "weights_sha256": tags["weights_sha256"],
        "params": dataclasses.asdict(tp),
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
