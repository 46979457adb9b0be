# ruff: noqa: E501  (a table: one preset per line)
"""keras-hub's image-backbone presets that bakeoff offers, as static data.

Listing, checking params and naming missing weights read this table, never keras-hub itself,
so `bakeoff backbones`, `bakeoff init` and params.yaml checks stay fast and work without
TensorFlow. tests/code/test_hub_presets.py checks every row against the pinned keras-hub's
own preset list (names, handles, parameters, and the image size the preset documents).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class HubFamily:
    """What bakeoff does with one keras-hub family.

    Attributes:
        backbone_class: The `keras_hub.models` class its presets load as.
        features: How the linear-probe features are pooled (what `bakeoff backbones` says).
    """

    backbone_class: str
    features: str


FAMILIES: dict[str, HubFamily] = {
    "dinov2": HubFamily("DINOV2Backbone", "CLS + mean of patch tokens (registers excluded)"),
    "dinov3": HubFamily("DINOV3Backbone", "CLS + mean of patch tokens (registers excluded)"),
    "siglip": HubFamily("SigLIPBackbone", "attention-pooled image embedding (MAP head)"),
    "clip": HubFamily("CLIPBackbone", "pooled CLS embedding, before the projection"),
    "vit": HubFamily("ViTBackbone", "CLS token"),
    "deit": HubFamily("DeiTBackbone", "mean of class and distillation tokens"),
    "swin": HubFamily("SwinTransformerBackbone", "global average pooling"),
    # Converted on the fly by keras-hub from Hugging Face timm checkpoints (CNNs only).
    "timm": HubFamily("Backbone", "global average pooling"),
}
# timm architectures keras-hub 0.32 converts (keras_hub/src/utils/timm/preset_loader.py).
TIMM_ARCHITECTURES = (
    "resnet",
    "csp",
    "dark",
    "densenet",
    "mobilenet",
    "vgg",
    "efficientnet",
    "hgnetv2",
)
# ImageNet-1k top-1 protocols: lin = linear probe on frozen features, zs = zero-shot,
# ft = trained/fine-tuned on ImageNet-1k (the classifier these weights come from).
PROTOCOLS = {"lin": "linear probe", "zs": "zero-shot", "ft": "supervised"}


@dataclass(frozen=True)
class HubPreset:
    """One keras-hub preset.

    Attributes:
        name: The preset name, spelled as keras-hub spells it.
        family: A key of FAMILIES.
        params: keras-hub's parameter count (SigLIP and CLIP: both towers, text included).
        image_size: The preset's own input side in pixels.
        patch_size: Its patch side in pixels (Swin: the patch-embedding stride).
        handle: Its Kaggle model handle (`kaggle://` omitted).
        top1: ImageNet-1k top-1 as the model's paper or model card documents; None where
            none is documented for this checkpoint.
        protocol: How `top1` was measured (a key of PROTOCOLS).
    """

    name: str
    family: str
    params: int
    image_size: int
    patch_size: int
    handle: str
    top1: float | None = None
    protocol: str | None = None


def _p(*args) -> tuple[str, HubPreset]:
    return args[0], HubPreset(*args)


# fmt: off
# Parameters and handles: keras-hub 0.32's `presets`. Sizes and patches: the preset's name
# (DINOv2/v3 and the unsized CLIP presets: 224, keras-hub's and the model card's default).
# Top-1: DINOv2 paper Table 4 (linear), CLIP paper Table 10 (linear), OpenCLIP's model
# cards (zero-shot), DeiT paper Table 5 (distilled), Swin paper Table 1 (ImageNet-1k).
HUB_PRESETS: dict[str, HubPreset] = dict([
    _p("dinov2_small", "dinov2", 22582656, 224, 14, "keras/dinov2/keras/dinov2_small/1", 0.811, "lin"),
    _p("dinov2_base", "dinov2", 87632640, 224, 14, "keras/dinov2/keras/dinov2_base/1", 0.845, "lin"),
    _p("dinov2_large", "dinov2", 305771520, 224, 14, "keras/dinov2/keras/dinov2_large/1", 0.863, "lin"),
    _p("dinov2_giant", "dinov2", 1138585088, 224, 14, "keras/dinov2/keras/dinov2_giant/1", 0.865, "lin"),
    _p("dinov2_with_registers_small", "dinov2", 22584192, 224, 14, "keras/dinov2/keras/dinov2_with_registers_small/1"),
    _p("dinov2_with_registers_base", "dinov2", 87635712, 224, 14, "keras/dinov2/keras/dinov2_with_registers_base/1"),
    _p("dinov2_with_registers_large", "dinov2", 305775616, 224, 14, "keras/dinov2/keras/dinov2_with_registers_large/1"),
    _p("dinov2_with_registers_giant", "dinov2", 1138591232, 224, 14, "keras/dinov2/keras/dinov2_with_registers_giant/1"),
    _p("dinov3_vit_small_lvd1689m", "dinov3", 21600000, 224, 16, "keras/dinov3/keras/dinov3_vit_small_lvd1689m/1"),
    _p("dinov3_vit_small_plus_lvd1689m", "dinov3", 29000000, 224, 16, "keras/dinov3/keras/dinov3_vit_small_plus_lvd1689m/1"),
    _p("dinov3_vit_base_lvd1689m", "dinov3", 86000000, 224, 16, "keras/dinov3/keras/dinov3_vit_base_lvd1689m/1"),
    _p("dinov3_vit_large_lvd1689m", "dinov3", 300000000, 224, 16, "keras/dinov3/keras/dinov3_vit_large_lvd1689m/1"),
    _p("dinov3_vit_huge_plus_lvd1689m", "dinov3", 840000000, 224, 16, "keras/dinov3/keras/dinov3_vit_huge_plus_lvd1689m/1"),
    _p("dinov3_vit_7b_lvd1689m", "dinov3", 6700000000, 224, 16, "keras/dinov3/keras/dinov3_vit_7b_lvd1689m/1"),
    _p("dinov3_vit_large_sat493m", "dinov3", 300000000, 224, 16, "keras/dinov3/keras/dinov3_vit_large_sat493m/1"),
    _p("dinov3_vit_7b_sat493m", "dinov3", 6700000000, 224, 16, "keras/dinov3/keras/dinov3_vit_7b_sat493m/1"),
    _p("siglip_base_patch16_224", "siglip", 203156230, 224, 16, "keras/siglip/keras/siglip_base_patch16_224/1"),
    _p("siglip_base_patch16_256", "siglip", 203202370, 256, 16, "keras/siglip/keras/siglip_base_patch16_256/1"),
    _p("siglip_base_patch16_384", "siglip", 203448450, 384, 16, "keras/siglip/keras/siglip_base_patch16_384/1"),
    _p("siglip_base_patch16_512", "siglip", 203792962, 512, 16, "keras/siglip/keras/siglip_base_patch16_512/1"),
    _p("siglip_large_patch16_256", "siglip", 652151106, 256, 16, "keras/siglip/keras/siglip_large_patch16_256/1"),
    _p("siglip_large_patch16_384", "siglip", 652479106, 384, 16, "keras/siglip/keras/siglip_large_patch16_384/1"),
    _p("siglip_so400m_patch14_224", "siglip", 877360578, 224, 14, "keras/siglip/keras/siglip_so400m_patch14_224/1"),
    _p("siglip_so400m_patch14_384", "siglip", 877961291, 384, 14, "keras/siglip/keras/siglip_so400m_patch14_384/1"),
    _p("siglip_so400m_patch16_256_i18n", "siglip", 1128759282, 256, 16, "keras/siglip/keras/siglip_so400m_patch16_256_i18n/1"),
    _p("siglip_base_patch16_256_multilingual", "siglip", 370626370, 256, 16, "keras/siglip/keras/siglip_base_patch16_256_multilingual/1"),
    _p("siglip2_base_patch16_224", "siglip", 375188230, 224, 16, "keras/siglip/keras/siglip2_base_patch16_224/1"),
    _p("siglip2_base_patch16_256", "siglip", 375234370, 256, 16, "keras/siglip/keras/siglip2_base_patch16_256/1"),
    _p("siglip2_base_patch32_256", "siglip", 376856194, 256, 32, "keras/siglip/keras/siglip2_base_patch32_256/1"),
    _p("siglip2_base_patch16_384", "siglip", 376856194, 384, 16, "keras/siglip/keras/siglip2_base_patch16_384/1"),
    _p("siglip2_large_patch16_256", "siglip", 881527106, 256, 16, "keras/siglip/keras/siglip2_large_patch16_256/1"),
    _p("siglip2_large_patch16_384", "siglip", 881855106, 384, 16, "keras/siglip/keras/siglip2_large_patch16_384/1"),
    _p("siglip2_large_patch16_512", "siglip", 882314306, 512, 16, "keras/siglip/keras/siglip2_large_patch16_512/1"),
    _p("siglip2_giant_opt_patch16_256", "siglip", 1871394226, 256, 16, "keras/siglip/keras/siglip2_giant_opt_patch16_256/2"),
    _p("siglip2_giant_opt_patch16_384", "siglip", 1871886066, 384, 16, "keras/siglip/keras/siglip2_giant_opt_patch16_384/1"),
    _p("siglip2_so400m_patch14_224", "siglip", 1135463922, 224, 14, "keras/siglip/keras/siglip2_so400m_patch14_224/1"),
    _p("siglip2_so400m_patch14_384", "siglip", 1136009291, 384, 14, "keras/siglip/keras/siglip2_so400m_patch14_384/1"),
    _p("siglip2_so400m_patch16_256", "siglip", 1135671282, 256, 16, "keras/siglip/keras/siglip2_so400m_patch16_256/1"),
    _p("siglip2_so400m_patch16_384", "siglip", 1136040242, 384, 16, "keras/siglip/keras/siglip2_so400m_patch16_384/1"),
    _p("siglip2_so400m_patch16_512", "siglip", 1136555698, 512, 16, "keras/siglip/keras/siglip2_so400m_patch16_512/1"),
    _p("medsiglip_900m_448", "siglip", 878301426, 448, 14, "keras/medsiglip/keras/medsiglip_900m_448/1"),
    _p("clip_vit_base_patch16", "clip", 149620934, 224, 16, "keras/clip/keras/clip_vit_base_patch16/3", 0.802, "lin"),
    _p("clip_vit_base_patch32", "clip", 151277363, 224, 32, "keras/clip/keras/clip_vit_base_patch32/3", 0.761, "lin"),
    _p("clip_vit_large_patch14", "clip", 427616770, 224, 14, "keras/clip/keras/clip_vit_large_patch14/3", 0.839, "lin"),
    _p("clip_vit_large_patch14_336", "clip", 427944770, 336, 14, "keras/clip/keras/clip_vit_large_patch14_336/3", 0.854, "lin"),
    _p("clip_vit_b_32_laion2b_s34b_b79k", "clip", 151277363, 224, 32, "keras/clip/keras/clip_vit_b_32_laion2b_s34b_b79k/3", 0.666, "zs"),
    _p("clip_vit_h_14_laion2b_s32b_b79k", "clip", 986109698, 224, 14, "keras/clip/keras/clip_vit_h_14_laion2b_s32b_b79k/3", 0.78, "zs"),
    _p("clip_vit_g_14_laion2b_s12b_b42k", "clip", 1366678530, 224, 14, "keras/clip/keras/clip_vit_g_14_laion2b_s12b_b42k/3", 0.766, "zs"),
    _p("clip_vit_bigg_14_laion2b_39b_b160k", "clip", 2539567362, 224, 14, "keras/clip/keras/clip_vit_bigg_14_laion2b_39b_b160k/3", 0.801, "zs"),
    _p("vit_base_patch16_224_imagenet", "vit", 85798656, 224, 16, "keras/vit/keras/vit_base_patch16_224_imagenet/4"),
    _p("vit_base_patch16_384_imagenet", "vit", 86090496, 384, 16, "keras/vit/keras/vit_base_patch16_384_imagenet/4"),
    _p("vit_large_patch16_224_imagenet", "vit", 303301632, 224, 16, "keras/vit/keras/vit_large_patch16_224_imagenet/4"),
    _p("vit_large_patch16_384_imagenet", "vit", 303690752, 384, 16, "keras/vit/keras/vit_large_patch16_384_imagenet/4"),
    _p("vit_base_patch32_384_imagenet", "vit", 87528192, 384, 32, "keras/vit/keras/vit_base_patch32_384_imagenet/3"),
    _p("vit_large_patch32_384_imagenet", "vit", 305607680, 384, 32, "keras/vit/keras/vit_large_patch32_384_imagenet/3"),
    _p("vit_base_patch16_224_imagenet21k", "vit", 85798656, 224, 16, "keras/vit/keras/vit_base_patch16_224_imagenet21k/3"),
    _p("vit_base_patch32_224_imagenet21k", "vit", 87455232, 224, 32, "keras/vit/keras/vit_base_patch32_224_imagenet21k/3"),
    _p("vit_huge_patch14_224_imagenet21k", "vit", 630764800, 224, 14, "keras/vit/keras/vit_huge_patch14_224_imagenet21k/3"),
    _p("vit_large_patch16_224_imagenet21k", "vit", 303301632, 224, 16, "keras/vit/keras/vit_large_patch16_224_imagenet21k/3"),
    _p("vit_large_patch32_224_imagenet21k", "vit", 305510400, 224, 32, "keras/vit/keras/vit_large_patch32_224_imagenet21k/3"),
    _p("deit_base_distilled_patch16_384_imagenet", "deit", 86092032, 384, 16, "keras/deit/keras/deit_base_distilled_patch16_384_imagenet/1", 0.852, "ft"),
    _p("deit_base_distilled_patch16_224_imagenet", "deit", 85800192, 224, 16, "keras/deit/keras/deit_base_distilled_patch16_224_imagenet/1", 0.834, "ft"),
    _p("deit_tiny_distilled_patch16_224_imagenet", "deit", 5524800, 224, 16, "keras/deit/keras/deit_tiny_distilled_patch16_224_imagenet/1", 0.745, "ft"),
    _p("deit_small_distilled_patch16_224_imagenet", "deit", 21666432, 224, 16, "keras/deit/keras/deit_small_distilled_patch16_224_imagenet/1", 0.812, "ft"),
    _p("swin_tiny_patch4_window7_224", "swin", 27519354, 224, 4, "keras/swin-transformer/keras/swin_tiny_patch4_window7_224/1", 0.813, "ft"),
    _p("swin_small_patch4_window7_224", "swin", 48837258, 224, 4, "keras/swin-transformer/keras/swin_small_patch4_window7_224/1", 0.83, "ft"),
    _p("swin_base_patch4_window7_224", "swin", 86743224, 224, 4, "keras/swin-transformer/keras/swin_base_patch4_window7_224/1"),
    _p("swin_base_patch4_window12_384", "swin", 86878584, 384, 4, "keras/swin-transformer/keras/swin_base_patch4_window12_384/1"),
    _p("swin_large_patch4_window7_224", "swin", 194995476, 224, 4, "keras/swin-transformer/keras/swin_large_patch4_window7_224/1"),
    _p("swin_large_patch4_window12_384", "swin", 195198516, 384, 4, "keras/swin-transformer/keras/swin_large_patch4_window12_384/1"),
])
# fmt: on
