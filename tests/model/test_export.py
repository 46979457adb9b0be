"""Stage `export`: four TFLite variants of a trained model, each re-evaluated with LiteRT."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from bakeoff import tracking
from bakeoff.config.wiring import params_kwargs
from bakeoff.errors import BakeoffError
from tests.conftest import run_sections
from tests.model.tiny_models import shared_project

VARIANTS = ["float32", "float16", "dynamic_range", "int8"]


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    with pytest.MonkeyPatch.context() as mp:
        yield shared_project(tmp_path_factory, mp)


def _params(params, **export):
    return dataclasses.replace(params, export=dataclasses.replace(params.export, **export))


def _export(project, backbone, params=None, tag="x"):
    from bakeoff.export.stage import export

    root, base, raw, split = project
    params = params or _params(base, representative_images=12)
    params = dataclasses.replace(
        params, evaluate=dataclasses.replace(params.evaluate, latency_repeats=3)
    )
    out = root / "reports" / f"export_{tag}.json"
    result = export(
        backbone=backbone, split_dir=split, image_root=raw, models_dir=root / "models",
        exports_dir=root / f"exports_{tag}", out_path=out, cache_dir=root / "cache", root=root,
        **params_kwargs(params)["export"],
    )  # fmt: skip
    assert json.loads(out.read_text()) == result.report
    return result.report


def _logged(run_id: str) -> set[str]:
    from mlflow import MlflowClient

    client = MlflowClient(tracking.tracking_uri())
    return {a.path for a in client.list_artifacts(run_id, "export")}


def _variants_table(run_id: str):
    from mlflow import MlflowClient

    client = MlflowClient(tracking.tracking_uri())
    experiment_id = client.get_run(run_id).info.experiment_id
    return client.load_table(experiment_id, "export/tflite_variants.json", run_ids=[run_id])


def test_every_variant_of_a_trained_model_stays_within_the_threshold(project):
    """SimpleCNN from a real (shrunk) training run: its head BatchNorm gets folded."""
    report = _export(project, "SimpleCNN", tag="simple")
    assert report["head_bn_folded"] is True
    assert [v["variant"] for v in report["variants"]] == VARIANTS
    keras_accuracy = report["keras"]["test_accuracy"]
    for v in report["variants"]:
        assert abs(v["test_accuracy"] - keras_accuracy) <= 0.02, v
        assert v["accuracy_change"] == pytest.approx(v["test_accuracy"] - keras_accuracy)
        assert v["recommended"] and v["note"] == ""
        assert v["latency_ms_b1"] > 0 and v["size_mb"] > 0
    by_name = {v["variant"]: v for v in report["variants"]}
    assert by_name["float32"]["agreement"] == 1.0
    assert by_name["float32"]["max_probability_diff"] < 1e-4
    int8 = by_name["int8"]
    # Raw camera pixels go straight in: uint8 input, identity quantization.
    assert (int8["input_dtype"], int8["input_scale"], int8["input_zero_point"]) == ("uint8", 1, 0)
    assert int8["per_channel_tensors"] > 0  # per-channel weights stayed on
    # Quantized weights shrink the file: float16 about half, int8 about a quarter.
    assert by_name["float16"]["size_mb"] < 0.6 * by_name["float32"]["size_mb"]
    assert int8["size_mb"] < 0.35 * by_name["float32"]["size_mb"]
    assert report["pick"] in VARIANTS
    run_id = json.loads((project[0] / "models" / "SimpleCNN" / "train.json").read_text())["run_id"]
    assert _logged(run_id) == {f"export/{v}.tflite" for v in VARIANTS} | {
        "export/export_simple.json",
        "export/tflite_variants.json",
    }
    # The variants are a table on the run, not metrics beside the backbones' comparison.
    assert not any(k.startswith("tflite_") for k in tracking.run_info(run_id)["metrics"])
    table = _variants_table(run_id).set_index("variant")
    assert table["test_accuracy"]["int8"] == round(int8["test_accuracy"], 4)


def test_default_is_the_champion(project):
    """StripeNet learnt the data: the int8 variant keeps its accuracy on the test images."""
    from bakeoff.register.stage import register

    root, params, raw, split = project
    params = dataclasses.replace(
        params, register=dataclasses.replace(params.register, model_name="exported")
    )
    with pytest.raises(BakeoffError, match="no champion for model 'exported'"):
        _export(project, None, _params(params, representative_images=12), tag="none")
    out = root / "reports" / "register_exported.json"
    register(params.register, ["StripeNet"], root / "models", root / "metrics", split, raw, out,
             seed=params.seed, bootstrap=params.bootstrap, budgets=params.budgets,
             tracking_params=params.tracking, cache_dir=root / "cache", root=root)  # fmt: skip
    report = _export(project, None, _params(params, representative_images=12), tag="champ")
    assert (report["backbone"], report["version"]) == ("StripeNet", "1")
    assert report["source"] == "champion: exported version 1"
    assert report["keras"]["test_accuracy"] >= 0.8
    for v in report["variants"]:
        assert v["test_accuracy"] >= report["keras"]["test_accuracy"] - 0.02, v
    assert (root / "exports_champ" / "StripeNet" / "int8.tflite").is_file()


def test_int8_loses_a_model_with_an_outlier_activation_and_is_not_recommended(project):
    """StripeNet with its 8 features scaled by 1e-3 next to a constant 1e4 feature, undone
    by the next layer: exact in float, but int8 gives that tensor one scale (1e4/255) and
    rounds the real features to zero, so every image gets the same answer."""
    import keras

    root, params, _, _ = project
    model = keras.saving.load_model(root / "models" / "StripeNet" / "model.keras")
    dense = model.get_layer("predictions")
    kernel, bias = dense.get_weights()
    n = kernel.shape[0]
    spread = keras.layers.Dense(n + 1, activation="relu", name="spread")
    head = keras.layers.Dense(kernel.shape[1], activation="softmax", name="predictions")
    outlier = keras.Model(model.inputs, head(spread(dense.input)))
    spread_kernel = np.zeros((n, n + 1), "float32")
    spread_kernel[:, :n] = np.eye(n) * 1e-3
    spread.set_weights([spread_kernel, np.array([0.0] * n + [1e4], "float32")])
    head.set_weights([np.concatenate([kernel * 1e3, np.zeros((1, kernel.shape[1]))]), bias])
    folder = root / "models" / "Outlier"
    folder.mkdir(parents=True)
    outlier.save(folder / "model.keras")
    info = json.loads((root / "models" / "StripeNet" / "train.json").read_text())
    with tracking.training_run(run_sections(params), "Outlier", None, {}, root) as run_id:
        pass
    (folder / "train.json").write_text(json.dumps(info | {"run_id": run_id}))

    report = _export(project, "Outlier", tag="outlier")
    by_name = {v["variant"]: v for v in report["variants"]}
    assert report["keras"]["test_accuracy"] >= 0.8
    assert by_name["float32"]["recommended"] and by_name["float16"]["recommended"]
    int8 = by_name["int8"]
    assert not int8["recommended"] and int8["accuracy_change"] < -0.3
    assert f"loses {-int8['accuracy_change']:.4f} test accuracy" in int8["note"]
    assert report["pick"] != "int8"
    # XNNPACK refuses this graph's requantization; the builtin kernels run it, and say so.
    assert int8["kernels"].startswith("builtin (XNNPACK refused it:")
    assert by_name["float32"]["kernels"] == "XNNPACK"


def test_a_variant_that_loses_more_than_the_threshold_is_not_recommended():
    from bakeoff.export.stage import verdict

    assert verdict(0.84, 0.85, 0.02) == (True, "")
    assert verdict(0.83, 0.85, 0.02) == (True, "")  # exactly the threshold
    assert verdict(0.86, 0.85, 0.0) == (True, "")
    ok, note = verdict(0.80, 0.85, 0.02)
    assert not ok
    assert note == (
        "not recommended: loses 0.0500 test accuracy (0.8500 -> 0.8000), "
        "more than export.max_accuracy_drop = 0.02"
    )
