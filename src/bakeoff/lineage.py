"""Lineage: which code and which data produced a result."""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path


def data_version(accepted_manifest: Path) -> str:
    """The data version: sha256 (first 16 hex digits) of the accepted-images manifest.

    The manifest lists every accepted image with its own sha256, so the same images under
    the same labels always give the same version, wherever they were ingested.
    """
    return file_sha256(accepted_manifest)[:16]


def git_commit(root: Path) -> str:
    """The git commit checked out at the project `root`, `-dirty` when its work tree has
    changes, `unknown` when root is not in a git work tree (a copied project folder)."""
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=root,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return f"{sha}-dirty" if dirty else sha


def file_sha256(path: Path) -> str:
    """sha256 of a file, read in chunks so large weights files do not fill memory."""
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()
