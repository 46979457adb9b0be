# ruff: noqa: E501  (the registry is a table: one backbone per line)
"""The backbone registry: one table of name -> constructor, preprocessing, sizes, weights.

Adding a backbone is adding a row; nothing else in bakeoff switches on backbone names.
Importing this module does not import Keras (constructors import it when called), so the
CLI, `bakeoff backbones`, `bakeoff init` and params.yaml checks run in milliseconds.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bakeoff.errors import BakeoffError

_KA = "https://storage.googleapis.com/tensorflow/keras-applications/"
_KA1 = "https://storage.googleapis.com/keras-applications/"  # EfficientNet B0-B7's folder
# Preprocessing modes, as built-in layers inside the saved model (bakeoff.backbone.build):
# tf: -1..1; caffe: BGR, ImageNet mean subtracted; torch: ImageNet mean/std;
# none: the network rescales 0..255 itself (EfficientNet, EfficientNetV2, ConvNeXt, MobileNetV3).
# hub: the keras-hub preset's own image converter (bakeoff.backbone.hub).
PREPROCESS_MODES = ("tf", "caffe", "torch", "none", "hub")


@dataclass(frozen=True, kw_only=True)
class ImagenetWeights:
    """Where a backbone's ImageNet no-top weights live, named exactly as Keras caches them.

    Keras's own `weights="imagenet"` is not used: it re-checks the hash of a cached file on
    every build and re-downloads on a mismatch, and reads `KERAS_HOME` only when Keras is
    imported. Loading the file ourselves keeps an offline machine working and lets the
    error name the missing file and the folder to put it in.
    """

    file: str  # `{rows}` is filled in from `rows` (MobileNet/V2: one file per input size)
    url: str  # where Keras downloads it from (NASNet's remote name differs from `file`)
    file_hash: str | None = None  # Keras's md5/sha256 of the file, checked on a fresh download
    rows: tuple[int, ...] = ()  # sizes with their own file; any other size uses 224
    fix: Callable[[Any], None] | None = None  # applied to the base after loading
    fixed_size: int | None = None  # the only input size these weights fit (NASNet)

    def file_name(self, image_size: int) -> str:
        return self.file.format(rows=image_size if image_size in self.rows else 224)

    def url_for(self, image_size: int) -> str:
        return self.url.format(rows=image_size if image_size in self.rows else 224)


@dataclass(frozen=True, kw_only=True)
class Backbone:
    """One registry row."""

    constructor: Callable[..., Any] | None  # Keras-applications style; None for keras-hub
    preprocess: str  # one of PREPROCESS_MODES
    family: str | None = None  # the keras.applications module whose preprocess_input it is
    min_size: int = 32
    default_size: int = 224
    imagenet: ImagenetWeights | None = None
    params_m: float | None = None  # millions, with the ImageNet top, as keras.io lists them
    top1: float | None = None  # ImageNet top-1 as keras.io (or the Keras source) documents
    hub: Any = None  # a keras-hub backbone's HubSpec (bakeoff.backbone.hub_sources)


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


def _app(
    name, family, mode, params_m, top1, url, *, default_size=224, min_size=32, file=None, **weights
) -> tuple[str, Backbone]:
    """One keras.applications row; the cached file is named as the URL's last part unless `file`."""
    imagenet = ImagenetWeights(file=file or url.rsplit("/", 1)[-1], url=url, **weights)
    entry = Backbone(
        constructor=_application(name),
        preprocess=mode,
        family=family,
        min_size=min_size,
        default_size=default_size,
        imagenet=imagenet,
        params_m=params_m,
        top1=top1,
    )
    return name, entry


