"""keras-hub backbones: the static preset table, each family's features, the converter."""

from __future__ import annotations

import re

import numpy as np
import pytest

from bakeoff.backbone.hub_presets import FAMILIES, HUB_PRESETS

keras_hub = pytest.importorskip("keras_hub")
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


def _tiny(family: str, size: int = 28):
    """A few-layer, 16-wide model of `family` with random weights (keras-hub's own classes)."""
    small = {"num_layers": 2, "num_heads": 2, "hidden_dim": 16}
    shape = (size, size, 3)
    if family == "dinov2":
        return K.DINOV2Backbone(patch_size=14, intermediate_dim=32, num_register_tokens=2,
                                image_shape=shape, position_embedding_shape=shape,
                                **small)  # fmt: skip
    if family == "dinov3":
        return K.DINOV3Backbone(patch_size=14, intermediate_dim=32, num_register_tokens=4,
                                image_shape=shape, **small)  # fmt: skip
    if family == "vit":
        return K.ViTBackbone(image_shape=shape, patch_size=14, mlp_dim=32, **small)
    if family == "deit":
        return K.DeiTBackbone(image_shape=shape, patch_size=14, intermediate_dim=32, **small)
    if family == "swin":
        return K.SwinTransformerBackbone(image_shape=shape, embed_dim=8, depths=[1, 1],
                                         num_heads=[1, 2], window_size=7, patch_size=2)  # fmt: skip
    text = {"vocabulary_size": 32, "embedding_dim": 16, "hidden_dim": 16, "num_layers": 1,
            "num_heads": 2, "intermediate_dim": 32, "max_sequence_length": 8}  # fmt: skip
    if family == "siglip":
        vision = K.SigLIPVisionEncoder(
            patch_size=14, intermediate_dim=32, image_shape=shape, **small
        )
        return K.SigLIPBackbone(vision, K.SigLIPTextEncoder(**text))
    vision = K.CLIPVisionEncoder(patch_size=14, intermediate_dim=32, image_shape=shape, **small)
    return K.CLIPBackbone(vision, K.CLIPTextEncoder(**text), projection_dim=8)


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

    backbone = _tiny(family)
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
