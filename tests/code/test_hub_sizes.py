"""keras-hub backbones at image sizes other than the preset's own: what carries over, what is
resampled, and which sizes are refused."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from tests.model.tiny_hub import hub_params, tiny_hub_backbone

OWN = 56  # the tiny presets' own size: a 4x4 grid of 14 px patches
PREFIX = {"vit": 1, "deit": 2, "siglip": 0, "clip": 1}  # class (and distillation) rows


def _save(family: str, folder, size: int) -> list[tuple[str, np.ndarray]]:
    """A tiny preset of `family` at `size` px with every float weight random; its weights."""
    model = tiny_hub_backbone(family, size)
    rng = np.random.default_rng(0)
    for v in model.weights:
        if v.path.endswith("position_ids"):  # what real presets hold (CLIP builds zeros)
            v.assign(np.arange(v.shape[-1])[None])
        elif "float" in str(v.dtype):  # zero-initialised tokens and biases would prove nothing
            v.assign(rng.normal(size=v.shape).astype("float32"))
    model.save_to_preset(str(folder))
    return [(v.path, np.asarray(v)) for v in model.weights]


@pytest.fixture
def source(tmp_path):
    """Saves a tiny preset of a family and registers it as the backbone `tiny-<family>`."""
    from bakeoff.backbone.hub_sources import register_sources

    def make(family: str, size: int = OWN) -> list[tuple[str, np.ndarray]]:
        saved = _save(family, tmp_path / family, size)
        register_sources({f"tiny-{family}": str(tmp_path / family)})
        return saved

    yield make
    register_sources({})


def _load(family: str, size: int):
    """The backbone bakeoff loads for `tiny-<family>` at `size` px (pretrained), after the
    size check params run."""
    from bakeoff.backbone.hub import load_hub_backbone
    from bakeoff.backbone.hub_sources import hub_spec
    from bakeoff.backbone.registry import check_image_size

    check_image_size(f"tiny-{family}", size, "imagenet")
    return load_hub_backbone(hub_spec(f"tiny-{family}"), size, pretrained=True)


@pytest.mark.parametrize("size", [42, 84], ids=["shrink", "grow"])
@pytest.mark.parametrize("family", ["vit", "deit", "siglip", "clip"])
def test_a_pretrained_vit_style_preset_runs_at_another_size(family, size, source):
    from bakeoff.backbone.hub import pooled

    saved = source(family)
    backbone = _load(family, size)
    images = np.random.default_rng(1).normal(size=(2, size, size, 3)).astype("float32")
    assert pooled(backbone, family, size).predict_on_batch(images).shape == (2, 16)

    loaded = [np.asarray(v) for v in backbone.weights]
    assert len(loaded) == len(saved)
    resized = [i for i, (_, w) in enumerate(saved) if w.shape != loaded[i].shape]
    # Every weight but the vision tower's position table (and its position ids) as saved.
    for i, (path, weights) in enumerate(saved):
        if i not in resized:
            np.testing.assert_array_equal(loaded[i], weights, err_msg=path)
    names = sorted(saved[i][0].rsplit("/", 1)[-1] for i in resized)
    ids = [i for i in resized if saved[i][0].endswith("position_ids")]
    table = next(i for i in resized if i not in ids)
    assert names == (["embeddings", "position_ids"] if family in ("siglip", "clip") else
                     ["embeddings" if family == "vit" else "position_embedding"])  # fmt: skip

    grid = size // 14
    old, new = saved[table][1].reshape(-1, 16), loaded[table].reshape(-1, 16)
    prefix = PREFIX[family]
    assert new.shape == (prefix + grid * grid, 16)
    np.testing.assert_array_equal(new[:prefix], old[:prefix])  # class / distillation rows
    want = tf.image.resize(
        old[prefix:].reshape(1, 4, 4, 16), (grid, grid), method="bicubic", antialias=size < OWN
    )
    np.testing.assert_allclose(new[prefix:], want.numpy().reshape(-1, 16), atol=1e-6, rtol=0)
    for i in ids:  # the new table is read in order, row by row
        np.testing.assert_array_equal(loaded[i], np.arange(prefix + grid * grid)[None])


@pytest.mark.parametrize("family", ["vit", "deit", "siglip", "clip"])
def test_the_presets_own_size_keeps_every_weight_as_saved(family, source):
    saved = source(family)
    backbone = _load(family, OWN)
    assert len(backbone.weights) == len(saved)
    for v, (path, weights) in zip(backbone.weights, saved, strict=True):
        np.testing.assert_array_equal(np.asarray(v), weights, err_msg=path)


@pytest.mark.filterwarnings("ignore:.*unbuilt state:UserWarning")
def test_swin_takes_the_sizes_its_windows_fit_and_names_the_nearest_otherwise(source):
    """The tiny Swin: 2 px patches, 2 stages (4-fold), 7x7 windows: multiples of 4 from 28."""
    import keras_hub

    from bakeoff.backbone.hub import pooled
    from bakeoff.backbone.hub_sources import hub_spec
    from bakeoff.backbone.registry import check_image_size
    from bakeoff.errors import BakeoffError

    saved = source("swin", 28)
    backbone = _load("swin", 36)  # last stage 9x9: padded to whole windows
    images = np.random.default_rng(1).normal(size=(2, 36, 36, 3)).astype("float32")
    assert pooled(backbone, "swin", 36).predict_on_batch(images).shape == (2, 16)
    for v, (path, weights) in zip(backbone.weights, saved, strict=True):
        np.testing.assert_array_equal(np.asarray(v), weights, err_msg=path)

    rule = r"tiny-swin takes image sizes that are multiples of 4 from 28 up .*7x7 attention"
    with pytest.raises(BakeoffError, match=rf"{rule}.* not 24: set train\.overrides\.tiny-swin"
                                           r"\.image_size to 28$"):  # fmt: skip
        check_image_size("tiny-swin", 24, "none")
    with pytest.raises(BakeoffError, match=rf"{rule}.* not 30: .*image_size to 28 or 32$"):
        check_image_size("tiny-swin", 30, "imagenet")
    # Refused because keras-hub cannot build it: its last stage would be 6x6, under one window.
    with pytest.raises(ValueError):
        keras_hub.models.Backbone.from_preset(hub_spec("tiny-swin").source, image_shape=(24, 24, 3))


def test_params_name_the_swin_sizes_and_let_vits_shrink():
    from bakeoff.errors import BakeoffError

    vit = "vit_base_patch16_224_imagenet"
    assert hub_params([vit], image_size=160).backbones == [vit]
    swin = "swin_tiny_patch4_window7_224"
    with pytest.raises(BakeoffError, match=rf"not 160: set train\.overrides\.{swin}\.image_size "
                                           "to 224$"):  # fmt: skip
        hub_params([swin], image_size=160)
    with pytest.raises(BakeoffError, match=r"of 32 from 224 up .* not 240: .* 224 or 256"):
        hub_params([swin], image_size=240)


def test_a_weight_other_than_the_position_table_that_changes_shape_is_refused_by_name():
    import keras

    from bakeoff.backbone.hub_resize import _copy_weights
    from bakeoff.errors import BakeoffError

    def model(width: int) -> keras.Model:
        pixels = keras.Input((width,))
        return keras.Model(pixels, keras.layers.Dense(2, name="head")(pixels))

    with pytest.raises(BakeoffError, match=r"tiny: weight head/kernel is \(3, 2\) .*: set it"):
        _copy_weights(model(3), model(5), "tiny", "set it")


def test_a_saved_model_at_another_size_reloads_and_answers_the_same(source, tmp_path):
    import keras
    import keras_hub

    from bakeoff.backbone.build import build_model

    source("clip")
    keras_hub.layers.ImageConverter(image_size=(OWN, OWN), scale=1 / 255).save_to_preset(
        str(tmp_path / "clip")
    )
    model = build_model("tiny-clip", 3, 42, "imagenet")
    images = np.random.default_rng(2).uniform(0, 255, size=(2, 42, 42, 3)).astype("float32")
    model.save(tmp_path / "model.keras")
    again = keras.models.load_model(tmp_path / "model.keras")
    np.testing.assert_allclose(
        again.predict_on_batch(images), model.predict_on_batch(images), atol=1e-6
    )
