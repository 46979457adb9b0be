"""The recipe's head trained on cached features, fast enough to tune and to run to convergence.

With a frozen base, the features of every image are computed once; only the head trains:
BatchNormalization -> softmax Dense (L2 on its kernel), as `build_model` builds it. Here
the BatchNorm is a fixed standardiser (the features' own mean and variance, scale 1,
offset 0, frozen): with a trainable scale the L2 penalty on the kernel could be undone by a
larger scale, and a standardised linear head is exactly the model family of the tuned
logistic-regression probe it must match. Keras's `fit` costs about a millisecond per step
in overhead alone, which would make a tuning trial of ~100 epochs slower than the feature
pass it is meant to be cheap next to, so the head is two Keras variables with one compiled
epoch function, reused by every trial (the hyper-parameters are variables too).
Its update is Keras's own `Adamax` (`apply_gradients` inside the compiled epoch), the
optimizer the Keras model trains with; `set_head_weights` copies the head into that model.
Every random draw is stateless and seeded, so a fit is a pure function of (features,
hyper-parameters, seed).
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

_BN_EPSILON = 1e-3  # keras.layers.BatchNormalization's default
# Converged: the val loss improved by less than this for `patience` epochs (as Keras's
# EarlyStopping min_delta; on separable data the loss creeps towards 0 for ever).
_MIN_DELTA = 1e-4


@dataclass(frozen=True)
class HeadParams:
    """The head's hyper-parameters (what tuning searches)."""

    learning_rate: float
    batch_size: int
    l2: float = 0.0
    label_smoothing: float = 0.0

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


@dataclass(frozen=True)
class HeadFit:
    """A fitted head: the weights of its best epoch (lowest val loss) and its history."""

    weights: dict[str, np.ndarray]
    history: list[dict[str, float]]
    best_epoch: int  # 1-based
    val_accuracy: float
    val_loss: float


class _Program:
    """The head's variables, optimizer and compiled epoch for one (feature size, classes).

    Traced once per process and shared by every `HeadTrainer` of that shape (the training's
    tuning, each cross-validation fold): the data are arguments, not constants baked into
    the graph, so a new fold costs no new trace. Its variables hold the fit in progress
    only: each trainer keeps its own results, and `lock` lets one fit run at a time.
    """

    def __init__(self, dim: int, n_classes: int):
        import keras
        import tensorflow as tf

        self.n_classes = n_classes
        self.lock = threading.RLock()
        shapes = {"kernel": (dim, n_classes), "bias": (n_classes,)}
        self.trainable = {k: keras.Variable(np.zeros(s, np.float32), name=k)
                          for k, s in shapes.items()}  # fmt: skip
        # One optimizer for every fit: `reset` zeroes its slots and step and sets the
        # learning rate (a variable), so the compiled epoch is traced once.
        self.optimizer = keras.optimizers.Adamax()
        self.optimizer.build(list(self.trainable.values()))
        self.hp = {k: tf.Variable(0.0, name=k) for k in HeadParams.__dataclass_fields__}
        features, labels = tf.TensorSpec([None, dim]), tf.TensorSpec([None, n_classes])
        signature = [features, labels, features, labels, tf.TensorSpec([2], tf.int32)]
        epoch = tf.function(self._epoch_fn, input_signature=signature, jit_compile=False)
        # Called as its one concrete function: the tf.function would match the arguments
        # against its signature on every epoch, a few percent of an epoch's CPU time.
        self.epoch = epoch.get_concrete_function()

    def _logits(self, x):
        import tensorflow as tf

        return tf.matmul(x, self.trainable["kernel"]) + self.trainable["bias"]

    def _epoch_fn(self, x_tr, y_tr, x_va, y_va, seed):
        """One epoch of minibatch steps, then the validation scores: [loss, accuracy,
        val_loss, val_accuracy] (one call, one transfer per epoch)."""
        import tensorflow as tf

        n = tf.shape(x_tr)[0]
        batch = tf.cast(self.hp["batch_size"], tf.int32)
        order = tf.random.experimental.stateless_shuffle(tf.range(n), seed=seed)
        # One gather per epoch, then contiguous batches: the same batches as a gather each.
        x_tr, y_tr = tf.gather(x_tr, order), tf.gather(y_tr, order)
        steps = (n + batch - 1) // batch
        smooth = self.hp["label_smoothing"]
        loss_sum, right = tf.constant(0.0), tf.constant(0.0)
        for i in tf.range(steps):
            lo, hi = i * batch, tf.minimum((i + 1) * batch, n)
            x, y = x_tr[lo:hi], y_tr[lo:hi]
            target = y * (1.0 - smooth) + smooth / self.n_classes
            with tf.GradientTape() as tape:
                logits = self._logits(x)
                ce = tf.nn.softmax_cross_entropy_with_logits(target, logits)
                penalty = self.hp["l2"] * tf.reduce_sum(tf.square(self.trainable["kernel"]))
                loss = tf.reduce_mean(ce) + penalty
            grads = tape.gradient(loss, list(self.trainable.values()))
            self.optimizer.apply_gradients(zip(grads, self.trainable.values(), strict=True))
            loss_sum += loss * tf.cast(hi - lo, tf.float32)
            hits = tf.equal(tf.argmax(logits, 1), tf.argmax(y, 1))
            right += tf.reduce_sum(tf.cast(hits, tf.float32))
        logits = self._logits(x_va)
        val_loss = tf.reduce_mean(tf.nn.softmax_cross_entropy_with_logits(y_va, logits))
        val_hits = tf.cast(tf.equal(tf.argmax(logits, 1), tf.argmax(y_va, 1)), tf.float32)
        size = tf.cast(n, tf.float32)
        return tf.stack([loss_sum / size, right / size, val_loss, tf.reduce_mean(val_hits)])

    def reset(self, hp: HeadParams, seed: int) -> None:
        """A seeded Glorot-uniform kernel (as Dense), zero bias, a fresh optimizer."""
        rng = np.random.default_rng(seed)
        dim = self.trainable["kernel"].shape[0]
        limit = np.sqrt(6.0 / (dim + self.n_classes))
        kernel = rng.uniform(-limit, limit, (dim, self.n_classes)).astype(np.float32)
        self.trainable["kernel"].assign(kernel)
        self.trainable["bias"].assign(np.zeros(self.n_classes, np.float32))
        for var in self.optimizer.variables:  # its step, moments and learning rate
            var.assign(np.zeros(var.shape, var.dtype))
        self.optimizer.learning_rate = hp.learning_rate
        for k, value in hp.as_dict().items():
            self.hp[k].assign(float(value))


