"""One seed's training run: its lifecycle (MLflow run, resume, clean-up) and its phases.

Phase 1 trains the head (frozen pretrained base; on cached features, tuned) or everything
(weights none); optional phase 2 unfreezes the top of the base. What a crash leaves is
resumed through `train.resume`; what a finished run writes is `train.outputs`. The state
directory is cleared once the model is written.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import warnings
from dataclasses import dataclass
from pathlib import Path

import keras
import tensorflow as tf

from bakeoff import tracking
from bakeoff.backbone.build import base_layer, build_model
from bakeoff.backbone.features import cached_head
from bakeoff.backbone.registry import REGISTRY
from bakeoff.config.params import TrackingParams, TrainParams
from bakeoff.errors import BakeoffError
from bakeoff.lineage import file_sha256
from bakeoff.train.frozen_phase import Builder, load_phase, train_head, tuning_off_reason
from bakeoff.train.history import read_history
from bakeoff.train.inputs import TrainInputs
from bakeoff.train.keras_phase import Phase, fit_phase
from bakeoff.train.outputs import RunRecord, TrainResult, write_outputs
from bakeoff.train.resume import PHASE1_DONE, fingerprint, resume_state, save_run_state
from bakeoff.train.trained import kept_for_rerun, train_once


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
    phase1_done = state_dir / PHASE1_DONE
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
        phase1 = Phase(
            number=1, learning_rate=recipe.learning_rate, until_epoch=recipe.epochs,
            initial_epoch=0, min_epochs=recipe.min_epochs,
        )  # fmt: skip
        fit_phase(model, phase1, recipe, data, state_dir)
        model.save_weights(phase1_done)
    history = read_history(state_dir)
    if frozen and recipe.fine_tune_layers > 0:
        _unfreeze_top(model, recipe.fine_tune_layers)
        done = len(history)
        phase2 = Phase(
            number=2, learning_rate=recipe.fine_tune_learning_rate,
            until_epoch=done + recipe.fine_tune_epochs, initial_epoch=done, min_epochs=done,
        )  # fmt: skip
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


def train_seed(
    inputs: SeedInputs,
    recipe: TrainParams,
    trials: int,
    settings: TrackingParams,
    where: RunRecord,
) -> TrainResult:
    """One seed's resumable, tracked training; writes where.out_dir (model.keras, train.json).

    Args:
        inputs: What every seed of the backbone trains on.
        recipe: The backbone's train section (overrides applied), with this one seed.
        trials: Head-tuning trials (`tune.trials`).
        settings: The tracking section (MLflow store and experiment).
        where: The run's outputs (its run id and tags are filled in here).
    """
    backbone, data, classes = inputs.backbone, inputs.data, inputs.classes
    state_dir = where.state_dir
    key = fingerprint(backbone, recipe, trials, inputs.version)
    run_id = resume_state(state_dir, key)
    state_dir.mkdir(parents=True, exist_ok=True)

    keras.utils.set_random_seed(recipe.seed)
    tf.config.experimental.enable_op_determinism()
    tags = {
        "data_version": inputs.version,
        "dvc_stage": f"train@{backbone}",
        "seed": str(recipe.seed),
        "weights": recipe.weights,
        "weights_sha256": file_sha256(inputs.weights_file) if inputs.weights_file else "none",
        # A colour per backbone from its registry row (the report recolours the compared
        # backbones apart).
        **tracking.run_color(_colour_index(backbone)),
    }

    def build(l2: float) -> keras.Model:
        n = len(classes)
        return build_model(backbone, n, inputs.size, recipe.weights, recipe.bn_momentum, l2)

    journal = state_dir / "journal.jsonl"
    try:
        logged = {"train": recipe, "tune": {"trials": trials}, "tracking": settings}
        with tracking.training_run(logged, backbone, run_id, tags, inputs.root, journal) as run_id:
            save_run_state(state_dir, run_id, key)

            def train() -> tuple[keras.Model, list[dict], dict]:
                tracking.log_split(run_id, data.split_dir, inputs.version)
                return _run_phases(build, recipe, trials, data, state_dir, run_id)

            trained = train_once(state_dir, run_id, train)
            run = dataclasses.replace(where, run_id=run_id, tags=tags)
            result = write_outputs(trained, run, recipe, classes, data.example())
    except tracking.TrackingUnavailable as exc:
        raise kept_for_rerun(exc, state_dir, backbone) from None
    except BakeoffError:
        # A diverged run would diverge again from its backup: the next attempt starts afresh.
        shutil.rmtree(state_dir, ignore_errors=True)
        raise
    shutil.rmtree(state_dir, ignore_errors=True)
    return result


def _colour_index(backbone: str) -> int:
    """A stable colour per backbone: its registry position, or (a keras-hub preset or
    source) a hash of its name, so each run keeps its colour across reruns."""
    import zlib

    names = list(REGISTRY)
    return names.index(backbone) if backbone in names else zlib.crc32(backbone.encode())
