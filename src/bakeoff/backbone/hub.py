"""keras-hub backbones as bakeoff bases: image -> keras-hub backbone -> linear-probe features.

Each family's features follow the protocol its own paper evaluates frozen features with:

- DINOv2/v3: the CLS token concatenated with the mean of the patch tokens, register tokens
  excluded (the DINOv2 linear probe; DINOv3 evaluates the same way).
- ViT: the CLS token. DeiT: the mean of the class and distillation tokens, as DeiT's
  inference averages its two heads.
- SigLIP: the attention-pooled (MAP head) image embedding, SigLIP's image representation.
- CLIP: the pooled CLS embedding (layer-normed) before the projection into the joint
  space: CLIP's paper fits its linear probes on these pre-projection features.
- Swin and timm CNNs: global average pooling of the last feature map.

Pooling uses built-in Keras layers only, so a saved model loads wherever Keras and keras-hub
are installed. The preset's image converter (scale and offset) becomes a Normalization layer.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from bakeoff.backbone.hub_sources import HubSpec
from bakeoff.errors import BakeoffError

if TYPE_CHECKING:
    import keras


def _fetch_error(spec: HubSpec, exc: Exception) -> BakeoffError:
    from bakeoff.backbone.hub_fetch import fetch_hint

    return BakeoffError(
        f"{spec.name}: keras-hub could not load {spec.source} ({type(exc).__name__}); "
        + fetch_hint(spec)
    )


def load_hub_backbone(spec: HubSpec, image_size: int, pretrained: bool) -> keras.Model:
    """keras-hub's backbone of `spec`, its image tower taking `image_size` px.

    DINOv2/v3 interpolate their position embeddings inside keras-hub, and Swin and timm CNNs
    have none tied to the image size: keras-hub builds them at the size asked for. ViT, DeiT,
    SigLIP and CLIP load at the preset's own size and are rebuilt with their position
    embeddings resampled (`hub_resize`).

    Raises:
        BakeoffError: The preset is neither cached nor downloadable; says how to fetch it.
    """
    import keras_hub

    from bakeoff.backbone.hub_resize import RESAMPLED, at_size, own_size

    kwargs = {"load_weights": pretrained}
    if spec.family not in RESAMPLED:
        kwargs["image_shape"] = (image_size, image_size, 3)
    try:
        backbone = keras_hub.models.Backbone.from_preset(spec.source, **kwargs)
    except Exception as exc:  # kagglehub, huggingface_hub and file errors; all mean "absent"
        raise _fetch_error(spec, exc) from None
    if spec.family in RESAMPLED and own_size(backbone) != image_size:
        backbone = at_size(backbone, image_size, spec.name)
    return backbone


def _tokens(x, first: int, last: int):
    """Tokens `first` .. `last`-1 of a (batch, tokens, dim) tensor, as built-in layers."""
    import keras

    total = x.shape[1]
    return keras.layers.Cropping1D((first, total - last))(x)


def pooled(backbone: keras.Model, family: str, image_size: int) -> keras.Model:
    """image (already converted) -> `backbone` -> the family's features (see module doc)."""
    import keras

    image = keras.Input((image_size, image_size, 3), name="pixels")
    if family == "clip":
        seq = backbone.vision_encoder({"images": image})
        x = keras.layers.Flatten(name="cls_token")(_tokens(seq, 0, 1))
    elif family == "siglip":
        x = backbone.vision_encoder({"images": image})
    elif family in ("dinov2", "dinov3"):
        key = "images" if family == "dinov2" else "pixel_values"
        seq = backbone({key: image})
        prefix = 1 + int(backbone.num_register_tokens)
        cls = keras.layers.Flatten(name="cls_token")(_tokens(seq, 0, 1))
        patches = _tokens(seq, prefix, seq.shape[1])
        mean = keras.layers.GlobalAveragePooling1D(name="patch_mean")(patches)
        x = keras.layers.Concatenate(name="cls_patch_mean")([cls, mean])
    elif family == "vit":
        x = keras.layers.Flatten(name="cls_token")(_tokens(backbone(image), 0, 1))
    elif family == "deit":
        two = _tokens(backbone(image), 0, 2)
        x = keras.layers.GlobalAveragePooling1D(name="cls_dist_mean")(two)
    else:  # swin: (batch, tokens, channels); timm CNNs: (batch, h, w, channels)
        out = backbone(image)
        gap = (
            keras.layers.GlobalAveragePooling1D
            if len(out.shape) == 3
            else keras.layers.GlobalAveragePooling2D
        )
        x = gap(name="avg_pool")(out)
    return keras.Model(image, x, name=f"hub_{family}")


def converter_layers(source: str) -> list[keras.layers.Layer]:
    """The preset's image converter as Keras layers: 0..255 RGB -> x * scale + offset.

    Resizing is left out: bakeoff's decode cache has already resized to the model's size.
    """
    import keras
    import keras_hub
    import numpy as np

    try:
        converter = keras_hub.layers.ImageConverter.from_preset(source)
    except Exception as exc:
        raise BakeoffError(
            f"{source}: no image converter in the preset ({type(exc).__name__}: {exc}); "
            "save one with `ImageConverter(...).save_to_preset(folder)`"
        ) from None
    scale = np.broadcast_to(np.asarray(converter.scale or 1.0, "float32"), (3,))
    offset = np.broadcast_to(np.asarray(converter.offset or 0.0, "float32"), (3,))
    # Normalization computes (x - mean) / sqrt(variance): x * s + o with mean = -o / s and
    # variance = 1 / s^2, per channel, as a built-in layer that serialises with the model.
    return [
        keras.layers.Normalization(
            mean=(-offset / scale).tolist(), variance=(1.0 / scale**2).tolist(), name="preprocess"
        )
    ]


def build_hub_base(spec: HubSpec, image_size: int, pretrained: bool) -> keras.Model:
    """The pooled base of `spec`: pixels after the converter -> features, one vector each."""
    backbone = load_hub_backbone(spec, image_size, pretrained)
    return pooled(backbone, spec.family, image_size)


def preset_weights_file(spec: HubSpec) -> Path:
    """The preset's weights file on this machine (what the feature cache keys on).

    Raises:
        BakeoffError: The preset cannot be found or fetched.
    """
    if spec.local:
        folder = Path(spec.source)
        for name in ("model.weights.h5", "model.safetensors"):
            if (folder / name).is_file():
                return folder / name
        raise BakeoffError(f"{folder}: no model.weights.h5 in the preset folder")
    from keras_hub.src.utils.preset_utils import get_file

    name = "model.safetensors" if spec.source.startswith("hf://") else "model.weights.h5"
    try:
        return Path(get_file(spec.source, name))
    except Exception as exc:
        raise _fetch_error(spec, exc) from None
