"""A keras-hub preset folder as the only backbone: init, `dvc repro`, register, predict."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import keras_hub  # noqa: F401  (required: a broken install fails here, not as a skip)
import pytest
import yaml

from tests.conftest import REPO, init_project, make_image_folder


@pytest.mark.slow
def test_a_local_dinov2_preset_runs_the_whole_pipeline(tmp_path):
    from tests.code.test_hub_backbones import save_tiny_dinov2

    images = make_image_folder(tmp_path / "my_images", per_class=12)
    preset = tmp_path / "presets" / "tiny_dinov2"
    save_tiny_dinov2(preset)
    root = init_project(tmp_path / "project", yaml.safe_load((REPO / "params.yaml").read_text()))
    shutil.copy(REPO / "params.yaml", root / "params.yaml")
    venv_bin = Path(sys.executable).parent
    env = {
        **os.environ, "BAKEOFF_ROOT": str(root), "KAGGLEHUB_CACHE": str(tmp_path / "kaggle"),
        "HF_HOME": str(tmp_path / "hf"), "HTTPS_PROXY": "http://127.0.0.1:9",
        "PATH": f"{venv_bin}:{os.environ['PATH']}",
    }  # fmt: skip

    def run(*cmd: str) -> str:
        done = subprocess.run(cmd, cwd=root, env=env, capture_output=True, text=True, timeout=1800)
        assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
        return done.stdout

    out = run("bakeoff", "init", str(images), "--backbones", str(preset))
    assert "missing" not in out and out.rstrip().endswith("next: `dvc repro`")
    params = yaml.safe_load((root / "params.yaml").read_text())
    assert params["backbones"] == ["tiny_dinov2"]
    assert params["sources"] == {"tiny_dinov2": str(preset)}
    # Lighter than the defaults so that the test fits the machine; the recipe is the same.
    params["tune"]["trials"], params["evaluate"]["cv_folds"] = 3, 3
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    run(sys.executable, "-m", "dvc", "repro")
    train = json.loads((root / "models" / "tiny_dinov2" / "train.json").read_text())
    assert train["image_size"] == 28 and train["tuning"]["status"] == "on"
    register = json.loads((root / "reports" / "register.json").read_text())
    assert register["decision"] == "promoted"
    export = json.loads((root / "reports" / "export.json").read_text())
    exported = [v["variant"] for v in export["variants"]]
    failed = [f["variant"] for f in export["failed"]]
    assert sorted(exported + failed) == sorted(["float32", "float16", "dynamic_range", "int8"])
    assert all(f["reason"] for f in export["failed"])
    report = (root / "reports" / "comparison.md").read_text()
    assert str(preset) in report  # the backbone's full source, beside its name
    answers = json.loads(run("bakeoff", "predict", str(images / "horizontal"), "--json"))
    assert len(answers) == 12 and all(a["labels"] for a in answers)
