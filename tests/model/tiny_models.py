"""Tiny trained models in train's output format, for the evaluate/register/predict tests.

Besides a real `train()` run (`SimpleCNN`, trained to well above chance), the behaviour
tests use hand-made models that take a second to fit: a `good` model separates the
fixture's stripe patterns, a `constant` model always answers class 0 (accuracy 1/3).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from bakeoff import tracking
from bakeoff.config.wiring import params_kwargs
from tests.conftest import make_image_folder, run_sections, write_split


def tiny_model(kind: str, x: np.ndarray, y: np.ndarray, n_classes: int, seed: int = 0):
    """A fitted keras model taking 0..255 RGB: `good` (learns the stripes) or `constant`."""
    import keras

    keras.utils.set_random_seed(seed)
    model = keras.Sequential(
        [
            keras.Input(x.shape[1:], name="image"),
            keras.layers.Rescaling(1 / 255),
            keras.layers.Conv2D(8, (1, 5), activation="relu"),
            keras.layers.Conv2D(8, (5, 1), activation="relu"),
            keras.layers.GlobalAveragePooling2D(),
            keras.layers.Dense(n_classes, activation="softmax", name="predictions"),
        ]
    )
    if kind == "good":
        model.compile(
            optimizer=keras.optimizers.Adam(0.02),
            loss="sparse_categorical_crossentropy",
            metrics=["accuracy"],
        )
        model.fit(x.astype("float32"), y, epochs=40, verbose=0)
    elif kind == "constant":
        dense = model.get_layer("predictions")
        kernel, bias = dense.get_weights()
        bias[:] = 0
        bias[0] = 10.0
        dense.set_weights([np.zeros_like(kernel), bias])
    else:
        raise ValueError(kind)
    return model


def make_trained(
    backbone: str,
    params,
    raw: Path,
    split: Path,
    models_dir: Path,
    kind: str = "good",
    status: str = "FINISHED",
    seed: int = 0,
) -> Path:
    """models/<backbone>/{model.keras,train.json} plus a real MLflow run with the logged model.

    Returns:
        The model folder.
    """
    from bakeoff.data.pixels import split_pixels

    size = params.train.image_size
    pixels = split_pixels(split, "train", raw, size, Path(models_dir).parent / "cache")
    x, y, classes = np.asarray(pixels.array()), pixels.labels, pixels.classes
    model = tiny_model(kind, x, y, len(classes), seed)
    out = Path(models_dir) / backbone
    out.mkdir(parents=True, exist_ok=True)
    model.save(out / "model.keras")
    root = Path(models_dir).parent
    with tracking.training_run(
        run_sections(params), backbone, None, {"data_version": "test"}, root
    ) as run_id:
        uri = tracking.log_keras_model(model, x[:1].astype("float32"), run_id, classes=classes)
    info = {
        "backbone": backbone,
        "run_id": run_id,
        "status": status,
        "image_size": size,
        "batch_size": params.train.batch_size,
        "epochs_run": 1,
        "best_epoch": 0,
        "val_accuracy": None,
        "val_loss": None,
        "train_seconds": 1.0,
        "weights": "none",
        "weights_sha256": None,
        "params": {},
        "classes": classes,
        "model_uri": uri,
        "data_version": "test",
    }
    (out / "train.json").write_text(json.dumps(info, indent=2))
    return out


def shrunk_params():
    """The real params shrunk as in tests/conftest.py `params`, for module-scoped fixtures."""
    import dataclasses

    from bakeoff.config.params import load_params
    from tests.conftest import REPO

    real = load_params(REPO / "params.yaml")
    train = dataclasses.replace(real.train, image_size=32, epochs=1, min_epochs=0, batch_size=8)
    evaluate = dataclasses.replace(real.evaluate, latency_repeats=3, latency_warmup=1)
    return dataclasses.replace(real, train=train, evaluate=evaluate)


def module_store(tmp_path_factory, monkeypatch) -> Path:
    """A project folder: params.yaml's relative sqlite store resolves to its mlruns/.

    A user's MLFLOW_TRACKING_URI is cleared: it would win, and receive the test runs.
    """
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    return tmp_path_factory.mktemp("bakeoff")


_SHARED: dict[str, tuple] = {}


def shared_project(tmp_path_factory, monkeypatch) -> tuple:
    """One tiny project for all model tests of a session (fitting and evaluating is slow):
    StripeNet learnt the data, Constant always answers class 0, SimpleCNN is a real
    `train()` run (the recipe with a frozen pretrained base: here a randomly initialised
    one, whose features still separate the stripes); all logged to MLflow and evaluated.
    Tests isolate themselves with their own registered model names.

    Returns:
        (root, params, raw_dir, split_dir); root holds models/, metrics/, plots/, mlruns/.
    """
    import dataclasses

    from bakeoff.backbone.build import build_base
    from bakeoff.evaluate.stage import evaluate
    from bakeoff.train.stage import train

    if "project" not in _SHARED:
        root = module_store(tmp_path_factory, monkeypatch)
        params = shrunk_params()
        raw = make_image_folder(root / "raw")
        split = write_split(raw, root / "split")
        for name, kind in (("StripeNet", "good"), ("Constant", "constant")):
            make_trained(name, params, raw, split, root / "models", kind)
        weights = root / "SimpleCNN.weights.h5"
        build_base("SimpleCNN", params.train.image_size).save_weights(weights)
        recipe = dataclasses.replace(
            params.train, weights=str(weights), epochs=8, min_epochs=8, batch_size=4,
            learning_rate=0.02, cache_features=True, augment=False, fine_tune_layers=0,
        )  # fmt: skip
        untuned = dataclasses.replace(params.tune, trials=0)  # the default head: fast enough
        train("SimpleCNN", recipe, split, raw, root / "models" / "SimpleCNN",
              root / "state" / "SimpleCNN", root / "plots" / "SimpleCNN", tune=untuned,
              tracking_params=params.tracking, cache_dir=root / "cache", root=root)  # fmt: skip
        for name in ("StripeNet", "Constant", "SimpleCNN"):
            evaluate(
                name,
                split_dir=split,
                image_root=raw,
                model_dir=root / "models" / name,
                metrics_path=root / "metrics" / f"{name}.json",
                plots_dir=root / "plots" / name,
                cache_dir=root / "cache",
                root=root,
                **params_kwargs(params, name)["evaluate"],
            )
        _SHARED["project"] = (root, params, raw, split)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    tracking.configure(_SHARED["project"][1].tracking, _SHARED["project"][0])
    return _SHARED["project"]


def register_champion(project, backbone: str, model_name: str) -> str:
    """Register `backbone` of the shared project as `model_name`'s champion; its URI."""
    import dataclasses

    from bakeoff.register.stage import register

    root, params, raw, split = project
    params = dataclasses.replace(
        params, register=dataclasses.replace(params.register, model_name=model_name)
    )
    out = root / "reports" / f"register_{model_name}.json"
    decision = register(
        params.register, [backbone], root / "models", root / "metrics", split, raw, out,
        seed=params.seed, bootstrap=params.bootstrap, budgets=params.budgets,
        tracking_params=params.tracking, cache_dir=root / "cache", root=root,
    )  # fmt: skip
    assert decision.report["decision"] == "promoted", decision.report
    return f"models:/{model_name}@champion"


def project_store(project) -> str:
    """The shared project's MLflow store (params.yaml's relative URI under its root)."""
    return f"sqlite:///{project[0] / 'mlruns' / 'mlflow.db'}"
