"""A trained model at work: its train.json, predictions, scores and latency.

Shared by the stages that use a trained model (evaluate, register, export) and by
`seeds`, below all of them, so that no stage imports another. TensorFlow and sklearn are
imported where they are used: importing this module does nothing.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from bakeoff.errors import BakeoffError
from bakeoff.model.timing import time_call

if TYPE_CHECKING:
    from bakeoff.data.pixels import PixelSplit


def read_train_info(model_dir: Path) -> dict[str, Any]:
    """models/<backbone>/train.json, with a clear error when training has not run."""
    path = Path(model_dir) / "train.json"
    if not path.is_file() or not (Path(model_dir) / "model.keras").is_file():
        raise BakeoffError(
            f"no trained model in {model_dir} (train.json and model.keras): "
            f"run `bakeoff train {Path(model_dir).name}` first"
        )
    return json.loads(path.read_text())


def predict_proba(model: Any, pixels: PixelSplit | np.ndarray, batch_size: int = 64) -> np.ndarray:
    """Class probabilities of a split streamed from the decode cache (or of a few images).

    The model holds its own preprocessing; only the (N, classes) output is in memory.
    """
    from bakeoff.data.dataset import stream
    from bakeoff.resources import memory_guard

    if isinstance(pixels, np.ndarray):  # a handful of uint8 images already in memory
        return np.asarray(model.predict(pixels.astype("float32"), batch_size=batch_size, verbose=0))
    ds = stream(pixels.path, pixels.labels, len(pixels.classes), batch_size)
    size = pixels.rows().row_shape[0]
    with memory_guard(f"predicting {len(pixels)} images", batch_size, size):
        return np.asarray(model.predict(ds, verbose=0))


def scores(y: np.ndarray, proba: np.ndarray, classes: list[str]) -> dict[str, Any]:
    """Accuracy, macro-F1 and per-class precision/recall/F1/support (sklearn).

    A model whose outputs are not finite (a diverged run) scores NaN, never a lucky argmax.
    """
    from sklearn.metrics import accuracy_score, f1_score, precision_recall_fscore_support

    labels = list(range(len(classes)))
    pred = proba.argmax(axis=1)
    finite = bool(np.isfinite(proba).all())
    precision, recall, f1, support = precision_recall_fscore_support(
        y, pred, labels=labels, zero_division=0
    )
    per_class = {
        cls: {
            "precision": float(precision[i]) if finite else math.nan,
            "recall": float(recall[i]) if finite else math.nan,
            "f1": float(f1[i]) if finite else math.nan,
            "support": int(support[i]),
        }
        for i, cls in enumerate(classes)
    }
    return {
        "accuracy": float(accuracy_score(y, pred)) if finite else math.nan,
        "macro_f1": float(f1_score(y, pred, labels=labels, average="macro", zero_division=0))
        if finite
        else math.nan,
        "per_class": per_class,
        "pred": pred,
    }


def measure_latency(model: Any, sample: np.ndarray, warmup: int, repeats: int) -> dict[str, float]:
    """Median inference time of a compiled forward pass at batch 1 and batch 32.

    Args:
        model: The Keras model.
        sample: At least one uint8 image; repeated to fill a batch of 32.
        warmup: Untimed calls first (graph tracing, memory allocation).
        repeats: Timed calls; the median resists noise from other processes.

    Returns:
        latency_ms_b1, latency_ms_b32 (per image) and throughput_ips (images/s at batch 32).
    """
    import tensorflow as tf

    forward = tf.function(lambda t: model(t, training=False), reduce_retracing=True)
    result = {}
    for batch in (1, 32):
        x = tf.constant(np.resize(sample, (batch, *sample.shape[1:])).astype("float32"))
        # .numpy() waits for the result
        result[batch] = time_call(lambda x=x: forward(x).numpy(), warmup, repeats).median_s
    return {
        "latency_ms_b1": result[1] * 1000,
        "latency_ms_b32": result[32] * 1000 / 32,
        "throughput_ips": 32 / result[32],
    }
