"""`bakeoff init FOLDER` and `bakeoff backbones`: what a new user runs first."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest
import yaml

from bakeoff.backbone.registry import REGISTRY, get_backbone
from bakeoff.config.params import load_params
from bakeoff.errors import BakeoffError
from bakeoff.init_project import DEFAULT_BACKBONES, init_project
from tests.conftest import REPO, make_image_folder

# An unreachable proxy: downloads fail at once, as on the offline demo machine, and a
# machine with internet does not fetch hundreds of MB during the tests.
OFFLINE = {"HTTPS_PROXY": "http://127.0.0.1:9", "HTTP_PROXY": "http://127.0.0.1:9"}


@pytest.fixture
def project(tmp_path, monkeypatch):
    """The repo's params.yaml (comments and all) in a fresh folder, an empty Keras cache."""
    for key, value in OFFLINE.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    # keras-hub's caches, empty too: the foundation default is a preset.
    monkeypatch.setenv("KAGGLEHUB_CACHE", str(tmp_path / "kagglehub"))
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    root = tmp_path / "project"
    root.mkdir()
    shutil.copy(REPO / "params.yaml", root / "params.yaml")
    images = make_image_folder(tmp_path / "my images", per_class=12)
    return root / "params.yaml", images


def test_init_writes_params_for_pretrained_use_and_keeps_the_rest(project):
    params_file, images = project
    before = yaml.safe_load(params_file.read_text())
    result = init_project(images, params_file)
    params = load_params(params_file)  # what every stage reads accepts it
    assert params.backbones == DEFAULT_BACKBONES
    assert params.data.source == str(images.resolve())
    train = params.train
    assert (train.weights, train.image_size, train.augment, train.cache_features) == (
        "imagenet", None, False, True,
    )  # fmt: skip
    assert params.tune.trials == 20
    # The demo's overrides are gone; each backbone has its own (empty) entry, the key its
    # DVC stage depends on.
    assert list(train.overrides) == DEFAULT_BACKBONES
    assert {train.for_backbone(b).epochs for b in DEFAULT_BACKBONES} == {train.epochs}
    after = yaml.safe_load(params_file.read_text())
    for section in ("split", "register", "export", "report", "tracking"):
        assert after[section] == before[section], section
    # Photos: resized, re-encoded and cropped copies are near-duplicates.
    assert after["validate"] == before["validate"] | {"near_duplicate_distance": 8}
    text = params_file.read_text()
    assert text.startswith("# bakeoff's single source of truth")
    # The comments that follow the changed overrides are kept.
    assert "# Head tuning (Optuna TPE + successive halving)" in text
    assert "image_size: null" in text
    out = str(result)
    assert "3 classes" in out and "PNG 36" in out and out.rstrip().endswith("then `dvc repro`")


@pytest.mark.parametrize("trials", [0, 5])
def test_init_keeps_the_tuning_budget_the_user_set(project, trials):
    """An explicit `tune.trials: 0` (no tuning) stays 0, not the default 20."""
    params_file, images = project
    raw = yaml.safe_load(params_file.read_text())
    raw["tune"]["trials"] = trials
    params_file.write_text(yaml.safe_dump(raw, sort_keys=False))
    result = init_project(images, params_file)
    assert load_params(params_file).tune.trials == trials
    assert f"tune.trials: {trials}" in str(result)


def test_init_names_every_missing_weights_file_offline(project, tmp_path):
    params_file, images = project
    result = init_project(images, params_file)
    lines = [line for line in str(result).splitlines() if line.startswith("missing weights")]
    keras_defaults = [b for b in DEFAULT_BACKBONES if get_backbone(b).hub is None]
    assert len(lines) == len(keras_defaults) == len(DEFAULT_BACKBONES) - 1
    folder = tmp_path / "keras" / "models"
    # The foundation default is a keras-hub preset: a line of its own, with its handle.
    [preset] = [line for line in str(result).splitlines() if line.startswith("missing preset")]
    assert preset.startswith("missing preset dinov2_small") and "keras/dinov2" in preset
    for name, line in zip(keras_defaults, lines, strict=True):
        weights = get_backbone(name).imagenet
        file = weights.file_name(get_backbone(name).default_size)
        assert line == f"missing weights {file}: download {weights.url_for(224)} into {folder}/"
    # ... and the one command that fetches them all on a connected machine
    assert "`bakeoff fetch-weights DIR` fetches them all" in str(result).splitlines()[-1]


def test_init_finds_weights_already_in_the_keras_cache(project, tmp_path):
    params_file, images = project
    cache = tmp_path / "keras" / "models"
    cache.mkdir(parents=True)
    (cache / "convnext_tiny_notop.h5").write_bytes(b"placed by hand")
    result = init_project(images, params_file, ["ConvNeXtTiny", "MobileNetV3Small"])
    assert [m[0] for m in result.missing] == [
        "weights_mobilenet_v3_small_224_1.0_float_no_top_v2.h5"
    ]