@functools.cache
def _program(dim: int, n_classes: int) -> _Program:
    return _Program(dim, n_classes)


class HeadTrainer:
    """Fits the head on one set of cached features, as often as tuning asks.

    Args:
        x_tr, y_tr: Train features (n, d) and integer labels.
        x_va, y_va: Validation features and labels (early stopping and selection).
        n_classes: Number of classes.
    """

    def __init__(self, x_tr, y_tr, x_va, y_va, n_classes: int):
        import tensorflow as tf

        x_tr = np.asarray(x_tr, dtype=np.float32)
        self.stats = {"mean": x_tr.mean(axis=0), "var": x_tr.var(axis=0)}
        scale = 1.0 / np.sqrt(self.stats["var"] + _BN_EPSILON)

        def standardise(x) -> Any:
            return tf.constant((np.asarray(x, np.float32) - self.stats["mean"]) * scale)

        def one_hot(y) -> Any:
            return tf.one_hot(np.asarray(y), n_classes)

        self.data = (standardise(x_tr), one_hot(y_tr), standardise(x_va), one_hot(y_va))
        self.program = _program(x_tr.shape[1], n_classes)
        # This trainer's own copy of where its last fit ended: the program's variables
        # belong to whichever trainer of this shape fitted last.
        self._last: dict[str, np.ndarray] | None = None

    def weights(self, trained: dict[str, np.ndarray] | None = None) -> dict[str, np.ndarray]:
        """The head's weights, BatchNorm's included (scale 1, offset 0, feature statistics):
        those of `trained` (a `snapshot`), or else those this trainer's last fit ended with.

        Raises:
            RuntimeError: No `trained` given and this trainer has not fitted yet.
        """
        if trained is None:
            if self._last is None:
                raise RuntimeError("HeadTrainer.weights(): no fit yet, call fit() first")
            trained = self._last
        dim = self.stats["mean"].shape[0]
        bn = {"gamma": np.ones(dim, np.float32), "beta": np.zeros(dim, np.float32)}
        return bn | self.stats | trained

    def snapshot(self) -> dict[str, np.ndarray]:
        """A copy of the trained variables (kernel, bias) as they are now; they are shared
        by every trainer of this shape, so only a running `fit` of this trainer reads them."""
        return {k: v.numpy() for k, v in self.program.trainable.items()}

    def fit(
        self,
        hp: HeadParams,
        seed: int,
        max_epochs: int,
        patience: int,
        on_epoch: Callable[[int, dict[str, float]], None] | None = None,
    ) -> HeadFit:
        """Train from a seeded start until val loss stops improving; keep its best epoch.

        Args:
            hp: The hyper-parameters.
            seed: Seed of the initial kernel and the shuffles.
            max_epochs: The epoch cap.
            patience: Epochs without a val loss lower by 1e-4 before stopping.
            on_epoch: Called with (epoch, history row) after every epoch (Optuna's pruning
                raises from here).

        Returns:
            The fit, with the weights of the epoch of lowest val loss.
        """
        with self.program.lock:  # one fit at a time on the shared variables
            try:
                history, best = self._epochs(hp, seed, max_epochs, patience, on_epoch)
            finally:  # also when `on_epoch` stops the fit (a pruned trial)
                self._last = self.snapshot()
        if best is None:
            return HeadFit(self.weights(), history, 1, float("nan"), float("nan"))
        return HeadFit(self.weights(best[2]), history, best[1], best[3], best[0])

    def _epochs(self, hp, seed, max_epochs, patience, on_epoch):
        """The epochs of one fit: (history rows, (val loss, epoch, weights, val accuracy) of
        the best epoch, or None when the first epoch already diverged)."""
        import tensorflow as tf

        self.program.reset(hp, seed)
        history: list[dict[str, float]] = []
        best: tuple[float, int, dict[str, np.ndarray], float] | None = None
        for epoch in range(1, max_epochs + 1):
            scores = self.program.epoch(*self.data, tf.constant([seed, epoch], tf.int32))
            loss, acc, val_loss, val_acc = (float(v) for v in scores.numpy())
            row = {
                "epoch": epoch,
                "loss": loss,
                "accuracy": acc,
                "val_loss": val_loss,
                "val_accuracy": val_acc,
                "learning_rate": hp.learning_rate,
            }
            history.append(row)
            if not np.isfinite(row["loss"]):
                break
            if best is None or val_loss < best[0] - _MIN_DELTA:
                best = (val_loss, epoch, self.snapshot(), val_acc)
            if on_epoch is not None:
                on_epoch(epoch, row)
            if epoch - best[1] >= patience:
                break
        return history, best


