"""Logging a trained model so that it loads and serves with MLflow alone.

One logged model, two flavours over the same `model.keras`:
- `keras`: `mlflow.keras.load_model(uri)` gives the Keras model (0..255 RGB in);
- `python_function`: `mlflow.pyfunc.load_model(uri)` and `mlflow models serve` take base64
  image files (or pixels) and answer labels with class probabilities (`served.py`).
Both work in a Python that has never imported bakeoff: the model holds only Keras's and
keras-hub's layers, and its `code/bakeoff_serving/` package carries the serving code and the
decoder.
"""

from __future__ import annotations

import base64
import io
import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

from bakeoff.tracking import outage
from bakeoff.tracking.store import mlflow_client

PACKAGE = "bakeoff_serving"  # the code's name inside a logged model, distinct from bakeoff
_SRC = Path(__file__).resolve().parents[1]
# What the package holds: the serving module and a verbatim copy of training's decoder.
_SHIPPED = {"served.py": _SRC / "tracking" / "served.py", "images.py": _SRC / "data" / "images.py"}


def png_base64(pixels: Any) -> str:
    """The base64 of a PNG file of (height, width, 3) 0..255 pixels: a served input row."""
    import numpy as np
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(np.asarray(pixels).clip(0, 255).astype(np.uint8), "RGB").save(buffer, "PNG")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _signature(example, output) -> Any:
    from mlflow.models import ModelSignature, infer_signature
    from mlflow.types.schema import Array, ColSpec, Schema

    inputs = Schema(
        [
            ColSpec("string", "image", required=False),
            ColSpec(Array(Array(Array("long"))), "pixels", required=False),
        ]
    )
    return ModelSignature(inputs=inputs, outputs=infer_signature(example, output).outputs)


class _ServableKeras:
    """A flavour module for `mlflow.models.Model.log`: saves both flavours in one folder."""

    __name__ = "keras"

    @staticmethod
    def save_model(
        path: str,
        mlflow_model: Any,
        model: Any,
        classes: list[str],
        example,
        validate_serving_input: bool = True,  # Model.log's own option, passed on to here
    ) -> None:
        import keras
        import mlflow

        from bakeoff.tracking import served

        with tempfile.TemporaryDirectory() as tmp:
            data, code = Path(tmp) / "model", Path(tmp) / PACKAGE
            data.mkdir()
            model.save(data / "model.keras")
            (data / served.CONFIG_FILE).write_text(json.dumps({"classes": list(classes)}))
            code.mkdir()
            (code / "__init__.py").write_text(
                '"""bakeoff\'s serving code, shipped with a model."""\n'
            )
            for name, source in _SHIPPED.items():
                shutil.copy(source, code / name)
            output = served.ImageClassifier(model, classes).predict(example)
            mlflow.pyfunc.save_model(
                path,
                loader_module=f"{PACKAGE}.served",
                data_path=str(data),
                code_paths=[str(code)],
                mlflow_model=mlflow_model,
                signature=_signature(example, output),
                input_example=example,
                # Pinned here: inferring them reloads the model in a subprocess (seconds).
                pip_requirements=_pip_requirements(model),
            )
        # The keras flavour reads <data>/model.keras, the same file the pyfunc serves.
        mlflow_model.add_flavor(
            "keras",
            data="data/model",
            keras_version=keras.__version__,
            keras_backend=keras.backend.backend(),
            save_exported_model=False,
        )
        mlflow_model.save(str(Path(path) / "MLmodel"))


def log_keras_model(
    model: Any, input_example: Any, run_id: str, classes: list[str], name: str = "model"
) -> str:
    """Log a Keras classifier with both flavours, a signature and an input example.

    The logged model is filed under its run's experiment (MLflow's `Model.log` would file
    it under the active experiment, `Default` for a run given by id), so the run page and
    the runs table's Models column link it.

    Args:
        model: The keras.Model (0..255 RGB in, softmax out).
        input_example: A batch of model inputs (n, size, size, 3); the first image becomes
            the logged input example, as a base64 PNG.
        run_id: The run the model belongs to.
        classes: Class names by output index (served with the probabilities; also in the
            model metadata, where predict reads them).
        name: The model's name (the backbone, with the seed when there are several).

    Returns:
        The model URI (`models:/m-...`).
    """
    import keras
    import pandas as pd
    from mlflow.models import Model

    client = mlflow_client()
    if getattr(model, "optimizer", None) is not None:
        # An inference copy: the optimizer's slots would double or triple the artifact.
        model = keras.Model(model.inputs, model.outputs, name=model.name)
    example = pd.DataFrame({"image": [png_base64(input_example[0])]})
    run = outage.call(lambda: client.get_run(run_id), f"read run {run_id}")
    logged = outage.call(
        lambda: client.create_logged_model(
            run.info.experiment_id, name, source_run_id=run_id, params=dict(run.data.params)
        ),
        f"create the logged model of run {run_id}",
    )
    info = outage.call(
        lambda: Model.log(
            artifact_path=None,
            name=name,
            model_id=logged.model_id,
            flavor=_ServableKeras,
            run_id=run_id,
            metadata={"classes": list(classes)},
            model=model,
            classes=classes,
            example=example,
            # MLflow would load the saved model back from disk and predict the example, only
            # to log a warning if that failed (4-7 s for EfficientNetB0). `save_model` has
            # already run the example through the serving code, where a failure is an error.
            validate_serving_input=False,
        ),
        f"log the model of run {run_id}",
    )
    return info.model_uri


def _uses_keras_hub(model: Any) -> bool:
    """A layer of `model` (nested models included) is a keras-hub class."""
    layers = getattr(model, "layers", None) or []
    return type(model).__module__.startswith("keras_hub") or any(map(_uses_keras_hub, layers))


def _pip_requirements(model: Any = None) -> list[str]:
    """The pinned packages that load and serve `model` (keras-hub when a layer is one of its:
    Keras imports keras-hub by module name when it loads the model)."""
    from importlib import metadata

    reqs = []
    dists = ["keras", "tensorflow-cpu", "tensorflow", "pillow", "numpy", "pandas"]
    if model is not None and _uses_keras_hub(model):
        dists.append("keras-hub")
    for dist in dists:
        try:
            reqs.append(f"{dist}=={metadata.version(dist)}")
        except metadata.PackageNotFoundError:
            continue
    if any(r.startswith("tensorflow-cpu==") for r in reqs):
        reqs = [r for r in reqs if not r.startswith("tensorflow==")]
    return reqs
