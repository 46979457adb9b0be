"""The recipe's model: input -> preprocess -> base -> BN -> Dense, and its weights.

Every backbone is `include_top=False, pooling="avg"`, so one head fits all. Models take
float32 RGB in 0..255 and carry their own preprocessing as built-in Keras layers, so
evaluate/predict only resize and feed, and the saved model loads without bakeoff.
"""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np

from bakeoff.backbone.offline import FETCH_COMMAND, export_line
from bakeoff.backbone.registry import (
    PREPROCESS_MODES,
    cached_weights,
    check_image_size,
    get_backbone,
    keras_cache_dir,
)
from bakeoff.errors import BakeoffError

_CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)
_TORCH_MEAN = (0.485, 0.456, 0.406)
_TORCH_STD = (0.229, 0.224, 0.225)


def preprocessing(mode: str) -> list[keras.layers.Layer]:
    """A backbone's `preprocess_input` as built-in Keras layers, so that a saved model loads
    anywhere Keras is installed (MLflow serving included), without bakeoff.

    Args:
        mode: The backbone table's `preprocess`: the mode of
            `keras.applications.imagenet_utils.preprocess_input`, or "none".

    Returns:
        The layers to apply to 0..255 RGB, in order (none for "none").
    """
    if mode not in PREPROCESS_MODES or mode == "hub":  # hub: bakeoff.backbone.hub
        raise BakeoffError(f"unknown preprocessing '{mode}': use one of {PREPROCESS_MODES}")
    if mode == "tf":
        return [keras.layers.Rescaling(1 / 127.5, offset=-1.0, name="preprocess")]
    if mode == "torch":
        return [
            keras.layers.Rescaling(1 / 255, name="preprocess_scale"),
            keras.layers.Normalization(
                mean=_TORCH_MEAN, variance=[s * s for s in _TORCH_STD], name="preprocess"
            ),
        ]
    if mode == "caffe":
        # RGB->BGR and mean subtraction in one frozen 1x1 convolution: exact (0/1 weights).
        swap = np.zeros((1, 1, 3, 3), dtype="float32")
        for out in range(3):
            swap[0, 0, 2 - out, out] = 1.0
        return [
            keras.layers.Conv2D(
                3,
                1,
                kernel_initializer=keras.initializers.Constant(swap),
                bias_initializer=keras.initializers.Constant([-m for m in _CAFFE_MEAN_BGR]),
                trainable=False,
                name="preprocess",
            )
        ]
    return []


def imagenet_weights(name: str, image_size: int) -> Path:
    """The cached ImageNet no-top weights file of `name`, through keras.utils.get_file.

    Raises:
        BakeoffError: The file is not cached and cannot be downloaded; names file and folder.
    """
    target, url = cached_weights(name, image_size)
    weights = get_backbone(name).imagenet
    try:
        # A cached file is used as is (Keras would re-download on a hash mismatch, and
        # this machine may be offline); the hash only guards a fresh download.
        path = keras.utils.get_file(
            target.name,
            url,
            cache_subdir="models",
            cache_dir=str(keras_cache_dir()),  # Keras's own cache, where `target` is
            file_hash=None if target.is_file() else weights.file_hash,
        )
    except Exception as exc:  # urllib raises many kinds; all mean "not available"
        raise BakeoffError(
            f"ImageNet weights for {name} are not in Keras's cache and could not be "
            f"downloaded ({type(exc).__name__}): on a connected machine `{FETCH_COMMAND}` "
            f"fetches every backbone's weights at once (copy DIR here, then "
            f"`{export_line('DIR')}`); or put the file {target.name} into {target.parent}/ "
            f"(from {url}), or set train.weights to none"
        ) from None
    return Path(path)


def resolve_weights(name: str, weights: str, image_size: int) -> Path | None:
    """The weights file `weights` ("imagenet", "none" or a path) means; None for "none"."""
    if weights == "none":
        return None
    if weights == "imagenet":
        hub = get_backbone(name).hub
        if hub is not None:  # a keras-hub preset: its own pretrained weights
            from bakeoff.backbone.hub import preset_weights_file

            return preset_weights_file(hub)
        return imagenet_weights(name, image_size)
    path = Path(weights).expanduser()
    if not path.is_file():
        raise BakeoffError(
            f"train.weights: no weights file at {path}: use imagenet, none or an existing file"
        )
    return path


