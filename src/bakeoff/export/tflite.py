"""TFLite variants of a Keras classifier, and how they run on the LiteRT interpreter.

Four variants, all from one SavedModel export of the inference model:
- `float32`: the model as is;
- `float16`: weights stored as float16 (dequantized at load);
- `dynamic_range`: int8 weights, activations quantized on the fly;
- `int8`: full integer, calibrated on training images; takes uint8 pixels as they come
  from a camera (input scale 1, zero point 0) and returns float32 probabilities.

Two traps are handled here. Per-channel weight quantization (the converter's default)
must stay on: MobileNet's depthwise filters have per-channel ranges so different that
one scale per tensor wrecks them; `describe` counts the per-channel tensors so the
report shows it. And the head's BatchNormalization sits between the pooled features
and the Dense layer, where the converter cannot fold it into a convolution: quantized
on its own, its per-feature scales (1/sqrt(variance), large for quiet features) stretch
one int8 range over all features. `fold_head_bn` folds it into the Dense weights first.
"""

from __future__ import annotations

import contextlib
import io
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from bakeoff.model.timing import time_call

VARIANTS = ("float32", "float16", "dynamic_range", "int8")
_BATCH = 32  # accuracy runs in batches; latency is measured at batch 1


def fold_head_bn(model: Any) -> Any:
    """The same classifier with its `head_bn` BatchNormalization folded into `predictions`.

    Dense(BN(x)) = W.T (s * x + beta - s * mean) + b = (s[:, None] * W).T x + b', with
    s = gamma / sqrt(var + eps) and b' = W.T (beta - s * mean) + b. Models without a
    `head_bn` followed by `predictions` are returned unchanged.
    """
    import keras

    names = {layer.name for layer in model.layers}
    if not {"head_bn", "predictions"} <= names:
        return model
    bn, dense = model.get_layer("head_bn"), model.get_layer("predictions")
    mean = keras.ops.convert_to_numpy(bn.moving_mean).astype(np.float64)
    var = keras.ops.convert_to_numpy(bn.moving_variance).astype(np.float64)
    gamma = keras.ops.convert_to_numpy(bn.gamma) if bn.scale else np.ones_like(mean)
    beta = keras.ops.convert_to_numpy(bn.beta) if bn.center else np.zeros_like(mean)
    kernel, bias = (w.astype(np.float64) for w in dense.get_weights())
    scale = gamma / np.sqrt(var + bn.epsilon)
    folded = keras.layers.Dense(
        kernel.shape[1], activation=dense.activation, name="predictions_folded"
    )
    outputs = folded(bn.input)
    folded.set_weights(
        [
            (scale[:, None] * kernel).astype("float32"),
            (kernel.T @ (beta - scale * mean) + bias).astype("float32"),
        ]
    )
    return keras.Model(model.inputs, outputs, name=f"{model.name}_folded")


def _pinned(images: np.ndarray) -> np.ndarray:
    """Calibration images with one pixel at 0 and one at 255, so the int8 input's range is
    exactly 0..255 (scale 1, zero point 0) and raw uint8 pixels can be fed as they are."""
    out = images.astype(np.float32).copy()
    out[:, 0, 0, :] = 0.0
    out[:, 0, 1, :] = 255.0
    return out


def convert_all(model: Any, representative: np.ndarray) -> dict[str, bytes | str]:
    """Every variant's .tflite bytes.

    Args:
        model: The Keras inference model (0..255 float32 RGB in, probabilities out).
        representative: uint8 training images (n, size, size, 3) for int8 calibration.

    Returns:
        Variant name -> flatbuffer bytes, in VARIANTS order; a variant the converter
        refuses maps to the reason (a str) instead, so the others still export.
    """
    import tensorflow as tf

    calibration = _pinned(representative)

    def samples():
        for image in calibration:
            yield [image[None]]

    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        model.export(tmp, format="tf_saved_model", verbose=False)
        for variant in VARIANTS:
            converter = tf.lite.TFLiteConverter.from_saved_model(tmp)
            if variant != "float32":
                converter.optimizations = [tf.lite.Optimize.DEFAULT]
            if variant == "float16":
                converter.target_spec.supported_types = [tf.float16]
            if variant == "int8":
                converter.representative_dataset = samples
                converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
                converter.inference_input_type = tf.uint8
            try:
                with contextlib.redirect_stdout(io.StringIO()):
                    out[variant] = converter.convert()
            except Exception as exc:  # the converter raises many kinds (ConverterError, ...)
                first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
                out[variant] = f"the TFLite converter failed: {type(exc).__name__}: {first}"[:500]
    return out


