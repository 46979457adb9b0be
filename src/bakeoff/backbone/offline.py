"""A folder of pretrained weights to carry to a machine without internet: what goes in it.

`bakeoff fetch-weights DIR` fills one folder on a connected machine, laid out so that each
library reads its part as its own cache, unchanged:

- `DIR/keras/models/<file>`: `$KERAS_HOME/models/`, where keras.applications' ImageNet files
  live (`bakeoff.backbone.registry.cached_weights`);
- `DIR/kagglehub/`: a `KAGGLEHUB_CACHE`, for the keras-hub presets' `kaggle://` handles;
- `DIR/huggingface/`: an `HF_HOME`, for `hf://timm/<model>` sources.

This module decides what each backbone needs (`plan`) and how to point a machine at the
folder (`offline_env`); `bakeoff.fetch_weights` fills it. Nothing here imports
TensorFlow or keras-hub.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from bakeoff.backbone.registry import get_backbone, input_size
from bakeoff.errors import BakeoffError

if TYPE_CHECKING:
    from bakeoff.config.params import Params

FETCH_COMMAND = "bakeoff fetch-weights DIR"
# Environment variable -> the sub-folder of DIR it names; HF_HUB_OFFLINE makes huggingface_hub
# read its cache without asking the network first.
_SUBFOLDERS = {"KERAS_HOME": "keras", "KAGGLEHUB_CACHE": "kagglehub", "HF_HOME": "huggingface"}


def offline_env(folder: Path | str) -> dict[str, str]:
    """The environment that makes Keras, kagglehub and huggingface_hub read `folder`."""
    env = {var: str(Path(folder) / sub) for var, sub in _SUBFOLDERS.items()}
    env["HF_HUB_OFFLINE"] = "1"
    return env


def export_line(folder: Path | str) -> str:
    """`export KERAS_HOME=... KAGGLEHUB_CACHE=... HF_HOME=... HF_HUB_OFFLINE=1`."""
    return "export " + " ".join(f"{k}={shlex.quote(v)}" for k, v in offline_env(folder).items())


@dataclass(frozen=True)
class Want:
    """What one backbone needs in the folder.

    Attributes:
        name: The backbone name.
        kind: `keras` (an ImageNet .h5), `kaggle` (a keras-hub preset handle), `hf` (a Hugging
            Face repo) or `none` (nothing to fetch; `note` says why).
        image_size: The input side (MobileNet/V2 have one file per size).
        note: Why nothing is needed, for kind `none`.
    """

    name: str
    kind: str
    image_size: int = 0
    note: str = ""


@dataclass(frozen=True)
class Outcome:
    """One backbone's line: `fetched`, `there` (already in DIR), `none` (nothing needed) or
    `failed`, with what was done or why not."""

    name: str
    status: str
    detail: str

    def __str__(self) -> str:
        label = {"fetched": "fetched", "there": "already there", "none": "nothing to fetch"}
        if self.status == "failed":
            return f"{self.name}: failed: {self.detail}"
        return f"{self.name}: {label[self.status]} ({self.detail})"


def _want(name: str, weights: str, image_size: int) -> Want:
    entry = get_backbone(name)
    if weights == "none":
        return Want(name, "none", note="nothing to fetch: train.weights is none")
    if weights != "imagenet":
        return Want(name, "none", note=f"nothing to fetch: train.weights is the file {weights}")
    hub = entry.hub
    if hub is None:
        if entry.imagenet is None:
            return Want(name, "none", note="nothing to fetch: it trains from scratch")
        return Want(name, "keras", image_size)
    if hub.local:
        return Want(name, "none", note=f"nothing to fetch: the local preset folder {hub.source}")
    return Want(name, "hf" if hub.source.startswith("hf://") else "kaggle", image_size)


def plan(names: list[str] | None, params: Params | None, image_size: int | None) -> list[Want]:
    """What each backbone needs: params.yaml's `backbones` with their `train.weights` and
    per-backbone image sizes, or `names` (their pretrained weights, whatever train.weights).

    Args:
        names: Backbones named on the command line (sources registered), or None.
        params: The project's params, if bakeoff runs in one.
        image_size: A side that overrides every backbone's.

    Raises:
        BakeoffError: A name is unknown, or neither names nor params are given.
    """
    explicit = names is not None
    if names is None:
        if params is None:
            raise BakeoffError("no params.yaml here: name the backbones with --backbones")
        names = list(params.backbones)
    wants = []
    for name in names:
        recipe = params.for_backbone(name) if params and name in params.backbones else None
        if recipe is None or (explicit and recipe.weights != "imagenet"):
            weights, size = "imagenet", None  # named: its pretrained weights, default size
        else:
            weights, size = recipe.weights, recipe.image_size
        wants.append(_want(name, weights, image_size or input_size(name, size)))
    return wants


def named(backbones: str, params: Params | None) -> list[str]:
    """The comma-separated names of `--backbones`; an `hf://timm/...` source or a preset
    folder among them is registered under its slug, beside params.yaml's `sources:`."""
    from bakeoff.backbone.hub_sources import is_source, register_sources, source_slug

    names, sources = [], dict(params.sources) if params else {}
    for raw in (b.strip() for b in backbones.split(",")):
        if raw and is_source(raw):
            sources[source_slug(raw)] = raw
            raw = source_slug(raw)
        if raw:
            names.append(raw)
    register_sources(sources)
    return names
