"""Is a keras-hub preset on this machine, and if not, how does a user bring it here?

Presets come through keras-hub's own loaders (kagglehub's cache for `kaggle://` handles,
huggingface_hub's for `hf://`). An offline machine cannot fetch them: `fetch_hint` says in one
line which command fetches a preset into a folder on a connected machine, and how to point
bakeoff at that folder once it is copied here.
"""

from __future__ import annotations

from bakeoff.backbone.hub_sources import HubSpec, source_slug


def fetch_hint(spec: HubSpec) -> str:
    """One line: the preset, its handle, the fetch command, and how to use the folder."""
    folder = f"presets/{spec.name}"
    if spec.source.startswith("hf://"):
        repo = spec.source.removeprefix("hf://")
        command = f"huggingface-cli download {repo} --local-dir {folder}"
    else:
        handle = spec.handle.removeprefix("kaggle://")
        command = (
            f"python -c \"import kagglehub; kagglehub.model_download('{handle}', "
            f"output_dir='{folder}')\""
        )
    slug = source_slug(folder)
    return (
        f"{spec.name} ({spec.handle}) is not on this machine: on a connected machine run "
        f"`{command}`, copy {folder}/ here and run `bakeoff init <images> --backbones "
        f"<its absolute path>` (it writes `sources: {{{slug}: <path>}}`; "
        "or copy keras-hub's cache here and set KAGGLEHUB_CACHE / HF_HOME to it)"
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