def interpreter(content: bytes, threads: int, batch: int = 1, xnnpack: bool = True) -> Any:
    """A LiteRT interpreter of `content` at `batch`, tensors allocated.

    Args:
        content: The .tflite flatbuffer.
        threads: Interpreter threads.
        batch: Input batch size (the converted model has batch 1; others are resized).
        xnnpack: With LiteRT's default CPU delegate (XNNPACK), else its builtin kernels.
    """
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    resolver = OpResolverType.AUTO if xnnpack else OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
    interp = Interpreter(
        model_content=content, num_threads=threads, experimental_op_resolver_type=resolver
    )
    detail = interp.get_input_details()[0]
    if batch != int(detail["shape"][0]):
        interp.resize_tensor_input(detail["index"], [batch, *detail["shape"][1:]])
    interp.allocate_tensors()
    return interp


def xnnpack_error(content: bytes, threads: int) -> str | None:
    """Why XNNPACK cannot run this model (at batch 1 or in batches), or None when it can.

    XNNPACK refuses some quantized graphs (e.g. requantization scales out of its range);
    LiteRT's builtin kernels still run them, and the report says which kernels ran.
    """
    try:
        for batch in (1, _BATCH):
            interpreter(content, threads, batch)
    except RuntimeError as exc:
        return " ".join(str(exc).split())
    return None


def _feed(interp: Any, images: np.ndarray) -> np.ndarray:
    """Input tensor values for uint8 images: pixels as they are, or quantized if need be."""
    detail = interp.get_input_details()[0]
    if detail["dtype"] == np.float32:
        return images.astype(np.float32)
    scale, zero = detail["quantization"]
    info = np.iinfo(detail["dtype"])
    return np.clip(np.round(images / scale + zero), info.min, info.max).astype(detail["dtype"])


def predict(content: bytes, images: np.ndarray, threads: int, xnnpack: bool = True) -> np.ndarray:
    """Class probabilities (float32) of uint8 images through one variant."""
    interp = interpreter(content, threads, _BATCH, xnnpack)
    inp, out = interp.get_input_details()[0], interp.get_output_details()[0]
    rows = []
    for start in range(0, len(images), _BATCH):
        chunk = images[start : start + _BATCH]
        padded = np.concatenate([chunk, np.repeat(chunk[-1:], _BATCH - len(chunk), axis=0)])
        interp.set_tensor(inp["index"], _feed(interp, padded))
        interp.invoke()
        result = interp.get_tensor(out["index"])[: len(chunk)]
        if out["dtype"] != np.float32:
            scale, zero = out["quantization"]
            result = (result.astype(np.float32) - zero) * scale
        rows.append(result.astype(np.float32))
    return np.concatenate(rows)


def latency_ms(
    content: bytes, image: np.ndarray, threads: int, warmup: int, repeats: int, xnnpack: bool = True
) -> float:
    """Median milliseconds of one batch-1 `invoke()` (input set once, outside the timing)."""
    interp = interpreter(content, threads, 1, xnnpack)
    interp.set_tensor(interp.get_input_details()[0]["index"], _feed(interp, image[None]))
    return time_call(interp.invoke, warmup, repeats).median_ms


def describe(content: bytes) -> dict[str, Any]:
    """Input/output types, the input's quantization and how many tensors are per-channel."""
    interp = interpreter(content, threads=1, xnnpack=False)
    inp, out = interp.get_input_details()[0], interp.get_output_details()[0]
    per_channel = sum(
        len(t["quantization_parameters"]["scales"]) > 1 for t in interp.get_tensor_details()
    )
    scale, zero = inp["quantization"]
    return {
        "input_dtype": np.dtype(inp["dtype"]).name,
        "input_scale": float(scale),
        "input_zero_point": int(zero),
        "output_dtype": np.dtype(out["dtype"]).name,
        "per_channel_tensors": int(per_channel),
    }


def write(contents: dict[str, bytes], folder: Path) -> dict[str, Path]:
    """exports/<backbone>/<variant>.tflite; stale variants of an earlier export removed."""
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("*.tflite"):
        old.unlink()
    paths = {}
    for variant, content in contents.items():
        paths[variant] = folder / f"{variant}.tflite"
        paths[variant].write_bytes(content)
    return paths
