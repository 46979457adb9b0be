"""A keras-hub preset folder as the only backbone: init, `dvc repro`, register, predict,
and the registered champion served by `mlflow models serve`."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path

import keras_hub  # noqa: F401  (required: a broken install fails here, not as a skip)
import pytest
import yaml

from tests.conftest import CLASSES, REPO, init_project, make_image_folder
from tests.model.serving_fixtures import image_rows, post, served
from tests.model.tiny_hub import save_tiny_dinov2

# Nothing may be downloaded: a preset or weights fetched from the network would hide a bug.
OFFLINE = {"HTTPS_PROXY": "http://127.0.0.1:9"}


@dataclass
class HubProject:
    """A project whose one backbone is a local tiny DINOv2 preset, after `dvc repro`."""

    root: Path
    images: Path
    preset: Path
    env: dict[str, str]
    init_out: str

    def run(self, *cmd: str, **env: str) -> str:
        """A command in the project (with more `env`); its stdout (the test fails on a
        non-zero exit)."""
        done = subprocess.run(cmd, cwd=self.root, env={**self.env, **env}, capture_output=True,
                              text=True, timeout=1800)  # fmt: skip
        assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
        return done.stdout


@pytest.fixture(scope="module")
def hub_project(tmp_path_factory) -> HubProject:
    """`bakeoff init` on a preset folder, then `dvc repro` (once for the module: minutes)."""
    tmp_path = tmp_path_factory.mktemp("hub")
    images = make_image_folder(tmp_path / "my_images", per_class=12)
    preset = tmp_path / "presets" / "tiny_dinov2"
    save_tiny_dinov2(preset)
    root = init_project(tmp_path / "project", yaml.safe_load((REPO / "params.yaml").read_text()))
    shutil.copy(REPO / "params.yaml", root / "params.yaml")
    venv_bin = Path(sys.executable).parent
    env = {
        **os.environ, **OFFLINE, "BAKEOFF_ROOT": str(root),
        "KAGGLEHUB_CACHE": str(tmp_path / "kaggle"), "HF_HOME": str(tmp_path / "hf"),
        "PATH": f"{venv_bin}:{os.environ['PATH']}",
    }  # fmt: skip
    env.pop("MLFLOW_TRACKING_URI", None)  # the project's own store, not a user's server
    project = HubProject(root, images, preset, env, "")
    project.init_out = project.run("bakeoff", "init", str(images), "--backbones", str(preset))
    params = yaml.safe_load((root / "params.yaml").read_text())
    # Lighter than the defaults so that the test fits the machine; the recipe is the same.
    params["tune"]["trials"], params["evaluate"]["cv_folds"] = 3, 3
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    project.run(sys.executable, "-m", "dvc", "repro")
    return project


@pytest.mark.slow
def test_a_local_dinov2_preset_runs_the_whole_pipeline(hub_project):
    root, preset = hub_project.root, hub_project.preset
    out = hub_project.init_out
    assert "missing" not in out and out.rstrip().endswith("next: `dvc repro`")
    params = yaml.safe_load((root / "params.yaml").read_text())
    assert params["backbones"] == ["tiny_dinov2"]
    assert params["sources"] == {"tiny_dinov2": str(preset)}
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
    folder = hub_project.images / "horizontal"
    answers = json.loads(hub_project.run("bakeoff", "predict", str(folder), "--json"))
    assert len(answers) == 12 and all(a["labels"] for a in answers)


@pytest.mark.slow
def test_the_served_hub_champion_answers_like_bakeoff_predict(hub_project, tmp_path):
    """`mlflow models serve` of the champion, in a Python without bakeoff: keras-hub's
    layers load and run in the server, and its answers are `bakeoff predict`'s."""
    root, images = hub_project.root, hub_project.images
    params = yaml.safe_load((root / "params.yaml").read_text())
    uri = f"models:/{params['register']['model_name']}@champion"
    store = f"sqlite:///{root / 'mlruns' / 'mlflow.db'}"

    # What the server gets: keras-hub pinned in the requirements, keras-hub layers in the model.
    hub_project.run("mlflow", "artifacts", "download", "--artifact-uri", uri, "--dst-path",
                    str(tmp_path / "logged"), MLFLOW_TRACKING_URI=store)  # fmt: skip
    requirements = (tmp_path / "logged" / "requirements.txt").read_text().split()
    assert any(r.startswith("keras-hub==") for r in requirements), requirements
    with zipfile.ZipFile(tmp_path / "logged" / "data" / "model" / "model.keras") as saved:
        config = saved.read("config.json").decode()
    assert '"registered_name": "keras_hub>DINOV2Backbone"' in config

    files = [images / "horizontal" / "horizontal_003.png", images / "vertical" / "vertical_007.png",
             images / "dots" / "dots_011.png"]  # fmt: skip
    local = json.loads(hub_project.run("bakeoff", "predict", *map(str, files), "-k", "3", "--json"))
    with served(uri, store, tmp_path / "serve", **OFFLINE) as (port, _, log):
        status, body = post(port, image_rows(files))
    assert status == 200, (body, log.read_text()[-3000:])
    for row, expected in zip(body["predictions"], local, strict=True):
        assert set(row["probabilities"]) == set(expected["labels"]) == set(CLASSES)
        assert row["label"] == expected["labels"][0]
        for label, p in zip(expected["labels"], expected["probabilities"], strict=True):
            assert row["probabilities"][label] == pytest.approx(p, abs=1e-4)
