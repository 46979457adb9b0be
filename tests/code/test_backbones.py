"""The backbone registry: every entry builds and trains; weights come from where they should."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from bakeoff.backbone import build as backbones
from bakeoff.backbone.registry import REGISTRY, cached_weights, get_backbone
from bakeoff.errors import BakeoffError
from bakeoff.model import loading

MOBILENET_FILE = "mobilenet_1_0_224_tf_no_top.h5"  # Keras's name for any non-listed size
# The smallest of most families builds in the default suite (~35 s on 2 cores); the rest,
# up to 350M parameters (ConvNeXtXLarge), in the slow suite (~5 min).
FAST_BUILDS = {
    "SimpleCNN", "MobileNetV3Small", "MobileNet", "MobileNetV2", "EfficientNetB0",
    "EfficientNetV2B0", "ConvNeXtTiny", "ResNet50", "ResNet50V2", "DenseNet121",
    "InceptionV3", "Xception", "VGG16", "VGG19",
}  # fmt: skip


def _same_weights(a: keras.Model, b: keras.Model) -> bool:
    wa, wb = a.get_weights(), b.get_weights()
    return len(wa) == len(wb) and all(np.array_equal(x, y) for x, y in zip(wa, wb, strict=True))


def test_the_registry_has_every_keras_application_and_simple_cnn():
    applications = {n for n in dir(keras.applications) if n[0].isupper()}
    assert len(applications) == 40
    assert set(REGISTRY) == applications | {"SimpleCNN"}


@pytest.mark.parametrize(
    "name",
    [n if n in FAST_BUILDS else pytest.param(n, marks=pytest.mark.slow) for n in REGISTRY],
)
def test_every_backbone_builds_at_its_smallest_size(name):
    size = get_backbone(name).min_size
    base = backbones.build_base(name, size)  # random weights
    features = base(np.zeros((1, size, size, 3), "float32"), training=False)
    assert len(features.shape) == 2 and features.shape[0] == 1 and features.shape[1] > 0


@pytest.mark.parametrize("name", ["SimpleCNN", "MobileNetV2", "VGG16", "DenseNet121"])
def test_backbones_of_each_preprocessing_mode_train_a_step(name):
    size = get_backbone(name).min_size
    model = backbones.build_model(name, n_classes=3, image_size=size, weights="none")
    # Eager: tracing a graph costs more than one step on four tiny images.
    model.compile("adamax", "categorical_crossentropy", run_eagerly=True)
    x = np.random.default_rng(0).uniform(0, 255, (4, size, size, 3)).astype("float32")
    y = keras.utils.to_categorical([0, 1, 2, 0], 3)
    before = [w.copy() for w in backbones.base_layer(model).get_weights()]
    loss = model.train_on_batch(x, y)
    probs = model.predict_on_batch(x)
    assert np.isfinite(loss)
    assert probs.shape == (4, 3)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)
    after = backbones.base_layer(model).get_weights()
    assert any(not np.array_equal(b, a) for b, a in zip(before, after, strict=True)), (
        "weights none: the whole network trains"
    )


def test_unknown_backbone_lists_the_known_names():
    with pytest.raises(BakeoffError, match="unknown backbone 'ResNet9000'") as err:
        get_backbone("ResNet9000")
    for name in ("MobileNetV2", "EfficientNetB0", "SimpleCNN", "VGG16"):
        assert name in str(err.value)


def test_image_size_below_minimum_is_an_error():
    with pytest.raises(BakeoffError, match="below VGG16's minimum of 32"):
        backbones.build_model("VGG16", 3, image_size=24)
    with pytest.raises(BakeoffError, match="below InceptionV3's minimum of 75"):
        backbones.build_base("InceptionV3", 64)


@pytest.mark.parametrize("family", sorted({e.family for e in REGISTRY.values() if e.family}))
def test_each_preprocessing_mode_matches_its_keras_preprocess_input(family):
    mode = next(e.preprocess for e in REGISTRY.values() if e.family == family)
    assert all(e.preprocess == mode for e in REGISTRY.values() if e.family == family)
    x = np.random.default_rng(2).uniform(0, 255, (2, 8, 8, 3)).astype("float32")
    ours = x
    for layer in backbones.preprocessing(mode):
        ours = layer(ours)
    expected = getattr(keras.applications, family).preprocess_input(x.copy())
    np.testing.assert_allclose(keras.ops.convert_to_numpy(ours), expected, atol=1e-4)


def test_nasnet_imagenet_weights_fit_their_one_size_and_names_come_from_keras(
    tmp_path, monkeypatch
):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    with pytest.raises(BakeoffError, match="NASNetMobile's ImageNet weights fit 224 px only"):
        backbones.build_model("NASNetMobile", 3, 96, weights="imagenet")
    path, url = cached_weights("NASNetLarge", 331)
    # Keras caches it under another name than the file it downloads.
    assert path == tmp_path / "models" / "nasnet_large_no_top.h5"
    assert url.endswith("/nasnet/NASNet-large-no-top.h5")
    assert cached_weights("MobileNetV2", 160)[0].name.endswith("_1.0_160_no_top.h5")


def test_imagenet_weights_come_from_the_keras_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    reference = backbones.build_base("MobileNet", 32)
    (tmp_path / "models").mkdir()
    # Keras's ImageNet files are legacy HDF5 under exactly this name.
    keras.saving.save_model(reference, tmp_path / "models" / MOBILENET_FILE)
    model = backbones.build_model("MobileNet", 3, 32, weights="imagenet")
    base = backbones.base_layer(model)
    assert _same_weights(base, reference)
    assert not base.trainable, "pretrained base is frozen in phase 1"


def test_missing_imagenet_weights_name_the_file_and_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    with pytest.raises(BakeoffError) as err:
        backbones.build_model("MobileNet", 3, 32, weights="imagenet")
    assert MOBILENET_FILE in str(err.value)
    assert str(tmp_path / "models") in str(err.value)
    assert "`bakeoff fetch-weights DIR` fetches every backbone's weights" in str(err.value)


def test_weights_file_is_loaded_and_missing_file_is_an_error(tmp_path):
    reference = backbones.build_base("SimpleCNN", 32)
    path = tmp_path / "simple.weights.h5"
    reference.save_weights(path)
    model = backbones.build_model("SimpleCNN", 3, 32, weights=str(path))
    assert _same_weights(backbones.base_layer(model), reference)
    with pytest.raises(BakeoffError, match="no weights file at"):
        backbones.build_model("SimpleCNN", 3, 32, weights=str(tmp_path / "nope.weights.h5"))


def test_saved_models_preprocess_like_keras_and_load_without_bakeoff(tmp_path):
    # tf, caffe, torch, and "none" as MobileNetV3's own rescaling layers.
    cases = {"MobileNetV2": "mobilenet_v2", "VGG16": "vgg16", "DenseNet121": "densenet",
             "MobileNetV3Small": None}  # fmt: skip
    _check_saved_models_load_without_bakeoff(tmp_path, cases)


@pytest.mark.slow
def test_saved_models_with_their_own_preprocessing_load_without_bakeoff(tmp_path):
    # The other kinds of "none": Rescaling + Normalization (EfficientNet, EfficientNetV2),
    # ConvNeXt's own layers (LayerScale, StochasticDepth); NASNet's tf mode.
    cases = {"EfficientNetB0": None, "EfficientNetV2B0": None, "ConvNeXtTiny": None,
             "NASNetMobile": "nasnet"}  # fmt: skip
    _check_saved_models_load_without_bakeoff(tmp_path, cases)


def _check_saved_models_load_without_bakeoff(tmp_path, cases: dict[str, str | None]) -> None:
    """Each model matches keras.applications' preprocessing, and loads (same outputs) in a
    process where bakeoff cannot be imported."""
    import json
    import subprocess
    import sys

    from tests.conftest import no_bakeoff_env

    x = np.random.default_rng(1).uniform(0, 255, (2, 32, 32, 3)).astype("float32")
    for name, module in cases.items():
        model = backbones.build_model(name, 3, 32)
        if module:
            prefix = keras.Model(model.inputs, model.get_layer("preprocess").output)
            expected = getattr(keras.applications, module).preprocess_input(x.copy())
            np.testing.assert_allclose(prefix.predict_on_batch(x), expected, atol=1e-4)
        model.save(tmp_path / f"{name}.keras")
        np.save(tmp_path / f"{name}.npy", model.predict_on_batch(x))
    np.save(tmp_path / "x.npy", x)
    script = (
        "import json, sys, keras, numpy as np\n"
        "x = np.load('x.npy')\n"
        "print(json.dumps({n: float(np.abs(keras.saving.load_model(n + '.keras')"
        ".predict_on_batch(x) - np.load(n + '.npy')).max()) for n in sys.argv[1:]}))\n"
    )
    env = no_bakeoff_env(tmp_path / "no_bakeoff")
    done = subprocess.run([sys.executable, "-c", script, *cases], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    diffs = json.loads(done.stdout.strip().splitlines()[-1])
    assert set(diffs) == set(cases) and max(diffs.values()) < 1e-5, diffs


def test_models_with_the_old_preprocess_layer_still_load_in_bakeoff(tmp_path):
    inputs = keras.Input((32, 32, 3))
    x = loading.Preprocess("vgg16", name="preprocess")(inputs)
    outputs = keras.layers.Dense(2)(keras.layers.GlobalAveragePooling2D()(x))
    keras.Model(inputs, outputs).save(tmp_path / "old.keras")
    loaded = loading.load_trained(tmp_path / "old.keras")
    assert loaded.get_layer("preprocess").mode == "vgg16"


def _legacy_h5(model: keras.Model, path) -> str:
    """`model` saved whole in Keras 2's HDF5 format (weights matched by layer name)."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Keras's "legacy format" advice
        model.save(path)
    return str(path)


