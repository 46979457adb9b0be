"""`bakeoff fetch-weights DIR`: one folder that an offline machine reads as each library's cache.

Downloads come from a local http.server (Keras's URL) or a stand-in for kagglehub's download
that writes its cache as kagglehub does; every other address goes through a proxy on a closed
local port, so nothing waits on the real network.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import http.server
import os
import shutil
import socket
import threading
import urllib.request
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bakeoff.backbone import registry
from bakeoff.backbone.hub_sources import hub_spec
from bakeoff.cli import app

KERAS_NAME = "MobileNetV3Small"
HANDLE = "keras/dinov2/keras/dinov2_small/1"


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def no_network(monkeypatch, tmp_path):
    """Empty caches of this machine; the internet unreachable (refused at once)."""
    import huggingface_hub.constants

    proxy = f"http://127.0.0.1:{_closed_port()}"
    for var in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY"):
        monkeypatch.setenv(var, proxy)
    for var in ("NO_PROXY", "no_proxy"):
        monkeypatch.setenv(var, "127.0.0.1")  # the test's own server only
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "own" / "keras"))
    monkeypatch.setenv("KAGGLEHUB_CACHE", str(tmp_path / "own" / "kagglehub"))
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "own" / "hf"))
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    yield tmp_path / "carry"
    # urllib's global opener (Keras's downloads) keeps the proxies it was built with.
    urllib.request.install_opener(None)


@pytest.fixture
def weights_server(tmp_path):
    """A local http.server in place of Keras's download site."""
    served = tmp_path / "served"
    served.mkdir()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(served))
    handler.log_message = lambda *a, **k: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield served, f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()


def _serve_keras(monkeypatch, served: Path, base: str, body: bytes, file_hash: str | None):
    """KERAS_NAME's ImageNet file, served at `base` with `file_hash` as Keras's hash."""
    entry = registry.REGISTRY[KERAS_NAME]
    file = entry.imagenet.file_name(224)
    (served / file).write_bytes(body)
    weights = dataclasses.replace(entry.imagenet, url=base + file, file_hash=file_hash)
    monkeypatch.setitem(registry.REGISTRY, KERAS_NAME, dataclasses.replace(entry, imagenet=weights))
    return file


def _run(*args: str):
    return CliRunner().invoke(app, ["fetch-weights", *args])


def _files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file()) if folder.exists() else []


def test_keras_weights_land_where_keras_home_finds_them(no_network, weights_server, monkeypatch):
    carry = no_network
    body = b"not really hdf5, but the bytes Keras's hash was computed on"
    file = _serve_keras(monkeypatch, *weights_server, body, hashlib.md5(body).hexdigest())

    result = _run(str(carry), "--backbones", f"{KERAS_NAME},SimpleCNN")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].startswith(f"{KERAS_NAME}: fetched (")
    assert lines[1] == "SimpleCNN: nothing to fetch (it trains from scratch)"
    assert f"KERAS_HOME={carry}/keras" in result.output and "KAGGLEHUB_CACHE=" in result.output
    assert (carry / "keras" / "models" / file).read_bytes() == body
    assert _files(carry) == [carry / "keras" / "models" / file]  # no staging file left

    monkeypatch.setenv("KERAS_HOME", str(carry / "keras"))  # the offline machine's setting
    path, _ = registry.cached_weights(KERAS_NAME, 224)
    assert path == carry / "keras" / "models" / file and path.is_file()

    again = _run(str(carry), "--backbones", KERAS_NAME)
    assert again.exit_code == 0 and again.output.startswith(f"{KERAS_NAME}: already there (")


def test_a_file_in_this_machines_keras_cache_is_copied(no_network, monkeypatch, tmp_path):
    entry = registry.REGISTRY[KERAS_NAME]
    body = b"cached here already"
    own = tmp_path / "own" / "keras" / "models" / entry.imagenet.file_name(224)
    own.parent.mkdir(parents=True)
    own.write_bytes(body)
    weights = dataclasses.replace(entry.imagenet, file_hash=hashlib.md5(body).hexdigest())
    monkeypatch.setitem(registry.REGISTRY, KERAS_NAME, dataclasses.replace(entry, imagenet=weights))

    result = _run(str(no_network), "--backbones", KERAS_NAME)
    assert result.exit_code == 0, result.output
    assert "copied from" in result.output.splitlines()[0]
    assert (no_network / "keras" / "models" / own.name).read_bytes() == body


def test_a_download_that_fails_keras_hash_leaves_no_file(no_network, weights_server, monkeypatch):
    _serve_keras(monkeypatch, *weights_server, b"truncated", hashlib.md5(b"whole").hexdigest())
    result = _run(str(no_network), "--backbones", KERAS_NAME)
    assert result.exit_code == 1
    assert result.output.startswith(f"{KERAS_NAME}: failed: ")
    assert _files(no_network) == []


def _tiny_preset(tmp_path: Path) -> Path:
    from tests.model.tiny_hub import save_tiny_dinov2

    made = tmp_path / "tiny"
    save_tiny_dinov2(made)
    return made


