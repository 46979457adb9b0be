"""Is a keras-hub preset on this machine, and if not, how does a user bring it here?

Presets come through keras-hub's own loaders (kagglehub's cache for `kaggle://` handles,
huggingface_hub's for `hf://`). An offline machine cannot fetch them: `fetch_hint` says in one
line that `bakeoff fetch-weights DIR` fetches them into a folder on a connected machine, and
which environment makes this machine read that folder once it is copied here.
"""

from __future__ import annotations

from bakeoff.backbone.hub_sources import HubSpec
from bakeoff.backbone.offline import FETCH_COMMAND, export_line


def fetch_hint(spec: HubSpec) -> str:
    """One line: the preset, its handle, the command that fetches it (with every other
    backbone's weights) on a connected machine, and how to point this machine at the folder."""
    name = spec.source if spec.source.startswith("hf://") else spec.name
    return (
        f"{spec.name} ({spec.handle}) is not on this machine: on a connected machine run "
        f"`{FETCH_COMMAND} --backbones {name}` (without --backbones: every backbone of "
        f"params.yaml at once), copy DIR here and `{export_line('DIR')}`; or save the preset "
        "with `save_to_preset(folder)` and run `bakeoff init <images> --backbones <folder>`"
    )


def preset_available(spec: HubSpec) -> bool:
    """The preset's config and weights are cached here, or keras-hub fetched them now."""
    if spec.local:
        return True  # hub_sources read its config.json; build_base checks the weights file
    from keras_hub.src.utils.preset_utils import get_file

    weights = "model.safetensors" if spec.source.startswith("hf://") else "model.weights.h5"
    try:
        for name in ("config.json", weights):
            get_file(spec.source, name)
    except Exception:  # kagglehub / huggingface_hub raise many kinds; all mean "absent"
        return False
    return True
