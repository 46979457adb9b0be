"""Which keras-hub model a backbone name means, without importing keras-hub.

A name is a preset of `hub_presets.HUB_PRESETS` (`dinov2_small`), or a slug that params.yaml's
`sources:` maps to a source DVC cannot use as a stage name or file name: `hf://timm/<name>`
(keras-hub converts the timm CNN families) or the folder of a local keras-hub preset
(`save_to_preset`). `source_slug` derives the slug; `bakeoff init` writes both for the user.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from bakeoff.backbone.hub_presets import FAMILIES, HUB_PRESETS, TIMM_ARCHITECTURES
from bakeoff.errors import BakeoffError

_SOURCES: dict[str, str] = {}  # slug -> source, from params.yaml's `sources:`


@dataclass(frozen=True)
class HubSpec:
    """A keras-hub backbone as bakeoff uses it.

    Attributes:
        name: The backbone name (the preset's, or the slug of a source).
        source: What `keras_hub.models.Backbone.from_preset` receives.
        family: A key of `hub_presets.FAMILIES`.
        image_size: The default input side.
        patch_size: Input sides must be multiples of it.
        params: Parameter count, None where unknown before download (timm).
        handle: Where the weights come from (a Kaggle handle, a Hugging Face repo, a folder).
        top1: Documented ImageNet-1k top-1, or None.
        protocol: How top1 was measured.
        window: Swin only: the attention window's side, in patches of its last stage.
        stages: Swin only: its number of stages (each but the last halves the grid).
    """

    name: str
    source: str
    family: str
    image_size: int
    patch_size: int
    params: int | None
    handle: str
    top1: float | None = None
    protocol: str | None = None
    window: int | None = None
    stages: int | None = None

    @property
    def local(self) -> bool:
        """A preset folder on this machine (nothing to fetch)."""
        return not self.source.startswith(("hf://", "kaggle://")) and self.name != self.source


def is_source(name: str) -> bool:
    """`name` is a source (hf:// or a folder path), not a backbone name."""
    return name.startswith("hf://") or "/" in name or name.startswith(".")


def source_slug(source: str) -> str:
    """A name for `source` that DVC accepts as a stage-matrix key and bakeoff as a file name.

    `hf://timm/resnet50.a1_in1k` -> `timm-resnet50-a1_in1k`; a folder -> its last part
    (`-local` appended when that is a preset's name: a downloaded copy of `dinov2_small`).
    """
    if source.startswith("hf://"):
        text = source.removeprefix("hf://")
    else:
        text = Path(source).expanduser().resolve().name
        text += "-local" if text in HUB_PRESETS else ""
    slug = re.sub(r"[^A-Za-z0-9_-]+", "-", text).strip("-")
    if not slug:
        raise BakeoffError(f"cannot derive a backbone name from {source!r}: name it yourself")
    return slug


def register_sources(sources: dict[str, str] | None) -> None:
    """Make params.yaml's `sources:` (slug -> source) known to `hub_spec`, checked."""
    _SOURCES.clear()
    for slug, source in (sources or {}).items():
        if slug in HUB_PRESETS or source_slug(slug) != slug:
            raise BakeoffError(
                f"sources: {slug!r} is not a usable backbone name (letters, digits, _ and -, "
                f"not a preset's name): use {source_slug(source)!r}"
            )
        _SOURCES[slug] = source
    for slug in _SOURCES:
        hub_spec(slug)  # a broken folder or an unconvertible timm model fails now


def _from_timm(name: str, source: str) -> HubSpec:
    model = source.removeprefix("hf://timm/")
    if not model.startswith(TIMM_ARCHITECTURES):
        raise BakeoffError(
            f"{source}: keras-hub converts only these timm families: "
            f"{', '.join(TIMM_ARCHITECTURES)}; use a keras-hub preset for transformers"
        )
    size = re.search(r"_(\d{3})(?:\.|$)", model)
    return HubSpec(name, source, "timm", int(size.group(1)) if size else 224, 1, None, source)


def _from_folder(name: str, source: str) -> HubSpec:
    folder = Path(source).expanduser()
    try:
        config = json.loads((folder / "config.json").read_text())
    except (OSError, ValueError) as exc:
        raise BakeoffError(
            f"{folder} is not a keras-hub preset folder ({type(exc).__name__}: no readable "
            "config.json): save one with `backbone.save_to_preset(folder)`"
        ) from None
    if "architecture" in config:  # a timm checkpoint folder (`huggingface-cli download`)
        spec = _from_timm(name, f"hf://timm/{config['architecture']}")
        size = (config.get("pretrained_cfg") or {}).get("input_size") or [3, spec.image_size]
        return HubSpec(name, str(folder), "timm", int(size[-1]), 1, None, source)
    cls = str(config.get("class_name", "")).split(">")[-1]
    family = next((f for f, info in FAMILIES.items() if info.backbone_class == cls), None)
    if family is None or family == "timm":
        known = ", ".join(info.backbone_class for f, info in FAMILIES.items() if f != "timm")
        raise BakeoffError(f"{folder} holds a {cls or 'unknown model'}: bakeoff takes {known}")
    inner = config.get("config", {})
    vision = inner.get("vision_encoder", {}).get("config", inner)
    size = int((vision.get("image_shape") or [224])[0])
    patch = vision.get("patch_size") or 1
    patch = int(patch[0] if isinstance(patch, list) else patch)  # ViT saves (rows, columns)
    meta_file = folder / "metadata.json"
    meta = json.loads(meta_file.read_text()) if meta_file.is_file() else {}
    window, stages = None, None
    if family == "swin":
        window, stages = int(inner["window_size"]), len(inner["depths"])
    return HubSpec(
        name, str(folder), family, size, patch, meta.get("parameter_count"), source,
        window=window, stages=stages,
    )  # fmt: skip


def hub_spec(name: str) -> HubSpec | None:
    """The keras-hub backbone `name` means, or None when it names none."""
    if name in HUB_PRESETS:
        p = HUB_PRESETS[name]
        handle = f"kaggle://{p.handle}"
        window = re.search(r"window(\d+)", name)  # keras-hub's Swin presets: four stages each
        return HubSpec(
            name, name, p.family, p.image_size, p.patch_size, p.params, handle, p.top1, p.protocol,
            window=int(window.group(1)) if window else None, stages=4 if window else None,
        )  # fmt: skip
    source = _SOURCES.get(name)
    if source is None:
        return None
    if source.startswith("hf://timm/"):
        return _from_timm(name, source)
    if source.startswith("hf://"):
        raise BakeoffError(f"sources: {source}: bakeoff takes hf://timm/<model> only")
    return _from_folder(name, source)


def _nearest(step: int, size: int, least: int = 0) -> str:
    """The multiples of `step` (at least `least` and `step`) nearest `size`: "a" or "a or b"."""
    least = max(least, step)
    low, high = max(least, size // step * step), max(least, -(-size // step) * step)
    return str(low) if low == high else f"{low} or {high}"


def check_hub_size(spec: HubSpec, image_size: int) -> None:
    """BakeoffError unless `spec` can take `image_size` px, saying what to set.

    Every family takes multiples of its patch size: ViT, DeiT, SigLIP and CLIP resample their
    position embeddings, DINOv2/v3 interpolate theirs. Swin's stages halve the grid and its last
    stage must hold one whole attention window (keras-hub fails otherwise), so Swin takes
    multiples of patch * 2^(stages - 1) of at least window times that. The limits are the
    architecture's, so they hold with random weights too.
    """
    setting = f"set train.overrides.{spec.name}.image_size to"
    if image_size % spec.patch_size:
        raise BakeoffError(
            f"image size {image_size} is not a multiple of {spec.name}'s patch size "
            f"{spec.patch_size}: {setting} {_nearest(spec.patch_size, image_size)}"
        )
    if spec.family == "swin" and spec.window and spec.stages:
        step = spec.patch_size * 2 ** (spec.stages - 1)
        least = spec.window * step
        if image_size % step or image_size < least:
            raise BakeoffError(
                f"{spec.name} takes image sizes that are multiples of {step} from {least} up "
                f"(its {spec.stages} stages shrink the image {step}-fold and the last must hold "
                f"a whole {spec.window}x{spec.window} attention window), not {image_size}: "
                f"{setting} {_nearest(step, image_size, least)}"
            )


def check_hub_memory(spec: HubSpec, total_bytes: int) -> None:
    """BakeoffError when loading `spec` would not fit this machine's memory.

    Loading holds the float32 weights twice (the file read and the model's variables).
    """
    if spec.params is None:
        return
    need = spec.params * 4 * 2
    if need > total_bytes:
        raise BakeoffError(
            f"{spec.name} needs about {need / 2**30:.1f} GiB of memory to load "
            f"({spec.params / 1e6:.0f}M float32 parameters, held twice while loading); this "
            f"machine has {total_bytes / 2**30:.1f} GiB: pick a smaller preset"
        )