def test_init_refuses_an_initialised_project_without_force(project):
    params_file, images = project
    init_project(images, params_file, ["MobileNetV3Small"])
    written = params_file.read_text()
    env = {**os.environ, **OFFLINE}
    cmd = [sys.executable, "-m", "bakeoff.cli", "init", str(images), "--params", str(params_file)]
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 1
    assert "already set up (data.source is already" in done.stderr and "--force" in done.stderr
    assert params_file.read_text() == written
    init_project(images, params_file, ["EfficientNetV2B0"], force=True)
    assert load_params(params_file).backbones == ["EfficientNetV2B0"]


def test_init_rejects_what_would_fail_later(project, tmp_path):
    params_file, images = project
    written = params_file.read_text()
    with pytest.raises(BakeoffError, match="SimpleCNN has no ImageNet weights"):
        init_project(images, params_file, ["SimpleCNN"])
    with pytest.raises(BakeoffError, match="unknown backbone 'ResNet9000'"):
        init_project(images, params_file, ["ResNet9000"])
    small = make_image_folder(tmp_path / "small", per_class=3)
    with pytest.raises(BakeoffError, match="would fail validation: classes with fewer than"):
        init_project(small, params_file)
    with pytest.raises(BakeoffError, match="is not a folder"):
        init_project(tmp_path / "nowhere", params_file)
    assert params_file.read_text() == written


def test_backbones_lists_the_registry_without_importing_tensorflow():
    from bakeoff.backbone.hub_presets import HUB_PRESETS

    code = (
        "import sys\n"
        "from typer.testing import CliRunner\n"
        "from bakeoff.cli import app\n"
        "out = CliRunner().invoke(app, ['backbones']).output\n"
        "assert not {'tensorflow', 'keras', 'keras_hub'} & set(sys.modules)\n"
        "print(out)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr[-2000:]
    keras_part, hub_part = done.stdout.split("keras-hub presets")
    lines = keras_part.splitlines()[1:]
    assert lines[0].split()[:5] == ["name", "params", "default", "px", "min"]
    rows = {line.split()[0]: line for line in lines[2:] if line.strip()}
    assert set(rows) == set(REGISTRY)
    assert "331" in rows["NASNetLarge"] and "nasnet_large_no_top.h5" in rows["NASNetLarge"]
    assert "28.6M" in rows["ConvNeXtTiny"] and "0.813" in rows["ConvNeXtTiny"]
    hub = {
        line.split()[0]: line.split() for line in hub_part.splitlines()[3:] if "kaggle://" in line
    }
    assert set(hub) == set(HUB_PRESETS)
    # family, parameters, default size, patch, documented top-1 (blank when none is).
    assert hub["dinov2_small"][1:5] == ["dinov2", "22.6M", "224", "14"]
    assert hub["dinov2_small"][5:7] == ["0.811", "(linear"]
    assert hub["siglip2_base_patch16_224"][5] == "attention-pooled"  # no top-1 documented
    assert hub["deit_tiny_distilled_patch16_224_imagenet"][-1] == (
        "kaggle://keras/deit/keras/deit_tiny_distilled_patch16_224_imagenet/1"
    )


def test_what_init_sets_trains_frozen_with_cached_features_and_tuning(project):
    from bakeoff.train.stage import training_mode

    params_file, images = project
    init_project(images, params_file, ["ConvNeXtTiny"])
    params = load_params(params_file)
    line = training_mode(params.for_backbone("ConvNeXtTiny"), 224, params.tune.trials)
    assert line == "frozen ImageNet base at 224 px, cached features, 20 tuning trials"


def test_init_names_each_missing_keras_hub_preset_on_a_line_of_its_own(
    project, tmp_path, monkeypatch
):
    """Empty kagglehub and Hugging Face caches, no network: both presets are named, each
    with its handle, the command that fetches it and how to point bakeoff at the folder."""
    monkeypatch.setenv("KAGGLEHUB_CACHE", str(tmp_path / "kagglehub"))
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    params_file, images = project
    result = init_project(images, params_file, ["dinov2_small", "siglip2_base_patch16_224"])
    lines = [line for line in str(result).splitlines() if line.startswith("missing preset")]
    assert len(lines) == 2
    handles = ["keras/dinov2/keras/dinov2_small/1", "keras/siglip/keras/siglip2_base_patch16_224/1"]
    for line, handle in zip(lines, handles, strict=True):
        name = handle.split("/")[3]
        assert f"kaggle://{handle}" in line
        assert f"`bakeoff fetch-weights DIR --backbones {name}`" in line
        assert "KAGGLEHUB_CACHE=DIR/kagglehub" in line
    assert load_params(params_file).backbones == ["dinov2_small", "siglip2_base_patch16_224"]
