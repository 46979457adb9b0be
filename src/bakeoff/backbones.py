"""The backbone registry and the recipe's model: input -> preprocess -> base -> BN -> Dense.

Every backbone is `include_top=False, pooling="avg"`, so one head fits all. Models take
float32 RGB in 0..255 and carry their own preprocessing (a serializable layer), so
evaluate/predict only resize and feed.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import keras

from bakeoff.errors import BakeoffError

_APPS = "https://storage.googleapis.com/tensorflow/keras-applications/"


@dataclass(frozen=True)
class Backbone:
    """One registry entry.

    `weights_file` is the ImageNet no-top file name exactly as Keras caches it in
    `$KERAS_HOME/models/`; `{rows}` is filled in for MobileNet/V2, whose weights depend
    on the input size (Keras uses the 224 file for any size it has no file for).
    """

    constructor: Callable[..., keras.Model]
    preprocess: str  # a keras.applications module name, or "none" (rescales inside)
    min_size: int
    default_size: int
    weights_file: str | None = None
    weights_origin: str = ""  # URL folder the file downloads from
    weights_hash: str | None = None  # Keras's md5 of the file
    weights_rows: tuple[int, ...] = ()
    imagenet_fix: Callable[[keras.Model], None] | None = None

    def weights_name(self, image_size: int) -> str:
        rows = image_size if image_size in self.weights_rows else 224
        return (self.weights_file or "").format(rows=rows)


def simple_cnn(input_shape, weights=None, include_top=False, pooling="avg") -> keras.Model:
    """A small plain CNN (conv-BN-ReLU blocks, max pooling): the baseline to beat."""
    inputs = keras.Input(shape=input_shape)
    x = keras.layers.Rescaling(1.0 / 255)(inputs)  # takes 0..255 like EfficientNet
    for i, filters in enumerate((32, 64, 128)):
        for j in range(2):
            x = keras.layers.Conv2D(
                filters, 3, padding="same", use_bias=False, name=f"block{i}_conv{j}"
            )(x)
            x = keras.layers.BatchNormalization(name=f"block{i}_bn{j}")(x)
            x = keras.layers.ReLU()(x)
        x = keras.layers.MaxPooling2D(name=f"block{i}_pool")(x)
    x = keras.layers.GlobalAveragePooling2D(name="avg_pool")(x)
    model = keras.Model(inputs, x, name="simple_cnn")
    if weights is not None:
        model.load_weights(weights)
    return model


def _efficientnet_imagenet(base: keras.Model) -> None:
    """Keras builds EfficientNet for ImageNet with an extra Rescaling by 1/sqrt(std) after
    its Normalization (keras-team/keras#49930); a base built with weights=None lacks it, so
    fold it into the normalization variance: (x - m) / sqrt(v) / sqrt(s) = (x - m) / sqrt(v*s).
    """
    norm = next(lyr for lyr in base.layers if isinstance(lyr, keras.layers.Normalization))
    norm.adapt_variance.assign(norm.adapt_variance * keras.ops.array([0.229, 0.224, 0.225]))
    norm.finalize_state()


_A = keras.applications
TABLE: dict[str, Backbone] = {
    "SimpleCNN": Backbone(simple_cnn, "none", 16, 64),
    "MobileNet": Backbone(
        _A.MobileNet,
        "mobilenet",
        32,
        224,
        "mobilenet_1_0_{rows}_tf_no_top.h5",
        _APPS + "mobilenet/",
        None,
        (128, 160, 192, 224),
    ),
    "MobileNetV2": Backbone(
        _A.MobileNetV2,
        "mobilenet_v2",
        32,
        224,
        "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_{rows}_no_top.h5",
        _APPS + "mobilenet_v2/",
        None,
        (96, 128, 160, 192, 224),
    ),
    "MobileNetV3Small": Backbone(
        _A.MobileNetV3Small,
        "none",
        32,
        224,
        "weights_mobilenet_v3_small_224_1.0_float_no_top_v2.h5",
        _APPS + "mobilenet_v3/",
        "d3e8ec802a04aa4fc771ee12a9a9b836",
    ),
    "MobileNetV3Large": Backbone(
        _A.MobileNetV3Large,
        "none",
        32,
        224,
        "weights_mobilenet_v3_large_224_1.0_float_no_top_v2.h5",
        _APPS + "mobilenet_v3/",
        "07fb09a5933dd0c8eaafa16978110389",
    ),
    "EfficientNetB0": Backbone(
        _A.EfficientNetB0,
        "none",
        32,
        224,
        "efficientnetb0_notop.h5",
        "https://storage.googleapis.com/keras-applications/",
        "50bc09e76180e00e4465e1a485ddc09d",
        imagenet_fix=_efficientnet_imagenet,
    ),
    "ResNet50": Backbone(
        _A.ResNet50,
        "resnet",
        32,
        224,
        "resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5",
        _APPS + "resnet/",
        "4d473c1dd8becc155b73f8504c6f6626",
    ),
    "VGG16": Backbone(
        _A.VGG16,
        "vgg16",
        32,
        224,
        "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5",
        _APPS + "vgg16/",
        "6d6bbae143d832006294945121d1f1fc",
    ),
    "DenseNet121": Backbone(
        _A.DenseNet121,
        "densenet",
        32,
        224,
        "densenet121_weights_tf_dim_ordering_tf_kernels_notop.h5",
        _APPS + "densenet/",
        "30ee3e1110167f948a6b9946edeeb738",
    ),
}


def get_backbone(name: str) -> Backbone:
    """The registry entry of `name`; BakeoffError listing the known names otherwise."""
    if name not in TABLE:
        raise BakeoffError(f"unknown backbone '{name}': choose from {', '.join(TABLE)}")
    return TABLE[name]


@keras.saving.register_keras_serializable(package="bakeoff")
class Preprocess(keras.layers.Layer):
    """A backbone's own `preprocess_input` as a layer, so a saved model takes 0..255 RGB.

    Args:
        mode: a keras.applications module name (e.g. "mobilenet", "vgg16") or "none".
    """

    def __init__(self, mode: str = "none", **kwargs):
        super().__init__(**kwargs)
        self.mode = mode

    def call(self, inputs):
        if self.mode == "none":
            return inputs
        module = getattr(keras.applications, self.mode)
        return module.preprocess_input(inputs)

    def get_config(self) -> dict:
        return {**super().get_config(), "mode": self.mode}


def keras_cache_dir() -> Path:
    """Keras's cache folder, read now (not at import) so KERAS_HOME set later counts."""
    return Path(os.environ.get("KERAS_HOME", os.path.join("~", ".keras"))).expanduser()


def imagenet_weights(name: str, image_size: int) -> Path:
    """The cached ImageNet no-top weights file of `name`, through keras.utils.get_file.

    Raises:
        BakeoffError: The file is not cached and cannot be downloaded; names file and folder.
    """
    entry = get_backbone(name)
    if entry.weights_file is None:
        raise BakeoffError(
            f"{name} has no ImageNet weights: set train.weights to none or a weights file"
        )
    fname = entry.weights_name(image_size)
    cache = keras_cache_dir()
    target = cache / "models" / fname
    try:
        # A cached file is used as is (Keras would re-download on a hash mismatch, and
        # this machine may be offline); the hash only guards a fresh download.
        path = keras.utils.get_file(
            fname,
            entry.weights_origin + fname,
            cache_subdir="models",
            cache_dir=str(cache),
            file_hash=None if target.is_file() else entry.weights_hash,
        )
    except Exception as exc:  # urllib raises many kinds; all mean "not available"
        raise BakeoffError(
            f"ImageNet weights for {name} are not in Keras's cache and could not be "
            f"downloaded ({type(exc).__name__}): put the file {fname} into {target.parent}/ "
            f"(from {entry.weights_origin + fname}), or set train.weights to none"
        ) from None
    return Path(path)


def resolve_weights(name: str, weights: str, image_size: int) -> Path | None:
    """The weights file `weights` ("imagenet", "none" or a path) means; None for "none"."""
    if weights == "none":
        return None
    if weights == "imagenet":
        return imagenet_weights(name, image_size)
    path = Path(weights).expanduser()
    if not path.is_file():
        raise BakeoffError(
            f"train.weights: no weights file at {path}: use imagenet, none or an existing file"
        )
    return path


def _load_into(base: keras.Model, path: Path, name: str, imagenet: bool) -> None:
    try:
        legacy = path.suffix in (".h5", ".hdf5") and not path.name.endswith(".weights.h5")
        if legacy and not imagenet:
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
    if image_size < entry.min_size:
        raise BakeoffError(
            f"image size {image_size} is below {name}'s minimum of {entry.min_size}: "
            f"raise train.image_size to at least {entry.min_size}"
        )
    base = entry.constructor(
        input_shape=(image_size, image_size, 3), weights=None, include_top=False, pooling="avg"
    )
    if weights_file is not None:
        _load_into(base, weights_file, name, imagenet)
        if imagenet and entry.imagenet_fix is not None:
            entry.imagenet_fix(base)
    return base


def build_model(
    name: str,
    n_classes: int,
    image_size: int,
    weights: str = "none",
    bn_momentum: float | None = None,
) -> keras.Model:
    """The recipe's model: 0..255 RGB -> preprocess -> base -> BatchNormalization -> softmax.

    Args:
        name: A registry name.
        n_classes: Output classes.
        image_size: Square input side in pixels.
        weights: "imagenet" (Keras's cache), "none" (random, all trainable) or a file.
        bn_momentum: Set on every BatchNormalization, head included (None: Keras's 0.99).

    Returns:
        The uncompiled model; the base is the layer named by `base_layer(model)` and is
        frozen (called with training=False) unless weights is "none".
    """
    entry = get_backbone(name)
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
    x = Preprocess(entry.preprocess, name="preprocess")(inputs)
    x = base(x, training=False) if frozen else base(x)
    momentum = 0.99 if bn_momentum is None else bn_momentum
    x = keras.layers.BatchNormalization(momentum=momentum, name="head_bn")(x)
    outputs = keras.layers.Dense(n_classes, activation="softmax", name="predictions")(x)
    return keras.Model(inputs, outputs, name=f"bakeoff_{name}")


def base_layer(model: keras.Model) -> keras.Model:
    """The backbone inside a model built by `build_model`."""
    return next(layer for layer in model.layers if isinstance(layer, keras.Model))


def load_trained(path: Path | str) -> keras.Model:
    """Load a saved bakeoff model (this module registers its Preprocess layer)."""
    return keras.saving.load_model(path)
