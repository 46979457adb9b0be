"""Equal-budget head tuning: Optuna over the head's hyper-parameters on cached features.

A pure function of feature arrays, so it does not care how the features were computed or
cached. Every backbone gets the same budget (`tune.trials` trials, TPE sampler seeded with
the training seed, successive-halving pruning), and the selection uses the validation split
only: the test split never sees a trial. The untuned head (the train section's learning
rate and batch size, no regularisation) is fitted first under the same convergence rule; a
trial replaces it only when its validation accuracy is higher (then lower val loss), so
tuning never makes the validation score worse, and the report can show both side by side.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from bakeoff.head.trainer import HeadFit, HeadParams, HeadTrainer

# What a trial searches. L2 regularises the linear head (as C does a logistic regression:
# up to very strong, which small data sets need); label smoothing calibrates it; the batch
# size sets the noise of its steps. (Dropout on a linear head is a weaker L2: not searched.)
BATCH_SIZES = (32, 64, 128, 256)


def suggest(trial: Any) -> HeadParams:
    """The search space: one trial's hyper-parameters."""
    return HeadParams(
        learning_rate=trial.suggest_float("learning_rate", 1e-4, 1e-1, log=True),
        batch_size=trial.suggest_categorical("batch_size", BATCH_SIZES),
        l2=trial.suggest_float("l2", 1e-4, 10.0, log=True),
        label_smoothing=trial.suggest_float("label_smoothing", 0.0, 0.2),
    )


@dataclass(frozen=True)
class TuneResult:
    """The default head, the selected head, and every trial (for MLflow and the report)."""

    default: HeadParams
    best: HeadParams
    default_fit: HeadFit
    best_fit: HeadFit
    trials: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0

    def summary(self) -> dict[str, Any]:
        """JSON-ready: what train.json records about tuning."""
        return {
            "trials": len(self.trials),
            "pruned": sum(t["state"] == "PRUNED" for t in self.trials),
            "seconds": round(self.seconds, 2),
            "default": self.default.as_dict(),
            "default_val_accuracy": self.default_fit.val_accuracy,
            "default_val_loss": self.default_fit.val_loss,
            "selected": self.best.as_dict(),
            "tuned_val_accuracy": self.best_fit.val_accuracy,
            "tuned_val_loss": self.best_fit.val_loss,
        }


def _better(fit: HeadFit, than: HeadFit) -> bool:
    """Higher val accuracy, then lower val loss (NaN never wins)."""
    if not np.isfinite(fit.val_loss):
        return False
    return (fit.val_accuracy, -fit.val_loss) > (than.val_accuracy, -than.val_loss)


def tune(
    x_tr: np.ndarray,
    y_tr: np.ndarray,
    x_va: np.ndarray,
    y_va: np.ndarray,
    n_classes: int,
    default: HeadParams,
    trials: int,
    seed: int,
    max_epochs: int,
    patience: int,
    on_trial: Callable[[dict[str, Any]], None] | None = None,
) -> TuneResult:
    """Fit the default head, then `trials` Optuna trials; return the best on validation.

    Args:
        x_tr, y_tr: Cached train features (n, d) and integer labels.
        x_va, y_va: Cached validation features and labels: the only selection data.
        n_classes: Number of classes.
        default: The untuned head (the train section's settings).
        trials: The budget, the same for every backbone (0: the default head only).
        seed: Seeds the sampler and every fit (initial kernel, shuffles).
        max_epochs: Epoch cap of each fit (early stopping on val loss ends it sooner).
        patience: Early-stopping patience of each fit.
        on_trial: Called with each finished trial's record (number, state, params, val
            accuracy and loss, epochs, seconds), e.g. to log it as an MLflow child run.

    Returns:
        The default and selected heads, their fits, and the trial records.
    """
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    start = time.perf_counter()
    trainer = HeadTrainer(x_tr, y_tr, x_va, y_va, n_classes)
    default_fit = trainer.fit(default, seed, max_epochs, patience)
    search = _Search(trainer, seed, max_epochs, patience, on_trial, (default, default_fit))
    if trials > 0:
        study = optuna.create_study(
            direction="maximize",
            sampler=optuna.samplers.TPESampler(seed=seed),
            # Successive halving (ASHA, Li et al. 2020): at epochs 10, 30, 90 and 270 a trial
            # goes on only if its running best val accuracy is in the top third of the
            # trials that reached that epoch. No trial runs unpruned as a start-up trial,
            # so a slow, low-learning-rate trial stops early instead of running hundreds
            # of epochs, while the heads it selects are as good on held-out images.
            pruner=optuna.pruners.SuccessiveHalvingPruner(min_resource=10, reduction_factor=3),
        )
        study.optimize(search, n_trials=trials)
    (selected, selected_fit), seconds = search.best, time.perf_counter() - start
    return TuneResult(default, selected, default_fit, selected_fit, search.records, seconds)


@dataclass
class _Search:
    """Optuna's objective: each trial's head fitted (pruned by its running best val
    accuracy), recorded, and kept when it beats the best so far."""

    trainer: HeadTrainer
    seed: int
    max_epochs: int
    patience: int
    on_trial: Callable[[dict[str, Any]], None] | None
    best: tuple[HeadParams, HeadFit]
    records: list[dict[str, Any]] = field(default_factory=list)

    def __call__(self, trial: Any) -> float:
        import optuna

        hp = suggest(trial)
        t0, running = time.perf_counter(), {"acc": 0.0, "loss": np.inf}

        def report(epoch: int, row: dict[str, float]) -> None:
            if row["val_loss"] < running["loss"]:  # the epoch early stopping would keep
                running.update(acc=row["val_accuracy"], loss=row["val_loss"])
            trial.report(running["acc"], epoch)
            if trial.should_prune():
                self._record(trial, hp, None, time.perf_counter() - t0, epoch, running)
                raise optuna.TrialPruned()

        fit = self.trainer.fit(hp, self.seed, self.max_epochs, self.patience, on_epoch=report)
        self._record(trial, hp, fit, time.perf_counter() - t0, len(fit.history), running)
        if _better(fit, self.best[1]):
            self.best = (hp, fit)
        return fit.val_accuracy if np.isfinite(fit.val_loss) else 0.0

    def _record(self, trial, hp, fit, seconds, epochs, running) -> None:
        record = {
            "number": trial.number,
            "state": "COMPLETE" if fit is not None else "PRUNED",
            "params": hp.as_dict(),
            "val_accuracy": fit.val_accuracy if fit else running["acc"],
            "val_loss": fit.val_loss if fit else running["loss"],
            "best_epoch": fit.best_epoch if fit else None,
            "epochs": epochs,
            "seconds": seconds,
        }
        self.records.append(record)
        if self.on_trial is not None:
            self.on_trial(record)
