"""Phase 1 with a frozen pretrained base: features once, then the head tuned and converged.

The base runs once per image; the head then trains on the cached features with
`bakeoff.head.trainer` (early stopping on val loss, best epoch restored, `train.head_epochs`
cap), after `tune.trials` Optuna trials chose its hyper-parameters on the validation split
(`bakeoff.head.tune`). Each trial is an MLflow child run of the backbone's run. The
result is written like a Keras phase (history_phase1.csv, best.keras) so that phase 2,
the history plots and a resumed run read it as they read any phase.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import keras
import numpy as np

from bakeoff import tracking
from bakeoff.backbone.features import Features, cache_off_reason
from bakeoff.config.params import TrainParams
from bakeoff.errors import BakeoffError
from bakeoff.head.trainer import HeadParams, set_head_weights
from bakeoff.head.tune import tune
from bakeoff.train.inputs import TrainInputs
from bakeoff.train.resume import PHASE1_DONE

# build(l2) -> the full model with that head's L2 (fresh base weights from the file).
Builder = Callable[[float], keras.Model]


def tuning_off_reason(recipe: TrainParams, trials: int) -> str | None:
    """Why the head is not tuned for these params, or None when it is."""
    if (off := cache_off_reason(recipe)) is not None:
        return off
    return "tune.trials is 0" if trials <= 0 else None


def extract_features(model: keras.Model, data: TrainInputs) -> Features:
    """What the frozen base gives the head: computed once per image, ever, into the feature
    cache (`bakeoff.backbone.features`), and read from there by every later run."""
    extractor = keras.Model(model.inputs, model.get_layer("head_bn").input)
    return data.features(extractor)


def _log_trial(run_id: str) -> Callable[[dict[str, Any]], None]:
    def log(record: dict[str, Any]) -> None:
        metrics = {k: record[k] for k in ("val_accuracy", "val_loss", "epochs", "seconds")}
        if record["best_epoch"] is not None:
            metrics["best_epoch"] = record["best_epoch"]
        tags = {"tuning_trial": str(record["number"]), "optuna_state": record["state"]}
        tracking.log_child_run(run_id, f"trial-{record['number']}", record["params"], metrics, tags)

    return log


def _write_phase(history: list[dict], state_dir: Path) -> None:
    """history_phase1.csv as Keras's CSVLogger writes it (0-based epochs)."""
    columns = ["epoch", "loss", "accuracy", "val_loss", "val_accuracy", "learning_rate"]
    with open(state_dir / "history_phase1.csv", "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        writer.writerows({**row, "epoch": row["epoch"] - 1} for row in history)


def load_phase(build: Builder, state_dir: Path) -> keras.Model:
    """The model phase 1 finished with (phase 2 crashed and resumes)."""
    selected = HeadParams(**json.loads((state_dir / "tune.json").read_text())["selected"])
    model = build(selected.l2)
    model.load_weights(state_dir / PHASE1_DONE)
    return model


def train_head(
    build: Builder,
    recipe: TrainParams,
    trials: int,
    data: TrainInputs,
    state_dir: Path,
    run_id: str,
) -> tuple[keras.Model, dict[str, Any]]:
    """Tune and train the head on cached features; write phase 1's state files.

    Args:
        build: Builds the full model with a given head L2.
        recipe: This backbone's train params (one seed).
        trials: tune.trials (0: the default head only).
        data: The backbone's inputs (the features come from the feature cache).
        state_dir: Receives history_phase1.csv, tune.json, best.keras, best.json.
        run_id: The backbone's MLflow run (the trials become its child runs).

    Returns:
        (the model with the selected head's best epoch, the tuning summary).

    Raises:
        BakeoffError: The head diverged (NaN) even with the default settings.
    """
    model = build(0.0)
    feats = extract_features(model, data)
    off = tuning_off_reason(recipe, trials)
    result = tune(
        feats.x_train, feats.y_train, feats.x_val, feats.y_val, data.n_classes,
        default=HeadParams(recipe.learning_rate, recipe.batch_size),
        trials=0 if off else trials, seed=recipe.seed, max_epochs=recipe.head_epochs,
        patience=recipe.head_patience, on_trial=_log_trial(run_id),
    )  # fmt: skip
    fit = result.best_fit
    if not np.isfinite(fit.val_loss):
        raise BakeoffError(
            "training diverged (the head's loss became NaN/Inf in phase 1): "
            f"lower the learning rate (now {recipe.learning_rate})"
        )
    if result.best.l2 > 0:  # the Keras model carries the penalty into phase 2
        model = build(result.best.l2)
    set_head_weights(model, fit.weights)
    summary = result.summary() | {"status": "off" if off else "on", "reason": off}
    if off:
        print(f"head tuning off: {off}")
    else:
        print(
            f"head tuning: {summary['trials']} trials ({summary['pruned']} pruned) in "
            f"{summary['seconds']:.1f} s, val accuracy {summary['default_val_accuracy']:.4f} "
            f"(default head) -> {summary['tuned_val_accuracy']:.4f} (selected)"
        )
    history = [row | {"phase": 1} for row in fit.history]
    _write_phase(history, state_dir)
    tracking.log_history(history, run_id)
    (state_dir / "tune.json").write_text(json.dumps(summary, indent=2))
    best = fit.history[fit.best_epoch - 1]
    (state_dir / "best.json").write_text(json.dumps(best))
    model.save(state_dir / "best.keras")
    return model, summary
