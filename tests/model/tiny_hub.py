"""Tiny keras-hub models with random weights, and a local preset folder made from one.

Shared by the keras-hub backbone tests and the end-to-end pipeline test: a few-layer,
16-wide model of each family keeps them to seconds, with keras-hub's own classes.
"""

from __future__ import annotations

from pathlib import Path

import keras_hub
import numpy as np

K = keras_hub.models
# ImageNet mean/std as a keras-hub converter writes them: x * scale + offset on 0..255.
_MEAN, _STD = np.array([0.485, 0.456, 0.406]), np.array([0.229, 0.224, 0.225])


def tiny_hub_backbone(family: str, size: int = 28):
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


def save_tiny_dinov2(folder: Path, size: int = 28):
    """A local keras-hub preset folder: a tiny DINOv2 (random weights) and its converter.

    Returns:
        The saved `keras_hub.layers.ImageConverter`.
    """
    tiny_hub_backbone("dinov2", size).save_to_preset(str(folder))
    converter = keras_hub.layers.ImageConverter(
        image_size=(size, size), scale=list(1 / (255 * _STD)), offset=list(-_MEAN / _STD)
    )
    converter.save_to_preset(str(folder))
    return converter


def hub_params(backbones, **train):
    """params.yaml with `backbones` and pretrained `train` settings, each backbone given an
    empty overrides entry, parsed as bakeoff parses it."""
    import yaml

    from bakeoff.config.params import parse_params
    from tests.conftest import REPO

    raw = yaml.safe_load((REPO / "params.yaml").read_text())
    raw["backbones"] = backbones
    raw["train"] |= {"weights": "imagenet", "augment": False, "image_size": None, **train}
    raw["train"]["overrides"] = {name: {} for name in backbones}  # one entry each: none
    return parse_params(raw)