# fmt: off
# name, keras.applications module, preprocessing, parameters (M), ImageNet top-1, weights URL.
# Parameters and top-1: the keras.io/api/applications table (MobileNetV3: the table in Keras's
# mobilenet_v3.py). URLs, file names and hashes: each application's source in Keras 3.
REGISTRY: dict[str, Backbone] = dict([
    ("SimpleCNN", Backbone(constructor=simple_cnn, preprocess="none", min_size=16, default_size=64, params_m=0.29)),
    _app("MobileNetV3Small", "mobilenet_v3", "none", 2.9, 0.681, _KA + "mobilenet_v3/weights_mobilenet_v3_small_224_1.0_float_no_top_v2.h5", file_hash="d3e8ec802a04aa4fc771ee12a9a9b836"),
    _app("MobileNetV3Large", "mobilenet_v3", "none", 5.4, 0.756, _KA + "mobilenet_v3/weights_mobilenet_v3_large_224_1.0_float_no_top_v2.h5", file_hash="07fb09a5933dd0c8eaafa16978110389"),
    _app("MobileNet", "mobilenet", "tf", 4.3, 0.704, _KA + "mobilenet/mobilenet_1_0_{rows}_tf_no_top.h5", rows=(128, 160, 192, 224)),
    _app("MobileNetV2", "mobilenet_v2", "tf", 3.5, 0.713, _KA + "mobilenet_v2/mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_{rows}_no_top.h5", rows=(96, 128, 160, 192, 224)),
    _app("NASNetMobile", "nasnet", "tf", 5.3, 0.744, _KA + "nasnet/NASNet-mobile-no-top.h5", file="nasnet_mobile_no_top.h5", file_hash="1ed92395b5b598bdda52abe5c0dbfd63", fixed_size=224),
    _app("NASNetLarge", "nasnet", "tf", 88.9, 0.825, _KA + "nasnet/NASNet-large-no-top.h5", file="nasnet_large_no_top.h5", default_size=331, file_hash="d81d89dc07e6e56530c4e77faddd61b5", fixed_size=331),
    _app("EfficientNetB0", "efficientnet", "none", 5.3, 0.771, _KA1 + "efficientnetb0_notop.h5", file_hash="50bc09e76180e00e4465e1a485ddc09d", fix=_efficientnet_imagenet),
    _app("EfficientNetB1", "efficientnet", "none", 7.9, 0.791, _KA1 + "efficientnetb1_notop.h5", default_size=240, file_hash="74c4e6b3e1f6a1eea24c589628592432", fix=_efficientnet_imagenet),
    _app("EfficientNetB2", "efficientnet", "none", 9.2, 0.801, _KA1 + "efficientnetb2_notop.h5", default_size=260, file_hash="111f8e2ac8aa800a7a99e3239f7bfb39", fix=_efficientnet_imagenet),
    _app("EfficientNetB3", "efficientnet", "none", 12.3, 0.816, _KA1 + "efficientnetb3_notop.h5", default_size=300, file_hash="af6d107764bb5b1abb91932881670226", fix=_efficientnet_imagenet),
    _app("EfficientNetB4", "efficientnet", "none", 19.5, 0.829, _KA1 + "efficientnetb4_notop.h5", default_size=380, file_hash="ebc24e6d6c33eaebbd558eafbeedf1ba", fix=_efficientnet_imagenet),
    _app("EfficientNetB5", "efficientnet", "none", 30.6, 0.836, _KA1 + "efficientnetb5_notop.h5", default_size=456, file_hash="38879255a25d3c92d5e44e04ae6cec6f", fix=_efficientnet_imagenet),
    _app("EfficientNetB6", "efficientnet", "none", 43.3, 0.84, _KA1 + "efficientnetb6_notop.h5", default_size=528, file_hash="9ecce42647a20130c1f39a5d4cb75743", fix=_efficientnet_imagenet),
    _app("EfficientNetB7", "efficientnet", "none", 66.7, 0.843, _KA1 + "efficientnetb7_notop.h5", default_size=600, file_hash="cbcfe4450ddf6f3ad90b1b398090fe4a", fix=_efficientnet_imagenet),
    _app("EfficientNetV2B0", "efficientnet_v2", "none", 7.2, 0.787, _KA + "efficientnet_v2/efficientnetv2-b0_notop.h5", file_hash="893217f2bb855e2983157299931e43ff"),
    _app("EfficientNetV2B1", "efficientnet_v2", "none", 8.2, 0.798, _KA + "efficientnet_v2/efficientnetv2-b1_notop.h5", default_size=240, file_hash="0e80663031ca32d657f9caa404b6ec37"),
    _app("EfficientNetV2B2", "efficientnet_v2", "none", 10.2, 0.805, _KA + "efficientnet_v2/efficientnetv2-b2_notop.h5", default_size=260, file_hash="1dfe2e7a5d45b6632553a8961ea609eb"),
    _app("EfficientNetV2B3", "efficientnet_v2", "none", 14.5, 0.82, _KA + "efficientnet_v2/efficientnetv2-b3_notop.h5", default_size=300, file_hash="f6abf7b5849ac99a89b50dd3fd532856"),
    _app("EfficientNetV2S", "efficientnet_v2", "none", 21.6, 0.839, _KA + "efficientnet_v2/efficientnetv2-s_notop.h5", default_size=384, file_hash="af0682fb74e8c54910f2d4393339c070"),
    _app("EfficientNetV2M", "efficientnet_v2", "none", 54.4, 0.853, _KA + "efficientnet_v2/efficientnetv2-m_notop.h5", default_size=480, file_hash="1b8dc055df72dde80d614482840fe342"),
    _app("EfficientNetV2L", "efficientnet_v2", "none", 119.0, 0.857, _KA + "efficientnet_v2/efficientnetv2-l_notop.h5", default_size=480, file_hash="b0b66b5c863aef5b46e8608fe1711615"),
    _app("ConvNeXtTiny", "convnext", "none", 28.6, 0.813, _KA + "convnext/convnext_tiny_notop.h5", file_hash="d547c096cabd03329d7be5562c5e14798aa39ed24b474157cef5e85ab9e49ef1"),
    _app("ConvNeXtSmall", "convnext", "none", 50.2, 0.823, _KA + "convnext/convnext_small_notop.h5", file_hash="6fc8009faa2f00c1c1dfce59feea9b0745eb260a7dd11bee65c8e20843da6eab"),
    _app("ConvNeXtBase", "convnext", "none", 88.5, 0.853, _KA + "convnext/convnext_base_notop.h5", file_hash="40a20c5548a5e9202f69735ecc06c990e6b7c9d2de39f0361e27baeb24cb7c45"),
    _app("ConvNeXtLarge", "convnext", "none", 197.7, 0.863, _KA + "convnext/convnext_large_notop.h5", file_hash="96f02b6f0753d4f543261bc9d09bed650f24dd6bc02ddde3066135b63d23a1cd"),
    _app("ConvNeXtXLarge", "convnext", "none", 350.1, 0.867, _KA + "convnext/convnext_xlarge_notop.h5", file_hash="de3f8a54174130e0cecdc71583354753d557fcf1f4487331558e2a16ba0cfe05"),
    _app("ResNet50", "resnet", "caffe", 25.6, 0.749, _KA + "resnet/resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5", file_hash="4d473c1dd8becc155b73f8504c6f6626"),
    _app("ResNet101", "resnet", "caffe", 44.7, 0.764, _KA + "resnet/resnet101_weights_tf_dim_ordering_tf_kernels_notop.h5", file_hash="88cf7a10940856eca736dc7b7e228a21"),
    _app("ResNet152", "resnet", "caffe", 60.4, 0.766, _KA + "resnet/resnet152_weights_tf_dim_ordering_tf_kernels_notop.h5", file_hash="ee4c566cf9a93f14d82f913c2dc6dd0c"),
    _app("ResNet50V2", "resnet_v2", "tf", 25.6, 0.76, _KA + "resnet/resnet50v2_weights_tf_dim_ordering_tf_kernels_notop.h5", file_hash="fac2f116257151a9d068a22e544a4917"),
    _app("ResNet101V2", "resnet_v2", "tf", 44.7, 0.772, _KA + "resnet/resnet101v2_weights_tf_dim_ordering_tf_kernels_notop.h5", file_hash="c0ed64b8031c3730f411d2eb4eea35b5"),
    _app("ResNet152V2", "resnet_v2", "tf", 60.4, 0.78, _KA + "resnet/resnet152v2_weights_tf_dim_ordering_tf_kernels_notop.h5", file_hash="ed17cf2e0169df9d443503ef94b23b33"),
    _app("DenseNet121", "densenet", "torch", 8.1, 0.75, _KA + "densenet/densenet121_weights_tf_dim_ordering_tf_kernels_notop.h5", file_hash="30ee3e1110167f948a6b9946edeeb738"),
    _app("DenseNet169", "densenet", "torch", 14.3, 0.762, _KA + "densenet/densenet169_weights_tf_dim_ordering_tf_kernels_notop.h5", file_hash="b8c4d4c20dd625c148057b9ff1c1176b"),
    _app("DenseNet201", "densenet", "torch", 20.2, 0.773, _KA + "densenet/densenet201_weights_tf_dim_ordering_tf_kernels_notop.h5", file_hash="c13680b51ded0fb44dff2d8f86ac8bb1"),
    _app("InceptionV3", "inception_v3", "tf", 23.9, 0.779, _KA + "inception_v3/inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5", default_size=299, min_size=75, file_hash="bcbd6486424b2319ff4ef7d526e38f63"),
    _app("InceptionResNetV2", "inception_resnet_v2", "tf", 55.9, 0.803, _KA + "inception_resnet_v2/inception_resnet_v2_weights_tf_dim_ordering_tf_kernels_notop.h5", default_size=299, min_size=75, file_hash="d19885ff4a710c122648d3b5c3b684e4"),
    _app("Xception", "xception", "tf", 22.9, 0.79, _KA + "xception/xception_weights_tf_dim_ordering_tf_kernels_notop.h5", default_size=299, min_size=71, file_hash="b0042744bf5b25fce3cb969f33bebb97"),
    _app("VGG16", "vgg16", "caffe", 138.4, 0.713, _KA + "vgg16/vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5", file_hash="6d6bbae143d832006294945121d1f1fc"),
    _app("VGG19", "vgg19", "caffe", 143.7, 0.713, _KA + "vgg19/vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5", file_hash="253f8cb515780f3b799900260a226db6"),
])
# fmt: on


