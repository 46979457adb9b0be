"""One Keras training phase: `fit` with the recipe's callbacks, resumable from its backup."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import keras

from bakeoff import tracking
from bakeoff.config.params import TrainParams
from bakeoff.console import keras_verbose
from bakeoff.data.dataset import stream
from bakeoff.errors import BakeoffError
from bakeoff.resources import memory_guard
from bakeoff.train.history import best_row, read_history
from bakeoff.train.inputs import TrainInputs
from bakeoff.train.resume import backup_dir


@dataclass(frozen=True)
class Phase:
    """A `fit` call: epochs counted over the whole training, so phase 2 continues phase 1
    (it runs from `initial_epoch` up to, not including, `until_epoch`)."""

    number: int
    learning_rate: float
    until_epoch: int  # the epoch to stop at (exclusive): Keras `fit(epochs=...)`
    initial_epoch: int
    min_epochs: int  # early stopping never stops before this epoch


def fit_phase(
    model: keras.Model,
    phase: Phase,
    recipe: TrainParams,
    data: TrainInputs,
    state_dir: Path,
) -> None:
    """Run one phase of the recipe with Keras's `fit`, resuming from its backup if any.

    (A head on cached features trains in `bakeoff.train.frozen_phase` instead.)

    Args:
        model: The full model, trained in place.
        phase: Learning rate and epochs of this phase.
        recipe: The train params of this backbone.
        data: The backbone's inputs: pixels streamed from the decode cache.
        state_dir: Backups, history_phase<n>.csv and best.keras (best.json, when an
            earlier phase chose its best epoch by another rule, holds that epoch's row).

    Raises:
        BakeoffError: The loss became NaN or infinite.
    """
    train_px, val_px = data.pixels("train"), data.pixels("val")
    target = model
    target.compile(
        optimizer=keras.optimizers.Adamax(phase.learning_rate),
        loss="categorical_crossentropy",
        metrics=["accuracy"],
        # XLA compiles for minutes on CPU for the bigger backbones; plain graphs start fast.
        jit_compile=False,
    )
    n = data.n_classes
    train_ds = stream(
        train_px.path, train_px.labels, n, recipe.batch_size, shuffle=True, seed=recipe.seed,
        augment=recipe.augment,
    )  # fmt: skip
    val_ds = stream(val_px.path, val_px.labels, n, recipe.batch_size)
    callbacks = _callbacks(phase, recipe, state_dir)
    what = f"training {data.backbone} (phase {phase.number})"
    try:
        with memory_guard(what, recipe.batch_size, data.image_size):
            target.fit(
                train_ds,
                validation_data=val_ds,
                epochs=phase.until_epoch,
                initial_epoch=phase.initial_epoch,
                callbacks=callbacks,
                shuffle=False,  # the dataset shuffles itself, seeded
                verbose=keras_verbose(),
            )
    except RuntimeError as exc:
        if "NaN or Inf" not in str(exc):
            raise
        raise BakeoffError(
            f"training diverged (loss became NaN/Inf in phase {phase.number}): "
            f"lower the learning rate (now {phase.learning_rate})"
        ) from None


def _callbacks(phase: Phase, recipe: TrainParams, state_dir: Path) -> list:
    """The recipe's callbacks, in the order they must run, resuming the best checkpoint."""
    best = state_dir / "best.keras"
    threshold = (
        best_row(read_history(state_dir), state_dir)["val_accuracy"] if best.is_file() else None
    )
    return [
        # First: it puts `learning_rate` into the logs the later callbacks write.
        keras.callbacks.ReduceLROnPlateau(factor=0.5, patience=max(1, recipe.patience // 2)),
        keras.callbacks.ModelCheckpoint(
            filepath=str(best),
            monitor="val_accuracy",
            mode="max",
            save_best_only=True,
            initial_value_threshold=threshold,
        ),
        keras.callbacks.EarlyStopping(
            monitor="val_accuracy",
            mode="max",
            patience=recipe.patience,
            restore_best_weights=True,
            start_from_epoch=phase.min_epochs,
        ),
        keras.callbacks.TerminateOnNaN(raise_error=True),
        keras.callbacks.CSVLogger(str(state_dir / f"history_phase{phase.number}.csv"), append=True),
        tracking.epoch_callback(),
        # Last: an epoch is backed up only after everything above recorded it.
        keras.callbacks.BackupAndRestore(
            str(backup_dir(state_dir, phase.number)), double_checkpoint=True
        ),
    ]
