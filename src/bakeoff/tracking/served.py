"""The python_function flavour of a logged bakeoff model: image files in, labels out.

MLflow runs this module without bakeoff: every logged model ships it in its `code/` folder
as `bakeoff_serving.served`, next to `bakeoff_serving.images`, a verbatim copy of
bakeoff/data/images.py, so a served image is decoded exactly as training decoded it.
It may import only the standard library, numpy, pandas, PIL, keras (and its backend) and
mlflow.

Input, one row per image (`{"dataframe_records": [...]}` when served):
- `image`: the base64 of an image file (PNG, JPEG, ... any format PIL reads), any size;
- or `pixels`: a (height, width, 3) array of integer RGB values in 0..255.

Output, one dict per image: `label` and `probabilities` (class name -> probability).
A row that cannot be read fails the whole request with MLflow's INVALID_PARAMETER_VALUE
(HTTP 400), naming each bad row and why; the server keeps running.

Speed: `model.predict` sets up a data pipeline on every call (tens of ms for a 4-image
request); the served model instead calls one function traced once at load (a `tf.function`
of `model(x, training=False)` on the TensorFlow backend, Keras's `predict_on_batch`
otherwise). MLflow's server runs requests in threads; `Batcher` joins the requests that
arrive while the model is busy into one call, so 16 clients cost a few model calls, not 16.
"""

from __future__ import annotations

import base64
import binascii
import io
import json
import os
import threading
from typing import Any

import numpy as np

if __package__ == "bakeoff_serving":  # the copy inside a logged model
    from bakeoff_serving.images import load_array
else:  # bakeoff's own process: the very same function
    from bakeoff.data.images import load_array

CONFIG_FILE = "serving.json"  # next to model.keras: classes and image size


class BadInput(ValueError):
    """One row that cannot be classified; the message says why."""


