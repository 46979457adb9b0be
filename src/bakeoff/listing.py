"""`bakeoff backbones`: the Keras applications and the keras-hub presets as plain-text tables.

Reads the static tables only (neither TensorFlow nor keras-hub is imported).
"""

from __future__ import annotations

from bakeoff.backbone.hub_presets import FAMILIES, HUB_PRESETS, PROTOCOLS
from bakeoff.backbone.registry import REGISTRY


def _table(rows: list[tuple[str, ...]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = [
        "  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)).rstrip() for r in rows
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def format_keras() -> str:
    """The keras.applications rows (and SimpleCNN)."""
    rows = [
        ("name", "params", "default px", "min px", "top-1", "preprocess", "ImageNet weights file")
    ]
    for name, e in REGISTRY.items():
        params = f"{e.params_m:.1f}M" if e.params_m is not None else "-"
        top1 = f"{e.top1:.3f}" if e.top1 is not None else "-"
        weights = e.imagenet.file_name(e.default_size) if e.imagenet else "- (no ImageNet weights)"
        if e.imagenet and e.imagenet.fixed_size:
            weights += f" ({e.imagenet.fixed_size} px only)"
        rows.append(
            (name, params, str(e.default_size), str(e.min_size), top1, e.preprocess, weights)
        )
    return _table(rows)


def format_hub() -> str:
    """The keras-hub presets: family, parameters, default size, documented top-1, source."""
    rows = [("name", "family", "params", "default px", "patch", "top-1", "features", "source")]
    for name, p in HUB_PRESETS.items():
        top1 = f"{p.top1:.3f} ({PROTOCOLS[p.protocol]})" if p.top1 is not None else ""
        rows.append((name, p.family, f"{p.params / 1e6:.1f}M", str(p.image_size),
                     str(p.patch_size), top1, FAMILIES[p.family].features,
                     f"kaggle://{p.handle}"))  # fmt: skip
    return _table(rows)


def format_registry() -> str:
    """Both tables, as `bakeoff backbones` prints them."""
    return "\n\n".join(
        [
            "Keras applications (weights: Keras's ImageNet no-top files)\n" + format_keras(),
            "keras-hub presets (weights: keras-hub's Kaggle presets; SigLIP and CLIP "
            "parameters count both towers, bakeoff keeps the image tower)\n" + format_hub(),
            "Also: hf://timm/<model> (timm CNNs keras-hub converts) or a local keras-hub preset "
            "folder, listed in params.yaml's `sources:` under a name (`bakeoff init "
            "--backbones hf://timm/resnet50.a1_in1k` writes it).",
        ]
    )
