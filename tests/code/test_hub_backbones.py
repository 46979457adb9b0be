"""keras-hub backbones: the static preset table, each family's features, the converter."""

from __future__ import annotations

import re

import keras_hub
import numpy as np
import pytest

from bakeoff.backbone.hub_presets import FAMILIES, HUB_PRESETS
from tests.model.tiny_hub import hub_params, save_tiny_dinov2, tiny_hub_backbone

K = keras_hub.models


def test_the_preset_table_is_keras_hubs_own_list():
    """Every image-backbone preset of the seven families, with keras-hub's parameters and
    handle, and the image size and patch the preset documents (its name, else its
    description, else the backbone class's default)."""
    for family, info in FAMILIES.items():
        if family == "timm":
            continue
        cls = getattr(K, info.backbone_class)
        ours = {n: p for n, p in HUB_PRESETS.items() if p.family == family}
        assert set(ours) == set(cls.presets), family
        for name, preset in cls.presets.items():
            row, meta = ours[name], preset["metadata"]
            assert row.params == meta["params"], name
            assert f"kaggle://{row.handle}" == preset["kaggle_handle"], name
            size = re.search(r"_(\d{3})(?:_|$)", name) or re.search(
                r"(?:image size|resolution of) (\d+)", meta["description"]
            )
            if size:
                assert row.image_size == int(size.group(1)), name
            elif family != "dinov3":  # DINOv3: keras-hub documents no size (RoPE: any fits)
                encoder = {"clip": K.CLIPVisionEncoder}.get(family, cls)
                default = __import__("inspect").signature(encoder).parameters["image_shape"]
                assert row.image_size == default.default[0], name
            patch = re.search(r"patch(\d+)|_(\d+)_laion", name)
            if patch:
                assert row.patch_size == int(patch.group(1) or patch.group(2)), name


def _expected(backbone, family: str, images: np.ndarray) -> np.ndarray:
    """Each family's linear-probe features, computed from keras-hub's raw outputs."""
    if family == "siglip":
        return np.asarray(backbone.get_vision_embeddings(images))  # MAP head, no projection
    if family == "clip":
        seq = np.asarray(backbone.vision_encoder({"images": images}))
        pooled = seq[:, 0]
        # Before the projection: the projection is a Dense to projection_dim (8 here).
        assert np.asarray(backbone.get_vision_embeddings(images)).shape[-1] == 8
        return pooled
    key = "pixel_values" if family == "dinov3" else "images"
    out = np.asarray(backbone({key: images}) if family.startswith("dino") else backbone(images))
    if family in ("dinov2", "dinov3"):
        registers = backbone.num_register_tokens
        assert out.shape[1] == 1 + registers + 4  # CLS, registers, 2x2 patches
        return np.concatenate([out[:, 0], out[:, 1 + registers :].mean(axis=1)], axis=-1)
    if family == "vit":
        return out[:, 0]
    if family == "deit":
        return (out[:, 0] + out[:, 1]) / 2
    return out.reshape(len(out), -1, out.shape[-1]).mean(axis=1)  # swin


@pytest.mark.parametrize("family", ["dinov2", "dinov3", "vit", "deit", "swin", "siglip", "clip"])
def test_each_family_pools_as_its_linear_probe_protocol_defines(family):
    from bakeoff.backbone.hub import pooled

    backbone = tiny_hub_backbone(family)
    images = np.random.default_rng(0).normal(size=(2, 28, 28, 3)).astype("float32")
    got = np.asarray(pooled(backbone, family, 28).predict_on_batch(images))
    want = _expected(backbone, family, images)
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, atol=1e-5)
    if family in ("dinov2", "dinov3"):  # the registers must not leak into the patch mean
        with_registers = np.asarray(
            backbone({"images" if family == "dinov2" else "pixel_values": images})
        )
        wrong = with_registers[:, 1:].mean(axis=1)
        assert not np.allclose(got[:, 16:], wrong, atol=1e-4)


@pytest.fixture
def tiny_preset(tmp_path):
    from bakeoff.backbone.hub_sources import register_sources

    folder = tmp_path / "tiny_dinov2"
    converter = save_tiny_dinov2(folder)
    register_sources({"tiny-dinov2": str(folder)})
    yield folder, converter
    register_sources({})


