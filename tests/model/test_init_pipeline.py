"""A new user's path: `bakeoff init FOLDER`, then `dvc repro`, no YAML edited by hand."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import REPO, init_project, make_image_folder

BACKBONE = "MobileNetV3Small"
WEIGHTS = "weights_mobilenet_v3_small_224_1.0_float_no_top_v2.h5"


@pytest.mark.slow
def test_init_then_dvc_repro_trains_a_frozen_base_on_cached_features_with_tuning(tmp_path):
    import keras

    from bakeoff.backbone.build import build_base

    images = make_image_folder(tmp_path / "my_images", per_class=12)
    root = init_project(tmp_path / "project", yaml.safe_load((REPO / "params.yaml").read_text()))
    shutil.copy(REPO / "params.yaml", root / "params.yaml")  # the shipped file, comments too
    # A stand-in for the ImageNet file (this machine is offline), under Keras's own name.
    cache = tmp_path / "keras" / "models"
    cache.mkdir(parents=True)
    keras.saving.save_model(build_base(BACKBONE, 224), cache / WEIGHTS)
    venv_bin = Path(sys.executable).parent  # dvc.yaml's stages call `bakeoff`
    env = {
        **os.environ, "KERAS_HOME": str(cache.parent), "BAKEOFF_ROOT": str(root),
        "HTTPS_PROXY": "http://127.0.0.1:9", "PATH": f"{venv_bin}:{os.environ['PATH']}",
    }  # fmt: skip

    def run(*cmd: str) -> str:
        done = subprocess.run(cmd, cwd=root, env=env, capture_output=True, text=True, timeout=900)
        assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
        return done.stdout

    out = run("bakeoff", "init", str(images), "--backbones", BACKBONE)
    assert "missing weights" not in out and out.rstrip().endswith("next: `dvc repro`")
    out = run(sys.executable, "-m", "dvc", "repro", f"train@{BACKBONE}")
    assert f"{BACKBONE}: frozen ImageNet base at 224 px, cached features, 20 tuning trials" in out
    summary = json.loads((root / "models" / BACKBONE / "train.json").read_text())
    assert summary["image_size"] == 224
    assert summary["tuning"]["status"] == "on" and summary["tuning"]["trials"] == 20
