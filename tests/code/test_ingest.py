"""ingest: the demo sample and a read-only copy of a user's image folder."""

from __future__ import annotations

import json
import os
import sys
import types
from pathlib import Path

import pytest
from PIL import Image

from bakeoff.config.params import DataParams
from bakeoff.data.ingest import FASHION_MNIST_CLASSES, ingest
from bakeoff.errors import BakeoffError
from tests.data import imagegen as gen

FASHION = Path("/usr/share/datasets/fashion-mnist")
needs_fashion = pytest.mark.skipif(
    not (FASHION / "train-images-idx3-ubyte.gz").is_file(), reason="Fashion-MNIST not installed"
)


def _files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


@needs_fashion
def test_fashion_mnist_sample_is_stratified_and_deterministic(tmp_path):
    params = DataParams(source="fashion-mnist", per_class=3)
    (tmp_path / "one").mkdir()
    (tmp_path / "one/left_over.txt").write_text("from an earlier run")
    result = ingest(params, tmp_path / "one", root=tmp_path, seed=42)
    ingest(params, tmp_path / "two", root=tmp_path, seed=42)
    one, two = _files(tmp_path / "one"), _files(tmp_path / "two")
    assert one == two  # same params, same names and bytes
    assert sorted(p.name for p in (tmp_path / "one").iterdir()) == sorted(FASHION_MNIST_CLASSES)
    assert result.per_class == dict.fromkeys(FASHION_MNIST_CLASSES, 3) and len(one) == 30
    with Image.open(tmp_path / "one" / next(iter(one))) as img:
        assert (img.format, img.mode, img.size) == ("PNG", "L", (28, 28))
    other = ingest(
        DataParams(source=str(FASHION), per_class=3),
        tmp_path / "3",
        root=tmp_path,
        seed=7,
    )
    assert set(_files(tmp_path / "3")) != set(one) and "30 files" in str(other)


def test_missing_fashion_mnist_says_how_to_get_it(tmp_path, monkeypatch):
    # Stand-in for keras: the real download would need the internet.
    def offline():
        raise OSError("no network")

    fake = types.SimpleNamespace(
        datasets=types.SimpleNamespace(fashion_mnist=types.SimpleNamespace(load_data=offline))
    )
    monkeypatch.setitem(sys.modules, "keras", fake)
    monkeypatch.setattr("bakeoff.data.ingest.FASHION_MNIST_DIR", tmp_path / "nowhere")
    params = DataParams(source="fashion-mnist")
    with pytest.raises(BakeoffError, match="apt-get install dataset-fashion-mnist"):
        ingest(params, tmp_path / "raw", root=tmp_path, seed=42)


@pytest.fixture
def source(tmp_path):
    src = tmp_path / "source"
    gen.good_class(src, "cats", 3, seed=1)
    gen.good_class(src, "dogs", 3, seed=2)
    gen.save(gen.noise(3), src / "loose.png")
    gen.save(gen.noise(4), tmp_path / "elsewhere.png")
    os.symlink(tmp_path / "elsewhere.png", src / "dogs/outside.png")
    os.symlink("cats_000.png", src / "cats/inside.png")
    (src / "cats/.DS_Store").write_bytes(b"junk")
    (src / "dogs/Thumbs.db").write_bytes(b"junk")
    (src / "empty").mkdir()
    return src


def test_folder_copy_keeps_what_validate_must_see(source, tmp_path):
    before = gen.tree_digest(source)
    result = ingest(DataParams(source=str(source)), tmp_path / "raw", root=tmp_path, seed=42)
    raw = tmp_path / "raw"
    assert gen.tree_digest(source) == before  # the source is only read
    copied = _files(raw)
    assert copied["loose.png"] == (source / "loose.png").read_bytes()  # validate rejects it
    assert not (raw / "cats/inside.png").is_symlink()
    assert copied["cats/inside.png"] == copied["cats/cats_000.png"]
    assert not any(".DS_Store" in p or "Thumbs" in p for p in copied)
    assert not (raw / "dogs/outside.png").exists()
    report = json.loads((raw / ".ingest.json").read_text())
    assert {"path": "dogs/outside.png", "reason": "symlink_outside_root"} in report
    assert {"path": "empty", "reason": "empty_class_folder"} in report
    assert result.per_class == {".": 1, "cats": 4, "dogs": 3}
    again = ingest(DataParams(source=str(source)), tmp_path / "raw2", root=tmp_path, seed=42)
    assert _files(tmp_path / "raw2") == copied and again.per_class == result.per_class


def test_rerun_clears_the_output_first(source, tmp_path):
    raw = tmp_path / "raw"
    ingest(DataParams(source=str(source)), raw, root=tmp_path, seed=42)
    (source / "cats/cats_001.png").rename(tmp_path / "moved.png")  # the user removes one
    ingest(DataParams(source=str(source)), raw, root=tmp_path, seed=42)
    assert not (raw / "cats/cats_001.png").exists()


@pytest.mark.parametrize("kind", ["missing", "file"])
def test_bad_source_names_the_path(tmp_path, kind):
    path = tmp_path / "photos"
    if kind == "file":
        path.write_text("not a folder")
    with pytest.raises(BakeoffError, match=str(path)):
        ingest(DataParams(source=str(path)), tmp_path / "raw", root=tmp_path, seed=42)


def test_source_inside_the_output_is_refused_and_kept(source, tmp_path):
    raw = source.parent
    before = gen.tree_digest(source)
    with pytest.raises(BakeoffError, match="overlaps the output folder"):
        ingest(DataParams(source=str(source)), raw, root=tmp_path, seed=42)
    with pytest.raises(BakeoffError, match="overlaps the output folder"):
        ingest(DataParams(source=str(source)), source / "raw", root=tmp_path, seed=42)
    assert gen.tree_digest(source) == before


def test_relative_source_is_relative_to_the_project_root_not_the_cwd(source, tmp_path, monkeypatch):
    elsewhere = tmp_path / "cwd"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # a Prefect worker or a test runs from anywhere
    result = ingest(DataParams(source="source"), tmp_path / "raw", root=tmp_path, seed=42)
    assert result.per_class == {".": 1, "cats": 4, "dogs": 3}
    assert result.source.startswith(str(tmp_path / "source"))
