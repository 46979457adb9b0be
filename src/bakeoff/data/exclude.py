"""`validate.exclude`: the images the user rejected after review, one path a line.

Paths are relative to `data.source` as the user sees the folder (`<class>/<file>`, the
same paths ingest copies to data/raw and label_issues.csv lists). bakeoff never edits the
folder: validate leaves these images out of the manifest and reports them as excluded by
the user, so the next `dvc repro` runs without them.
"""

from __future__ import annotations

from pathlib import Path


def read_exclude(path: Path) -> list[str]:
    """The paths listed in the file (blank lines and `#` comments skipped; none if absent)."""
    if not path.is_file():
        return []
    names = []
    for line in path.read_text().splitlines():
        line = line.strip().replace("\\", "/")
        if line and not line.startswith("#"):
            names.append(line.removeprefix("./"))
    return names


def missing_paths(names: list[str], found: list[str], source: str) -> list[str]:
    """A warning for each listed path that is not in the folder (a typo, or a file since
    removed), naming it and the exclude file."""
    found_set = set(found)
    return [
        f"{source} lists {name}, which is not in the folder: fix or remove that line"
        for name in dict.fromkeys(names)
        if name not in found_set
    ]