def test_the_saved_model_converts_pixels_as_the_presets_image_converter(tiny_preset, tmp_path):
    import keras

    from bakeoff.backbone.build import build_model

    _, converter = tiny_preset
    model = build_model("tiny-dinov2", 3, 28, "imagenet")
    images = np.random.default_rng(1).uniform(0, 255, size=(2, 28, 28, 3)).astype("float32")
    ours = keras.Model(model.inputs, model.get_layer("preprocess").output)
    np.testing.assert_allclose(
        ours.predict_on_batch(images), np.asarray(converter(images)), atol=1e-4
    )
    # The saved model carries the converter and the pooling: it reloads and answers the same.
    path = tmp_path / "model.keras"
    model.save(path)
    again = keras.models.load_model(path)
    np.testing.assert_allclose(
        again.predict_on_batch(images), model.predict_on_batch(images), atol=1e-6
    )


def test_a_local_preset_takes_any_multiple_of_its_patch(tiny_preset):
    from bakeoff.backbone.build import base_layer, build_model
    from bakeoff.backbone.registry import check_image_size
    from bakeoff.errors import BakeoffError

    model = build_model("tiny-dinov2", 3, 42, "imagenet")  # position embeddings interpolated
    assert base_layer(model).output_shape == (None, 32)  # CLS (16) + patch mean (16)
    with pytest.raises(BakeoffError, match="not a multiple of tiny-dinov2's patch size 14"):
        check_image_size("tiny-dinov2", 32, "imagenet")


def test_params_refuse_what_a_hub_backbone_cannot_do(monkeypatch):
    import psutil

    from bakeoff.errors import BakeoffError

    assert hub_params(["dinov2_small", "MobileNet"]).backbones == ["dinov2_small", "MobileNet"]
    with pytest.raises(BakeoffError, match="not a multiple of dinov2_small's patch size 14"):
        hub_params(["dinov2_small"], image_size=32)
    with pytest.raises(BakeoffError, match="fine_tune_layers is 2, but bakeoff keeps"):
        hub_params(["deit_tiny_distilled_patch16_224_imagenet"], fine_tune_layers=2)
    with pytest.raises(BakeoffError, match=r"add `sources: \{timm-resnet50-a1_in1k: hf://timm"):
        hub_params(["hf://timm/resnet50.a1_in1k"])
    small = type("Memory", (), {"total": 4 * 2**30})()
    monkeypatch.setattr(psutil, "virtual_memory", lambda: small)
    with pytest.raises(BakeoffError, match=r"dinov2_giant needs about 8\.5 GiB .* has 4\.0 GiB"):
        hub_params(["dinov2_giant"])


def test_a_hub_models_logged_requirements_name_keras_hub(tiny_preset):
    from importlib import metadata

    from bakeoff.backbone.build import build_model
    from bakeoff.tracking.models import _pip_requirements

    hub = _pip_requirements(build_model("tiny-dinov2", 3, 28, "imagenet"))
    assert f"keras-hub=={metadata.version('keras-hub')}" in hub
    assert not any(
        r.startswith("keras-hub") for r in _pip_requirements(build_model("SimpleCNN", 3, 32))
    )


def test_sources_get_names_dvc_accepts(tmp_path):
    from bakeoff.backbone.hub_sources import source_slug

    assert source_slug("hf://timm/resnet50.a1_in1k") == "timm-resnet50-a1_in1k"
    assert source_slug(str(tmp_path / "my presets" / "tiny.v2")) == "tiny-v2"
    # A downloaded copy of a preset keeps the preset's own name free.
    assert source_slug(str(tmp_path / "dinov2_small")) == "dinov2_small-local"


def test_a_timm_checkpoint_folder_is_a_source(tmp_path):
    import json

    from bakeoff.backbone.hub_sources import hub_spec, register_sources
    from bakeoff.errors import BakeoffError

    folder = tmp_path / "resnet18"
    folder.mkdir()
    config = {"architecture": "resnet18", "pretrained_cfg": {"input_size": [3, 160, 160]}}
    (folder / "config.json").write_text(json.dumps(config))
    register_sources({"resnet18": str(folder)})
    try:
        spec = hub_spec("resnet18")
        assert (spec.family, spec.image_size, spec.source) == ("timm", 160, str(folder))
        (folder / "config.json").write_text(json.dumps({"architecture": "vit_small_patch16"}))
        with pytest.raises(BakeoffError, match="keras-hub converts only these timm families"):
            register_sources({"resnet18": str(folder)})
    finally:
        register_sources({})
