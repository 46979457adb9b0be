"""Lineage tags: the commit without DVC's own rewrites, and DVC's dependency hashes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import yaml

from bakeoff.lineage import dvc_dependency_hashes, git_state, run_lineage, stage_lock


def _run(root: Path, *cmd: str) -> str:
    return subprocess.run(cmd, cwd=root, capture_output=True, text=True, check=True).stdout


def _project(tmp_path: Path) -> Path:
    """A git + DVC project with one stage (`src.py`, `data/` -> `out/`, `metrics.json`),
    run once with `dvc repro` and committed."""
    root = tmp_path / "p"
    (root / "data").mkdir(parents=True)
    (root / "data" / "x.txt").write_text("x\n")
    (root / "src.py").write_text("print('v1')\n")
    (root / "dvc.yaml").write_text(
        "stages:\n  make:\n    cmd: mkdir -p out && cp data/x.txt out/ && echo '{}' > m.json\n"
        "    deps: [src.py, data]\n    outs: [out]\n"
        "    metrics: [{m.json: {cache: false}}]\n"
    )
    _run(root, "git", "init", "-q")
    _run(root, sys.executable, "-m", "dvc", "init", "-q")
    _run(root, sys.executable, "-m", "dvc", "repro", "-q")
    _run(root, "git", "add", "-A")
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t"]
    _run(root, *git, "commit", "-qm", "one")
    return root


def test_dvc_rewrites_do_not_make_the_commit_dirty_but_source_edits_do(tmp_path):
    root = _project(tmp_path)
    sha = _run(root, "git", "rev-parse", "HEAD").strip()
    assert git_state(root) == {"git_commit": sha, "git_dirty_files": "none"}
    # What `dvc repro` rewrites while it runs: dvc.lock and the (git-tracked) metrics.
    (root / "m.json").write_text('{"acc": 1}\n')
    lock = root / "dvc.lock"
    lock.write_text(lock.read_text().replace("md5", "md5 ") + "\n")
    assert git_state(root) == {"git_commit": sha, "git_dirty_files": "none"}
    (root / "src.py").write_text("print('v2')\n")
    assert git_state(root) == {"git_commit": sha, "git_dirty_files": "src.py"}


def test_dependency_hashes_are_the_ones_dvc_records_in_dvc_lock(tmp_path):
    root = _project(tmp_path)
    lock = yaml.safe_load((root / "dvc.lock").read_text())["stages"]["make"]["deps"]
    expected = {dep["path"]: dep["md5"] for dep in lock}
    assert dvc_dependency_hashes(root, "make") == expected
    assert expected["data"].endswith(".dir")
    # The run's one lineage artifact is the stage's dvc.lock entry, path and hash alike.
    assert yaml.safe_load(stage_lock(root, "make")) == {
        "make": {"deps": [{"path": d["path"], "md5": d["md5"]} for d in lock]}
    }
    (root / "data" / "x.txt").write_text("changed\n")
    assert dvc_dependency_hashes(root, "make")["data"] != expected["data"]


def test_outside_git_and_dvc_the_lineage_says_unknown(tmp_path):
    assert stage_lock(tmp_path, "train@SimpleCNN") is None
    assert run_lineage(tmp_path) == {
        "git_commit": "unknown",
        "git_dirty_files": "unknown",
    }
