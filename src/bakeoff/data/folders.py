"""The one walk over a folder of class folders: ingest copies what it yields, validate checks it.

Both stages must see the same entries, or a file ingest skipped silently would never reach
validate's report: hidden files are skipped, folder links are never followed (loops, or a
way out of the root), and every entry that cannot be read as a file says why.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

_HIDDEN = {"Thumbs.db", "desktop.ini", "Icon\r"}
EMPTY_FOLDER = "empty_class_folder"
# What ingest could not copy, for validate to report (in data/raw, hidden: not an image).
INGEST_REPORT = ".ingest.json"


def is_hidden(name: str) -> bool:
    """Files and folders the OS or tools leave behind (.DS_Store, Thumbs.db, dot-files)."""
    return name.startswith(".") or name in _HIDDEN


@dataclass(frozen=True)
class Entry:
    """One visible file (or link, or empty folder) under the root.

    Attributes:
        rel: Its path relative to the root, with `/`.
        label: Its class: the first folder of `rel` ("" for a file at the root).
        path: The entry itself (a link stays a link).
        problem: "" for a readable file, else a reason code: broken_symlink,
            symlink_outside_root, symlinked_folder or empty_class_folder.
    """

    rel: str
    label: str
    path: Path
    problem: str = ""


def _link_problem(path: Path, real_root: Path) -> str:
    if not path.is_symlink():
        return ""
    target = path.resolve()
    if not target.exists():
        return "broken_symlink"
    if real_root not in target.parents:
        return "symlink_outside_root"
    return "symlinked_folder" if target.is_dir() else ""


def walk_class_folders(root: Path) -> Iterator[Entry]:
    """Every visible entry under `root`, in sorted order, each with its class and problem.

    Args:
        root: A folder with one sub-folder per class.

    Yields:
        Files (links to in-root files included, problem ""), unusable links, and empty
        folders below the root (problem `empty_class_folder`).
    """
    root = Path(root)
    real_root = root.resolve()
    for dirpath, dirnames, filenames in os.walk(root):
        here = Path(dirpath)
        rel_dir = here.relative_to(root)
        dirnames[:] = sorted(d for d in dirnames if not is_hidden(d))
        for name in [d for d in dirnames if (here / d).is_symlink()]:
            dirnames.remove(name)  # never follow a folder link: report it as an entry
            filenames.append(name)
        visible = sorted(f for f in filenames if not is_hidden(f))
        label = rel_dir.parts[0] if rel_dir.parts else ""
        if rel_dir.parts and not visible and not dirnames:
            yield Entry(rel_dir.as_posix(), label, here, EMPTY_FOLDER)
        for name in visible:
            path = here / name
            yield Entry((rel_dir / name).as_posix(), label, path, _link_problem(path, real_root))


def read_ingest_report(raw_dir: Path) -> list[dict[str, str]]:
    """The entries ingest could not copy (empty if there are none)."""
    path = raw_dir / INGEST_REPORT
    return json.loads(path.read_text()) if path.is_file() else []