def _decode_image(value: Any, size: int, max_pixels: int) -> np.ndarray:
    from PIL import Image

    if not isinstance(value, str):
        raise BadInput(f"'image' must be a base64 string, got {type(value).__name__}")
    try:
        raw = base64.b64decode("".join(value.split()), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise BadInput(f"'image' is not valid base64 ({exc})") from None
    try:
        with Image.open(io.BytesIO(raw)) as probe:
            width, height = probe.size  # the header only: nothing is decompressed yet
    except Image.DecompressionBombError as exc:
        raise BadInput(f"decompression bomb refused: {exc}") from None
    except Image.UnidentifiedImageError:
        raise BadInput("not an image file (no format PIL reads)") from None
    except Exception as exc:
        raise BadInput(f"not an image file PIL can read ({type(exc).__name__}: {exc})") from None
    if width * height > max_pixels:
        raise BadInput(
            f"decompression bomb refused: {width}x{height} pixels is over the limit of "
            f"{max_pixels} (PIL.Image.MAX_IMAGE_PIXELS)"
        )
    try:
        return load_array(io.BytesIO(raw), size)
    except Exception as exc:
        raise BadInput(f"cannot decode the image ({type(exc).__name__}: {exc})") from None


def _pixels(value: Any, size: int) -> np.ndarray:
    from PIL import Image

    try:
        arr = np.asarray(value, dtype=np.float32)
    except (TypeError, ValueError) as exc:
        raise BadInput(f"'pixels' is not a numeric array ({exc})") from None
    if arr.ndim != 3 or arr.shape[-1] != 3 or not np.isfinite(arr).all():
        raise BadInput(f"'pixels' must be finite (height, width, 3) RGB, got shape {arr.shape}")
    if arr.shape[:2] != (size, size):
        img = Image.fromarray(np.clip(arr, 0, 255).round().astype(np.uint8), "RGB")
        arr = np.asarray(img.resize((size, size), Image.Resampling.BILINEAR), np.float32)
    return arr


def _missing(value: Any) -> bool:
    """An absent cell: None, or NaN/NA where a DataFrame mixes rows with other columns."""
    import pandas as pd

    return value is None or (np.ndim(value) == 0 and bool(pd.isna(value)))


def compiled_call(model: Any) -> Any:
    """`model` in inference mode as one function of a float32 batch, traced once."""
    import keras

    if keras.backend.backend() != "tensorflow":
        return model.predict_on_batch
    import tensorflow as tf

    size = tuple(model.input_shape[1:])
    spec = tf.TensorSpec((None, *size), tf.float32)  # any batch size: one trace
    return tf.function(lambda x: model(x, training=False), input_signature=[spec])


class Batcher:
    """Run concurrent callers' batches as one model call (MLflow serves in threads).

    The first caller runs the model on its batch; who arrives meanwhile queues, and when the
    model is free one of them runs it on everything queued, in order, for all of them.

    Args:
        call: Float32 batch in, probabilities out.
        max_batch: Images per model call at most (bounds memory and latency).
    """

    def __init__(self, call: Any, max_batch: int = 64):
        self.call, self.max_batch = call, max_batch
        self._cond = threading.Condition()
        self._pending: list[dict] = []
        self._running = False

    def __call__(self, x: np.ndarray) -> np.ndarray:
        job = {"x": x, "done": False, "out": None, "error": None}
        with self._cond:
            self._pending.append(job)
            while not job["done"]:
                if self._running:
                    self._cond.wait()
                    continue
                jobs, n = [], 0
                while self._pending and (
                    not jobs or n + len(self._pending[0]["x"]) <= self.max_batch
                ):
                    jobs.append(self._pending.pop(0))
                    n += len(jobs[-1]["x"])
                self._running = True
                self._cond.release()  # the model runs while others queue
                try:
                    self._run(jobs)
                finally:
                    self._cond.acquire()
                    self._running = False
                    self._cond.notify_all()
        if job["error"] is not None:
            raise job["error"]
        return job["out"]

    def _run(self, jobs: list[dict]) -> None:
        try:
            out = np.asarray(self.call(np.concatenate([j["x"] for j in jobs])), np.float64)
            start = 0
            for j in jobs:
                j["out"], start = out[start : start + len(j["x"])], start + len(j["x"])
        except Exception as exc:  # every request of this call fails with the model's error
            for j in jobs:
                j["error"] = exc
        finally:  # never leave a waiting request behind
            for j in jobs:
                j["done"] = True
                if j["out"] is None and j["error"] is None:
                    j["error"] = RuntimeError("the model call was interrupted")


class ImageClassifier:
    """The served model: a Keras classifier taking 0..255 RGB, and its class names.

    Args:
        model: The keras.Model.
        classes: Class names, by output index.
    """

    def __init__(self, model: Any, classes: list[str]):
        self.model = model
        self.classes = list(classes)
        self.size = int(model.input_shape[1])
        self.infer = Batcher(compiled_call(model))

    def pixels(self, rows: Any) -> np.ndarray:
        """The float32 (n, size, size, 3) batch of the input rows.

        Raises:
            BadInput: Naming every row that could not be read.
        """
        import pandas as pd
        from PIL import Image

        if isinstance(rows, dict):  # the served `{"inputs": {"image": [...]}}` form
            rows = pd.DataFrame({key: list(values) for key, values in rows.items()})
        frame = rows if isinstance(rows, pd.DataFrame) else None
        if frame is None or not ({"image", "pixels"} & set(frame.columns)):
            raise BadInput("expected rows with an 'image' (base64 of an image file) or 'pixels'")
        batch, errors = [], []
        for i, row in enumerate(frame.to_dict("records")):
            image, pixels = row.get("image"), row.get("pixels")
            try:
                if not _missing(image):
                    batch.append(_decode_image(image, self.size, Image.MAX_IMAGE_PIXELS))
                elif not _missing(pixels):
                    batch.append(_pixels(pixels, self.size))
                else:
                    raise BadInput("neither 'image' nor 'pixels' given")
            except BadInput as exc:
                errors.append(f"row {i}: {exc}")
        if errors:
            raise BadInput("; ".join(errors))
        return np.stack(batch).astype(np.float32)

    def predict(self, model_input: Any, params: dict | None = None) -> list[dict]:
        """Label and class probabilities per row (MLflow's pyfunc `predict`)."""
        try:
            x = self.pixels(model_input)
        except BadInput as exc:
            from mlflow.exceptions import INVALID_PARAMETER_VALUE, MlflowException

            raise MlflowException(str(exc), error_code=INVALID_PARAMETER_VALUE) from None
        proba = self.infer(x)
        return [
            {
                "label": self.classes[int(row.argmax())],
                "probabilities": {c: float(p) for c, p in zip(self.classes, row, strict=True)},
            }
            for row in proba
        ]


def _load_pyfunc(data_path: str) -> ImageClassifier:
    """MLflow's entry point (`loader_module`): the model folder's `data/` path."""
    import keras

    with open(os.path.join(data_path, CONFIG_FILE)) as fh:
        config = json.load(fh)
    model = keras.saving.load_model(os.path.join(data_path, "model.keras"))
    classifier = ImageClassifier(model, config["classes"])
    classifier.infer(np.zeros((1, *model.input_shape[1:]), np.float32))  # trace before serving
    return classifier
