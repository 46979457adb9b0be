"""The backbone registry: one table of name -> constructor, preprocessing, sizes, weights.

Adding a backbone is adding a row; nothing else in bakeoff switches on backbone names.
Importing this module does not import Keras (constructors import it when called), so the
CLI and params.yaml checks can validate backbone names in milliseconds.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bakeoff.errors import BakeoffError

_KERAS_APPLICATIONS = "https://storage.googleapis.com/tensorflow/keras-applications/"


@dataclass(frozen=True, kw_only=True)
class ImagenetWeights:
    """Where a backbone's ImageNet no-top weights live, named exactly as Keras caches them.

    Keras's own `weights="imagenet"` is not used: it re-checks the hash of a cached file on
    every build and re-downloads on a mismatch, and reads `KERAS_HOME` only when Keras is
    imported. Loading the file ourselves keeps an offline machine working and lets the
    error name the missing file and the folder to put it in.
    """

    file: str  # `{rows}` is filled in from `rows` (MobileNet/V2: one file per input size)
    origin: str  # the URL folder the file downloads from
    md5: str | None = None  # Keras's hash of the file, checked on a fresh download
    rows: tuple[int, ...] = ()  # sizes with their own file; any other size uses 224
    fix: Callable[[Any], None] | None = None  # applied to the base after loading

    def file_name(self, image_size: int) -> str:
        return self.file.format(rows=image_size if image_size in self.rows else 224)


@dataclass(frozen=True, kw_only=True)
class Backbone:
    """One registry row."""

    constructor: Callable[..., Any]  # Keras-applications style: input_shape, weights, ...
    preprocess: str  # a keras.applications module name, or "none" (rescales inside)
    min_size: int = 32
    default_size: int = 224
    imagenet: ImagenetWeights | None = None


def _application(name: str) -> Callable[..., Any]:
    """`keras.applications.<name>`, imported when the backbone is built, not at import."""

    def construct(**kwargs: Any) -> Any:
        import keras

        return getattr(keras.applications, name)(**kwargs)

    construct.__name__ = name
    return construct


def simple_cnn(input_shape, weights=None, include_top=False, pooling="avg") -> Any:
    """A small plain CNN (conv-BN-ReLU blocks, max pooling): the baseline to beat."""
    import keras

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


def _efficientnet_imagenet(base: Any) -> None:
    """Keras builds EfficientNet for ImageNet with an extra Rescaling by 1/sqrt(std) after
    its Normalization (tensorflow/tensorflow#49930); a base built with weights=None lacks it,
    so fold it into the normalization variance: (x - m) / sqrt(v) / sqrt(s) = (x - m) / sqrt(v*s).
    """
    import keras

    norm = next(lyr for lyr in base.layers if isinstance(lyr, keras.layers.Normalization))
    norm.adapt_variance.assign(norm.adapt_variance * keras.ops.array([0.229, 0.224, 0.225]))
    norm.finalize_state()


REGISTRY: dict[str, Backbone] = {
    "SimpleCNN": Backbone(constructor=simple_cnn, preprocess="none", min_size=16, default_size=64),
    "MobileNet": Backbone(
        constructor=_application("MobileNet"),
        preprocess="mobilenet",
        imagenet=ImagenetWeights(
            file="mobilenet_1_0_{rows}_tf_no_top.h5",
            origin=_KERAS_APPLICATIONS + "mobilenet/",
            rows=(128, 160, 192, 224),
        ),
    ),
    "MobileNetV2": Backbone(
        constructor=_application("MobileNetV2"),
        preprocess="mobilenet_v2",
        imagenet=ImagenetWeights(
            file="mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_{rows}_no_top.h5",
            origin=_KERAS_APPLICATIONS + "mobilenet_v2/",
            rows=(96, 128, 160, 192, 224),
        ),
    ),
    "MobileNetV3Small": Backbone(
        constructor=_application("MobileNetV3Small"),
        preprocess="none",
        imagenet=ImagenetWeights(
            file="weights_mobilenet_v3_small_224_1.0_float_no_top_v2.h5",
            origin=_KERAS_APPLICATIONS + "mobilenet_v3/",
            md5="d3e8ec802a04aa4fc771ee12a9a9b836",
        ),
    ),
    "MobileNetV3Large": Backbone(
        constructor=_application("MobileNetV3Large"),
        preprocess="none",
        imagenet=ImagenetWeights(
            file="weights_mobilenet_v3_large_224_1.0_float_no_top_v2.h5",
            origin=_KERAS_APPLICATIONS + "mobilenet_v3/",
            md5="07fb09a5933dd0c8eaafa16978110389",
        ),
    ),
    "EfficientNetB0": Backbone(
        constructor=_application("EfficientNetB0"),
        preprocess="none",
        imagenet=ImagenetWeights(
            file="efficientnetb0_notop.h5",
            origin="https://storage.googleapis.com/keras-applications/",
            md5="50bc09e76180e00e4465e1a485ddc09d",
            fix=_efficientnet_imagenet,
        ),
    ),
    "ResNet50": Backbone(
        constructor=_application("ResNet50"),
        preprocess="resnet",
        imagenet=ImagenetWeights(
            file="resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5",
            origin=_KERAS_APPLICATIONS + "resnet/",
            md5="4d473c1dd8becc155b73f8504c6f6626",
        ),
    ),
    "VGG16": Backbone(
        constructor=_application("VGG16"),
        preprocess="vgg16",
        imagenet=ImagenetWeights(
            file="vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5",
            origin=_KERAS_APPLICATIONS + "vgg16/",
            md5="6d6bbae143d832006294945121d1f1fc",
        ),
    ),
    "DenseNet121": Backbone(
        constructor=_application("DenseNet121"),
        preprocess="densenet",
        imagenet=ImagenetWeights(
            file="densenet121_weights_tf_dim_ordering_tf_kernels_notop.h5",
            origin=_KERAS_APPLICATIONS + "densenet/",
            md5="30ee3e1110167f948a6b9946edeeb738",
        ),
    ),
}


def get_backbone(name: str) -> Backbone:
    """The registry row of `name`; BakeoffError listing the known names otherwise."""
    if name not in REGISTRY:
        raise BakeoffError(f"unknown backbone '{name}': choose from {', '.join(REGISTRY)}")
    return REGISTRY[name]
