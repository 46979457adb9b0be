"""How the backbones were trained, in words, from models/<backbone>/train.json.

The report states it above its recommendation: the answer to "which backbone?" depends on
the recipe (from-scratch at 32 px answers another question than a frozen ImageNet base).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import Any


def _weights(train: Mapping[str, Any]) -> str:
    weights = str(train.get("weights", "none"))
    if weights == "none":
        return "from scratch (random initial weights)"
    if weights == "imagenet" and train.get("source"):
        return f"keras-hub pretrained weights from {train['source']}"
    if weights == "imagenet":
        return "ImageNet weights"
    return f"weights from {Path(weights).name}"


def _cached_head(train: Mapping[str, Any]) -> bool:
    """The frozen base's features cached and the head trained on them (train's phase 1)."""
    p = train.get("params") or {}
    return train.get("weights") != "none" and p.get("cache_features", True) and not p.get("augment")


def _mode(train: Mapping[str, Any]) -> str:
    if train.get("weights") == "none":
        return "the whole network trains"
    if _cached_head(train):
        return "frozen base, the head trained to convergence on cached features"
    return "frozen base, the head trained"


def _epochs(train: Mapping[str, Any]) -> str:
    p = train.get("params") or {}
    if _cached_head(train):
        return f"at most {p.get('head_epochs')} head epochs"
    return f"up to {p.get('epochs')} epochs"


def _patience(train: Mapping[str, Any]) -> str:
    p = train.get("params") or {}
    patience = p.get("head_patience") if _cached_head(train) else p.get("patience")
    return f"early stopping after {patience} epochs without gain"


def _tuning(train: Mapping[str, Any]) -> str:
    tuning = train.get("tuning") or {}
    if tuning.get("status") == "on":
        return f"head tuned with {tuning.get('trials')} trials on validation"
    return "no head tuning"


def _fine_tune(train: Mapping[str, Any]) -> str:
    p = train.get("params") or {}
    if train.get("weights") == "none" or not p.get("fine_tune_layers"):
        return ""
    return (
        f"then the top {p['fine_tune_layers']} layers fine-tuned for up to "
        f"{p.get('fine_tune_epochs')} epochs"
    )


def _seeds(train: Mapping[str, Any]) -> str:
    n = len(train.get("seeds") or [None])
    return f"{n} seeds, the best by validation kept" if n > 1 else ""


_FACETS = (
    _weights,
    lambda t: f"{t.get('image_size')} px",
    lambda t: (
        "augmentation on (random flip and translation)"
        if (t.get("params") or {}).get("augment")
        else "no augmentation"
    ),
    _mode,
    _epochs,
    _patience,
    _fine_tune,
    _tuning,
    _seeds,
)


def _facet(values: Mapping[str, str]) -> str:
    """The most common value, with the backbones that differ in brackets."""
    common = Counter(values.values()).most_common(1)[0][0]
    others = [f"{name}: {v or 'none'}" for name, v in values.items() if v != common]
    if not common and others:
        return "; ".join(others)
    return common + (f" ({'; '.join(others)})" if others else "")


def recipe(trains: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """How the backbones were trained, one clause per kind of weights: the image size,
    augmentation, what trains, for how long, fine-tuning, head tuning and seeds.

    Args:
        trains: backbone -> its train.json.

    Returns:
        e.g. ["from scratch (random initial weights), 32 px, augmentation on (...), the whole
        network trains, up to 12 epochs (VGG16: up to 8 epochs), ..., no head tuning"]; with
        several kinds of weights, ["A, B: ImageNet weights, ...", "C: from scratch, ..."].
    """
    groups: dict[str, dict[str, Mapping[str, Any]]] = {}
    for name, train in trains.items():
        groups.setdefault(_weights(train), {})[name] = train
    sentences = []
    for members in groups.values():
        parts = [_facet({n: facet(t) for n, t in members.items()}) for facet in _FACETS]
        text = ", ".join(p for p in parts if p)
        sentences.append(text if len(groups) == 1 else f"{', '.join(members)}: {text}")
    return sentences


def _epoch_knob(train: Mapping[str, Any]) -> str:
    """The params key that caps the phase the last epoch belongs to."""
    p = train.get("params") or {}
    if train.get("weights") != "none" and p.get("fine_tune_layers"):
        return "train.fine_tune_epochs"
    return "train.head_epochs" if _cached_head(train) else "train.epochs"


def still_improving(trains: Mapping[str, Mapping[str, Any]]) -> str:
    """A warning naming the backbones whose best epoch is their last, or "".

    Their validation accuracy was still rising when the epoch cap stopped them, so the
    comparison may rank them below where more epochs would put them.

    Args:
        trains: backbone -> its train.json.

    Returns:
        e.g. "Still improving at the epoch cap (best epoch = last epoch): A (12 of 12),
        B (12 of 12): raise `train.epochs`." with one clause per params key.
    """
    by_knob: dict[str, list[str]] = {}
    for name, t in trains.items():
        run, best = t.get("epochs_run"), t.get("best_epoch")
        if run and best == run:
            by_knob.setdefault(_epoch_knob(t), []).append(f"{name} ({best} of {run})")
    if not by_knob:
        return ""
    clauses = [f"{', '.join(names)}: raise `{knob}`" for knob, names in by_knob.items()]
    return f"Still improving at the epoch cap (best epoch = last epoch): {'; '.join(clauses)}."


def from_scratch(train: Mapping[str, Any]) -> bool:
    """Whether the backbone started from random weights (no pretrained knowledge)."""
    return train.get("weights") == "none"


def scratch_note(train: Mapping[str, Any]) -> str:
    """What a from-scratch recommendation does and does not answer."""
    return (
        "This answers a from-scratch question: which architecture learns these images best "
        f"from random weights at {train.get('image_size')} px, not which pretrained backbone "
        "to use. For that, train with `train.weights: imagenet`."
    )