def set_head_weights(model: Any, weights: dict[str, np.ndarray]) -> None:
    """Copy a fitted head into a model from `build_model` (layers head_bn, predictions).

    The head's BatchNorm stays frozen (a fixed standardiser, inference mode), also in phase 2.
    """
    bn, dense = model.get_layer("head_bn"), model.get_layer("predictions")
    bn.set_weights([weights[k] for k in ("gamma", "beta", "mean", "var")])
    bn.trainable = False
    dense.set_weights([weights["kernel"], weights["bias"]])


def _head_logits(weights: dict[str, np.ndarray], x: np.ndarray) -> np.ndarray:
    scale = weights["gamma"] / np.sqrt(weights["var"] + _BN_EPSILON)
    h = (np.asarray(x, np.float32) - weights["mean"]) * scale + weights["beta"]
    return h @ weights["kernel"] + weights["bias"]


def predict_head(weights: dict[str, np.ndarray], x: np.ndarray) -> np.ndarray:
    """Class indices the fitted head predicts for features `x` (inference BatchNorm)."""
    return _head_logits(weights, x).argmax(axis=1)


def predict_head_proba(weights: dict[str, np.ndarray], x: np.ndarray) -> np.ndarray:
    """The fitted head's class probabilities (softmax) for features `x`, rows sum to 1."""
    logits = _head_logits(weights, x).astype(np.float64)
    logits -= logits.max(axis=1, keepdims=True)
    exp = np.exp(logits)
    return exp / exp.sum(axis=1, keepdims=True)