def _fake_kaggle_download(made: Path):
    """kagglehub.model_download as it fills KAGGLEHUB_CACHE: a whole bundle, one marker."""

    def download(handle: str, path: str | None = None, **_) -> str:
        assert handle == HANDLE and path is None
        base = Path(os.environ["KAGGLEHUB_CACHE"], "models", *handle.split("/")[:4])
        shutil.copytree(made, base / "1")
        (base / "1.complete").touch()
        return str(base / "1")

    return download


def _as_keras_hub_left_it(made: Path, cache: Path) -> None:
    """This machine's kagglehub cache after keras-hub loaded the preset: each file it asked
    for, each with its own marker, and no bundle marker."""
    base = cache.joinpath("models", *HANDLE.split("/")[:4])
    for file in made.iterdir():
        (base / "1").mkdir(parents=True, exist_ok=True)
        shutil.copyfile(file, base / "1" / file.name)
        mark = base / ".complete" / "1" / f"{file.name}.complete"
        mark.parent.mkdir(parents=True, exist_ok=True)
        mark.touch()


@pytest.mark.parametrize("origin", ["download", "this machine's cache"])
def test_an_offline_machine_loads_a_preset_from_the_carried_kagglehub_cache(
    origin, no_network, monkeypatch, tmp_path
):
    """keras-hub asks kagglehub for one file at a time: the carried cache must serve each."""
    import kagglehub

    from bakeoff.backbone.hub import converter_layers, load_hub_backbone
    from bakeoff.backbone.hub_fetch import preset_available

    made = _tiny_preset(tmp_path)
    with monkeypatch.context() as patch:
        if origin == "download":
            patch.setattr(kagglehub, "model_download", _fake_kaggle_download(made))
        else:
            _as_keras_hub_left_it(made, Path(os.environ["KAGGLEHUB_CACHE"]))
        result = _run(str(no_network), "--backbones", "dinov2_small")
    assert result.exit_code == 0, result.output
    assert result.output.startswith("dinov2_small: fetched (")
    if origin != "download":
        assert "copied from" in result.output.splitlines()[0]

    # The offline machine: the real kagglehub, the carried folder as its cache, no network
    # (the fixture's proxy refuses every request).
    monkeypatch.setenv("KAGGLEHUB_CACHE", str(no_network / "kagglehub"))
    spec = hub_spec("dinov2_small")
    assert preset_available(spec)
    backbone = load_hub_backbone(spec, 28, pretrained=True)
    assert type(backbone).__name__ == "DINOV2Backbone" and backbone.hidden_dim == 16
    assert converter_layers(spec.source)[0].name == "preprocess"

    again = _run(str(no_network), "--backbones", "dinov2_small")
    assert again.output.startswith("dinov2_small: already there (")


def test_offline_every_backbone_that_cannot_be_fetched_is_named(no_network, monkeypatch):
    entry = registry.REGISTRY[KERAS_NAME]
    url = f"http://127.0.0.1:{_closed_port()}/{entry.imagenet.file_name(224)}"
    weights = dataclasses.replace(entry.imagenet, url=url)
    monkeypatch.setitem(registry.REGISTRY, KERAS_NAME, dataclasses.replace(entry, imagenet=weights))
    timm = "hf://timm/resnet18.a1_in1k"

    result = CliRunner().invoke(
        app, ["fetch-weights", str(no_network), "--backbones",
              f"{KERAS_NAME},dinov2_small,{timm},SimpleCNN"]
    )  # fmt: skip
    assert result.exit_code == 1
    lines = result.stdout.splitlines()
    failed = [KERAS_NAME, "dinov2_small", "timm-resnet18-a1_in1k"]
    for line, name in zip(lines[:3], failed, strict=True):
        assert line.startswith(f"{name}: failed: ")
    assert lines[3].startswith("SimpleCNN: nothing to fetch")
    assert f"{KERAS_NAME}, dinov2_small, timm-resnet18-a1_in1k" in result.stderr
    assert _files(no_network) == []


def test_params_yaml_says_what_each_backbone_needs(tmp_path):
    """Without --backbones: params.yaml's list, its train.weights and each one's image size."""
    import yaml

    from bakeoff.backbone.offline import plan
    from bakeoff.config.params import load_params
    from tests.conftest import REPO

    raw = yaml.safe_load((REPO / "params.yaml").read_text())
    demo = tmp_path / "demo.yaml"
    demo.write_text(yaml.safe_dump(raw))
    assert {w.note for w in plan(None, load_params(demo), None)} == {
        "nothing to fetch: train.weights is none"
    }  # the demo trains from scratch
    named = {w.name: w for w in plan(["VGG16"], load_params(demo), None)}
    assert (named["VGG16"].kind, named["VGG16"].image_size) == ("keras", 224)  # not its 32 px

    raw["train"].update(weights="imagenet", image_size=None, augment=False)
    raw["train"]["overrides"]["MobileNetV2"] = {"image_size": 160}
    mine = tmp_path / "params.yaml"
    mine.write_text(yaml.safe_dump(raw))
    wants = {w.name: w for w in plan(None, load_params(mine), None)}
    assert wants["SimpleCNN"].note == "nothing to fetch: it trains from scratch"
    assert (wants["MobileNetV2"].kind, wants["MobileNetV2"].image_size) == ("keras", 160)
    assert (wants["MobileNet"].kind, wants["MobileNet"].image_size) == ("keras", 224)
    assert plan(["MobileNetV2"], load_params(mine), 128)[0].image_size == 128  # --image-size