def get_backbone(name: str) -> Backbone:
    """The registry row of `name` (a keras-hub backbone's made from its spec); BakeoffError
    listing the known names otherwise."""
    from bakeoff.backbone.hub_sources import hub_spec

    if name in REGISTRY:
        return REGISTRY[name]
    spec = hub_spec(name)
    if spec is None:
        raise BakeoffError(
            f"unknown backbone '{name}': choose from {', '.join(REGISTRY)} or a keras-hub "
            "preset (`bakeoff backbones` lists them)"
        )
    params_m = spec.params / 1e6 if spec.params else None
    return Backbone(constructor=None, preprocess="hub", family=spec.family, hub=spec,
                    min_size=spec.patch_size, default_size=spec.image_size, params_m=params_m,
                    top1=spec.top1)  # fmt: skip


def input_size(name: str, image_size: int | None) -> int:
    """The side `name` trains and predicts at: `train.image_size` (after the backbone's
    overrides), or the backbone's default input size when that is null."""
    return image_size or get_backbone(name).default_size


def check_image_size(name: str, image_size: int, weights: str) -> None:
    """BakeoffError when `name` cannot take `image_size` px with `weights`, saying what to set.

    Below the minimum Keras refuses to build; NASNet's ImageNet weights fit one size only;
    a keras-hub transformer takes multiples of its patch size (Swin: see `check_hub_size`).
    """
    entry = get_backbone(name)
    if entry.hub is not None:
        from bakeoff.backbone.hub_sources import check_hub_size

        return check_hub_size(entry.hub, image_size)
    if image_size < entry.min_size:
        raise BakeoffError(
            f"image size {image_size} is below {name}'s minimum of {entry.min_size}: "
            f"raise train.image_size (or train.overrides.{name}.image_size) to at least {entry.min_size}"
        )
    fixed = entry.imagenet.fixed_size if entry.imagenet else None
    if weights == "imagenet" and fixed is not None and image_size != fixed:
        raise BakeoffError(
            f"{name}'s ImageNet weights fit {fixed} px only, not {image_size}: set "
            f"train.overrides.{name}.image_size to {fixed} (or train.image_size to null)"
        )


def keras_cache_dir() -> Path:
    """Keras's cache folder, read now (not at import) so KERAS_HOME set later counts."""
    return Path(os.environ.get("KERAS_HOME", os.path.join("~", ".keras"))).expanduser()


def cached_weights(name: str, image_size: int) -> tuple[Path, str]:
    """Where `name`'s ImageNet file belongs in Keras's cache, and its download URL.

    Raises:
        BakeoffError: `name` has no ImageNet weights.
    """
    weights = get_backbone(name).imagenet
    if weights is None:
        raise BakeoffError(
            f"{name} has no ImageNet weights: set train.weights to none or a weights file"
        )
    return keras_cache_dir() / "models" / weights.file_name(image_size), weights.url_for(image_size)
