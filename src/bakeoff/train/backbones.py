"""The backbone registry: a table of name -> constructor, preprocessing, sizes, weights.

Adding a backbone is adding a row; nothing else in bakeoff switches on backbone names.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

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
