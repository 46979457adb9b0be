"""DVC versions the source folder: an edit re-runs ingest, an unchanged folder nothing.

A real `dvc repro` in a temporary project with the repository's dvc.yaml, params.yaml and
.dvc/config (its link types: data/raw shares its files with .dvc/cache, no second copy).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

from tests.conftest import REPO, init_project, make_image_folder
from tests.data.imagegen import tree_digest


def _project(root: Path, source: Path) -> Path:
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["data"]["source"] = str(source)
    init_project(root, params)
    shutil.copy(REPO / ".dvc" / "config", root / ".dvc" / "config")
    return root


def _repro(project: Path) -> str:
    # The stage command is `bakeoff`: found on PATH next to this interpreter, as after
    # `source .venv/bin/activate`.
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    env.pop("BAKEOFF_ROOT", None)
    done = subprocess.run(
        [sys.executable, "-m", "dvc", "repro", "ingest"],
        cwd=project, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_source_folder_edits_rerun_ingest_and_an_unchanged_folder_nothing(tmp_path):
    source = make_image_folder(tmp_path / "photos", per_class=3, size=16)
    project = _project(tmp_path / "project", source)
    raw = project / "data" / "raw"

    assert "Running stage 'ingest'" in _repro(project)
    assert "Running stage" not in _repro(project), "unchanged folder: nothing runs"

    shutil.copy(source / "dots" / "dots_000.png", source / "dots" / "dots_new.png")
    assert "Running stage 'ingest'" in _repro(project), "a file added"
    assert (raw / "dots" / "dots_new.png").is_file()

    (source / "dots" / "dots_new.png").rename(source / "dots" / "dots_renamed.png")
    assert "Running stage 'ingest'" in _repro(project), "a file renamed"
    assert sorted(p.name for p in (raw / "dots").iterdir())[-1] == "dots_renamed.png"

    (source / "vertical" / "vertical_001.png").write_bytes(
        (source / "horizontal" / "horizontal_001.png").read_bytes()
    )
    assert "Running stage 'ingest'" in _repro(project), "a file changed"
    (source / "vertical" / "vertical_002.png").unlink()
    assert "Running stage 'ingest'" in _repro(project), "a file removed"
    assert not (raw / "vertical" / "vertical_002.png").exists()

    # No second copy: every ingested file is one inode shared with DVC's cache (identical
    # files share one cache object, hence >= 2).
    files = list(raw.rglob("*.png"))
    assert files and all(p.stat().st_nlink >= 2 for p in files)
    # The user's files are only read: not linked into the cache, not made read-only.
    assert all(p.stat().st_nlink == 1 and os.access(p, os.W_OK) for p in source.rglob("*.png"))


def test_the_exclude_file_is_a_dependency_of_validate_and_the_folder_stays_as_it_was(tmp_path):
    """validate.exclude in a real DVC project: listing a file re-runs validate, which drops
    it, and the source folder stays byte-identical."""
    import json

    source = make_image_folder(tmp_path / "photos", per_class=12, size=16)
    project = _project(tmp_path / "project", source)
    before = tree_digest(source)
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    env.pop("BAKEOFF_ROOT", None)

    def dvc(*args: str) -> str:
        done = subprocess.run(
            [sys.executable, "-m", "dvc", *args],
            cwd=project, env=env, capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout

    dvc("repro", "validate")
    assert "validate" not in dvc("status", "validate")
    with open(project / "exclude.txt", "a") as fh:
        fh.write("dots/dots_003.png\n")
    status = dvc("status", "validate")
    assert "modified:" in status and "exclude.txt" in status
    assert "Running stage 'validate'" in dvc("repro", "validate")
    report = json.loads((project / "reports" / "validation.json").read_text())
    assert report["excluded"] == ["dots/dots_003.png"]
    assert "dots/dots_003.png" not in (project / "data/validated/accepted.csv").read_text()
    assert tree_digest(source) == before