def _load_into(base: keras.Model, path: Path, name: str, imagenet: bool) -> None:
    from bakeoff.backbone.weights_file import check_weights_file, is_legacy_h5

    if not imagenet:
        check_weights_file(base, path, name)  # every layer filled, or the layers named
    try:
        if is_legacy_h5(path) and not imagenet:
            # A user's legacy HDF5 may come from a whole classifier: match layers by name.
            base.load_weights(path, by_name=True)
        else:
            base.load_weights(path)
    except Exception as exc:
        raise BakeoffError(
            f"weights file {path} does not fit {name}: {type(exc).__name__}: {exc}"
        ) from None


def build_base(
    name: str, image_size: int, weights_file: Path | None = None, imagenet: bool = False
) -> keras.Model:
    """The no-top, average-pooled backbone, with `weights_file` loaded when given.

    Args:
        name: A registry name.
        image_size: Square input side.
        weights_file: Weights to load (topologically when `imagenet`, as Keras does).
        imagenet: The file is Keras's ImageNet file for this backbone.
    """
    entry = get_backbone(name)
    check_image_size(name, image_size, "imagenet" if imagenet else "none")
    if entry.hub is not None:
        from bakeoff.backbone.hub import build_hub_base

        base = build_hub_base(entry.hub, image_size, pretrained=imagenet)
        if weights_file is not None and not imagenet:
            _load_into(base, weights_file, name, imagenet)
        return base
    base = entry.constructor(
        input_shape=(image_size, image_size, 3), weights=None, include_top=False, pooling="avg"
    )
    if weights_file is not None:
        _load_into(base, weights_file, name, imagenet)
        if imagenet and entry.imagenet is not None and entry.imagenet.fix is not None:
            entry.imagenet.fix(base)
    return base


def build_model(
    name: str,
    n_classes: int,
    image_size: int,
    weights: str = "none",
    bn_momentum: float | None = None,
    l2: float = 0.0,
) -> keras.Model:
    """The recipe's model: 0..255 RGB -> preprocess -> base -> BatchNormalization -> softmax.

    Args:
        name: A registry name.
        n_classes: Output classes.
        image_size: Square input side in pixels.
        weights: "imagenet" (Keras's cache), "none" (random, all trainable) or a file.
        bn_momentum: Set on every BatchNormalization, head included (None: Keras's 0.99).
        l2: L2 penalty on the softmax layer's kernel (a tuned head).

    Returns:
        The uncompiled model; the base is the layer named by `base_layer(model)` and is
        frozen (called with training=False) unless weights is "none".
    """
    entry = get_backbone(name)
    check_image_size(name, image_size, weights)  # before looking for a weights file
    weights_file = resolve_weights(name, weights, image_size)
    base = build_base(name, image_size, weights_file, imagenet=weights == "imagenet")
    frozen = weights != "none"
    if bn_momentum is not None:
        # Fresh BatchNorm statistics lag behind fast-changing weights at 0.99.
        for layer in base.layers:
            if isinstance(layer, keras.layers.BatchNormalization):
                layer.momentum = bn_momentum
    base.trainable = not frozen
    inputs = keras.Input(shape=(image_size, image_size, 3), name="image")
    x = inputs
    if entry.hub is not None:
        from bakeoff.backbone.hub import converter_layers

        steps = converter_layers(entry.hub.source)
    else:
        steps = preprocessing(entry.preprocess)
    for layer in steps:
        x = layer(x)
    x = base(x, training=False) if frozen else base(x)
    momentum = 0.99 if bn_momentum is None else bn_momentum
    x = keras.layers.BatchNormalization(momentum=momentum, name="head_bn")(x)
    regularizer = keras.regularizers.L2(l2) if l2 > 0 else None
    outputs = keras.layers.Dense(
        n_classes, activation="softmax", kernel_regularizer=regularizer, name="predictions"
    )(x)
    return keras.Model(inputs, outputs, name=f"bakeoff_{name}")


def base_layer(model: keras.Model) -> keras.Model:
    """The backbone inside a model built by `build_model`."""
    return next(layer for layer in model.layers if isinstance(layer, keras.Model))
