"""Per-epoch numbers of a training run: the Keras callback and the head's history rows."""

from __future__ import annotations

from typing import Any


def is_number(value: Any) -> bool:
    """Whether `value` converts to a float (a metric, not a string or None)."""
    try:
        float(value)
    except (TypeError, ValueError):
        return False
    return True


def epoch_callback() -> Any:
    """A Keras callback logging every epoch's metrics, learning_rate included, step = epoch.

    It logs to this thread's training run (inside `training_run`), through the run's journal:
    the epoch's numbers are on disk before the next epoch starts and reach MLflow behind
    the training, so a tracking outage does not stall it. A failure that is not an outage
    (MLflow refused the numbers) is not swallowed: the next epoch fails the training
    (MLflow's own callback turns it into a warning and the numbers are lost).
    """
    import keras

    from bakeoff.tracking.runs import CURRENT, log_metrics

    class EpochLogger(keras.callbacks.Callback):
        """Logs each epoch's metrics to the run active when training began."""

        def on_train_begin(self, logs=None):
            self.run_id = getattr(CURRENT, "run_id", None)
            if self.run_id is None:
                raise RuntimeError("epoch_callback() needs an active run: use training_run()")

        def on_epoch_end(self, epoch, logs=None):
            metrics = {k: v for k, v in (logs or {}).items() if is_number(v)}
            if "learning_rate" not in metrics:
                lr = self.model.optimizer.learning_rate
                metrics["learning_rate"] = float(keras.ops.convert_to_numpy(lr))
            log_metrics(metrics, self.run_id, step=epoch)

    return EpochLogger()


def log_history(rows: list[dict[str, float]], run_id: str) -> None:
    """Log per-epoch rows (`epoch` 1-based, the rest metrics) at step = epoch - 1."""
    from bakeoff.tracking.runs import log_metrics

    for row in rows:
        metrics = {
            k: float(v) for k, v in row.items() if k not in ("epoch", "phase") and is_number(v)
        }
        log_metrics(metrics, run_id, int(row["epoch"]) - 1)
