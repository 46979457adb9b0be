"""Lineage: which code and which data produced a result."""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path

_MAX_LISTED = 20


def data_version(accepted_manifest: Path) -> str:
    """The data version: sha256 (first 16 hex digits) of the accepted-images manifest.

    The manifest lists every accepted image with its own sha256, so the same images under
    the same labels always give the same version, wherever they were ingested.
    """
    return file_sha256(accepted_manifest)[:16]


def _git(root: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=root, capture_output=True, text=True, check=True
    ).stdout


def _dvc_outputs(root: Path) -> list[str]:
    """dvc.lock and every stage output: files `dvc repro` itself rewrites while it runs."""
    if not (Path(root) / ".dvc").is_dir():
        return []
    from dvc.repo import Repo

    with Repo(str(root)) as repo:
        outs = [str(out.def_path) for stage in repo.index.stages for out in stage.outs]
    return ["dvc.lock", *outs]


def git_state(root: Path) -> dict[str, str]:
    """The commit checked out at `root`, and the files changed since it.

    Returns:
        `git_commit` (the bare sha; `unknown` when root is not in a git work tree, e.g. a
        copied project folder) and `git_dirty_files`: the changed tracked files, except
        dvc.lock and DVC's outputs (metrics/, plots/, reports/...), which `dvc repro`
        rewrites during the run and so would mark every run of a clean checkout dirty;
        `none` when there are no others.
    """
    try:
        sha = _git(root, "rev-parse", "HEAD").strip()
        top = Path(_git(root, "rev-parse", "--show-toplevel").strip())
        changed = _git(root, "status", "--porcelain", "--untracked-files=no").splitlines()
    except (OSError, subprocess.CalledProcessError):
        return {"git_commit": "unknown", "git_dirty_files": "unknown"}
    # Porcelain paths are relative to the top of the work tree; outputs to the project root.
    prefix = Path(root).resolve().relative_to(top.resolve())
    ignored = [(prefix / out).as_posix().rstrip("/") for out in _dvc_outputs(root)]
    paths = [line[3:].split(" -> ")[-1].strip('"') for line in changed]
    dirty = [p for p in paths if not any(p == o or p.startswith(o + "/") for o in ignored)]
    listed = ", ".join(sorted(dirty)[:_MAX_LISTED]) or "none"
    if len(dirty) > _MAX_LISTED:  # a tag holds at most a few thousand characters
        listed += f", and {len(dirty) - _MAX_LISTED} more"
    return {"git_commit": sha, "git_dirty_files": listed}


def dvc_dependency_hashes(root: Path, stage: str) -> dict[str, str]:
    """The hash of each dependency of DVC `stage` (e.g. `train@MobileNet`) as DVC computes
    it for dvc.lock: md5 of a file, `<md5>.dir` of a folder. params.yaml is left out (the
    run logs its values as params).

    Returns:
        `{path: hash}`; empty when `root` is not a DVC project (no `.dvc/`).
    """
    if not (Path(root) / ".dvc").is_dir():
        return {}
    from dvc.dependency.param import ParamsDependency
    from dvc.repo import Repo

    with Repo(str(root)) as repo:
        # A bare stage name would be looked up in the current directory's dvc.yaml.
        (found,) = repo.stage.collect(f"{Path(root).resolve() / 'dvc.yaml'}:{stage}")
        return {
            str(dep.def_path): dep.get_hash().value
            for dep in found.deps
            if not isinstance(dep, ParamsDependency)
        }


def run_lineage(root: Path) -> dict[str, str]:
    """The lineage tags of a run: `git_state` (the stage's DVC dependencies go to one
    artifact, `stage_lock`, not a tag each)."""
    return git_state(root)


def stage_lock(root: Path, stage: str) -> str | None:
    """`stage`'s entry as dvc.lock writes it (its dependencies' paths and hashes, sorted by
    path), as YAML text; None when `root` is not a DVC project."""
    import yaml

    hashes = dvc_dependency_hashes(root, stage)
    if not hashes:
        return None
    deps = [{"path": path, "md5": value} for path, value in sorted(hashes.items())]
    return yaml.safe_dump({stage: {"deps": deps}}, sort_keys=False)


def file_sha256(path: Path) -> str:
    """sha256 of a file, read in chunks so large weights files do not fill memory."""
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()