def test_a_weights_file_that_misses_layers_is_refused_naming_them(tmp_path):
    """By-name loading would skip what does not match and leave those layers random."""
    other = tmp_path / "mobilenet.weights.h5"  # another architecture's base
    backbones.build_base("MobileNet", 32).save_weights(other)
    with pytest.raises(BakeoffError) as err:
        backbones.build_model("SimpleCNN", 3, 32, weights=str(other))
    message = str(err.value)
    assert f"weights file {other} does not fit SimpleCNN at 32 px" in message
    # Keras keys a .weights.h5 by class and rank: named here by the base's own layer names.
    assert "have other shapes: block0_conv1 (layers/conv2d_1): file [(1, 1, 32, 64)]" in message
    assert "in the file are not in the base: layers/batch_normalization_10" in message
    assert "save_weights" in message and "set train.weights" in message

    # A whole classifier in legacy HDF5: its head is fine, a missing base layer is not.
    base = backbones.build_base("SimpleCNN", 32)
    head = keras.layers.Dense(3, name="predictions")(base.output)
    whole = _legacy_h5(keras.Model(base.input, head), tmp_path / "classifier.h5")
    model = backbones.build_model("SimpleCNN", 3, 32, weights=whole)
    assert _same_weights(backbones.base_layer(model), base)
    inputs = keras.Input((32, 32, 3))
    partial = keras.layers.Conv2D(16, 3, name="block0_conv0")(inputs)  # 16 filters, not 32
    short = _legacy_h5(keras.Model(inputs, partial), tmp_path / "short.h5")
    with pytest.raises(BakeoffError) as err:
        backbones.build_model("SimpleCNN", 3, 32, weights=short)
    message = str(err.value)
    assert "are not in the file: block0_bn0, block0_conv1" in message
    assert (
        "1 have other shapes: block0_conv0: file [(3, 3, 3, 16), (16,)], base [(3, 3, 3, 32)]"
        in message
    )
