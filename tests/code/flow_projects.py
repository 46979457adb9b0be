"""Tiny bakeoff projects for the flow and scale-out tests: the real params shrunk (32 px,
1 epoch, two backbones), dvc.yaml and the stage sources, in a git + DVC repository."""

from __future__ import annotations

from pathlib import Path

import yaml

from tests.conftest import REPO, init_project

BACKBONES = ["SimpleCNN", "MobileNetV3Small"]
# Two quick backbones test_flows trains at once (MobileNetV3Small takes far longer per epoch).
CONCURRENT = ["SimpleCNN", "MobileNet"]


def make_project(root: Path, source: Path, **orchestration_params) -> Path:
    """A bakeoff project in `root`: the real params.yaml shrunk, dvc.yaml, the stage sources
    dvc.yaml depends on, and `git init` + `dvc init`."""
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["backbones"] = BACKBONES
    params["data"]["source"] = str(source)
    params["validate"]["workers"] = 1
    params["train"].update(
        image_size=32, epochs=1, min_epochs=0, batch_size=8, fine_tune_layers=0, patience=1
    )
    # One (empty) entry per backbone any test lists: train@<b> depends on its own.
    params["train"]["overrides"] = {name: {} for name in (*BACKBONES, *CONCURRENT)}
    params["evaluate"].update(latency_repeats=2, latency_warmup=1)
    params["bootstrap"] = 20
    params["orchestration"].update(orchestration_params)
    return init_project(root, params)
