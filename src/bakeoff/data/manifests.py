"""The one manifest reader: validate's accepted.csv and split's {train,val,test}.csv.

Both are CSVs of (path, label, sha256) rows written by a stage; a missing file, a missing
column or no rows each say which command makes it right.
"""

from __future__ import annotations

import csv
from pathlib import Path

from bakeoff.errors import BakeoffError

COLUMNS = ("path", "label", "sha256")


def read_manifest_csv(path: Path, made_by: str, if_empty: str) -> list[dict[str, str]]:
    """The rows of a manifest CSV.

    Args:
        path: The CSV.
        made_by: The command that writes it (named when it is missing or malformed).
        if_empty: What to change when it lists no images.

    Returns:
        One dict per row, with at least `COLUMNS`.

    Raises:
        BakeoffError: The file is missing, lacks a column, or lists no images.
    """
    path = Path(path)
    if not path.is_file():
        raise BakeoffError(f"no manifest {path}: run `{made_by}` first")
    with open(path, newline="") as fh:
        reader = csv.DictReader(fh)
        rows = list(reader)
    lacking = [c for c in COLUMNS if c not in (reader.fieldnames or [])]
    if lacking:
        raise BakeoffError(f"{path} has no column {', '.join(lacking)}: re-run `{made_by}`")
    if not rows:
        raise BakeoffError(f"{path} lists no images: {if_empty}")
    return rows
