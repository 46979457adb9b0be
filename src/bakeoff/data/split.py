"""Stage `split`: stratified, leak-free train/val/test manifests of the accepted images.

Identical files (same sha256) and near-duplicates (validate's `group`: the same picture
resized, re-encoded or cropped) always land in the same split: the unit that is assigned is
the group, not the path, so a copy can never be trained on and then tested on.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bakeoff.config.params import SplitParams
from bakeoff.data.manifests import COLUMNS, read_manifest_csv
from bakeoff.errors import BakeoffError

SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class SplitResult:
    """Images per split and class."""

    out_dir: Path
    classes: list[str]
    counts: dict[str, dict[str, int]]

    def __str__(self) -> str:
        lines = [f"split {len(self.classes)} classes into {self.out_dir}"]
        for name in SPLITS:
            per = self.counts[name]
            lines.append(f"  {name}: {sum(per.values())} images")
        return "\n".join(lines)


def _check_fractions(params: SplitParams) -> None:
    if params.val <= 0 or params.test <= 0 or params.val + params.test >= 1:
        raise BakeoffError(
            f"split.val ({params.val}) and split.test ({params.test}) must each be > 0 and "
            "sum to less than 1, e.g. val: 0.15, test: 0.15"
        )


def _sizes(n: int, params: SplitParams) -> tuple[int, int, int]:
    """(train, val, test) group counts: at least one each, the rest by the fractions."""
    n_val = max(1, round(n * params.val))
    n_test = max(1, round(n * params.test))
    return n - n_val - n_test, n_val, n_test


def _units(rows: list[dict[str, str]]) -> dict[str, list[dict[str, str]]]:
    """The rows by the unit that is assigned: validate's near-duplicate group (identical
    files share it), or the sha256 in a manifest without groups."""
    units: dict[str, list[dict[str, str]]] = {}
    for row in sorted(rows, key=lambda r: r["path"]):
        units.setdefault(row.get("group") or row["sha256"], []).append(row)
    return units


def _stratum(members: list[dict[str, str]]) -> str:
    """The class a unit is stratified under: its most common label (ties: the first
    name), so a group that spans classes still goes to one split whole."""
    labels = [r["label"] for r in members]
    return min(set(labels), key=lambda label: (-labels.count(label), label))


def split(params: SplitParams, accepted: Path, out_dir: Path, *, seed: int) -> SplitResult:
    """Write `out_dir/{train,val,test}.csv` (path,label,sha256,group) and `classes.json`.

    Args:
        params: The `split` section (val and test fractions).
        accepted: validate's accepted.csv.
        out_dir: The split folder.
        seed: The top-level `seed`: of the draw of each class's images.

    Returns:
        Images per split and class.

    Raises:
        BakeoffError: Bad fractions, or a class with too few distinct images for three splits.
    """
    _check_fractions(params)
    rows = read_manifest_csv(
        accepted, "bakeoff validate", "fix the data (see reports/validation.json)"
    )
    classes = sorted({r["label"] for r in rows})
    groups: dict[str, dict[str, list[dict[str, str]]]] = {c: {} for c in classes}
    for key, members in _units(rows).items():
        groups[_stratum(members)][key] = members

    too_small = [f"'{c}' ({len(g)})" for c, g in groups.items() if min(_sizes(len(g), params)) < 1]
    if too_small:
        raise BakeoffError(
            "classes with too few distinct images to put at least one in each of train, val "
            f"and test: {', '.join(too_small)}: add images, lower split.val/split.test, or "
            "raise validate.min_images_per_class so such classes are caught earlier"
        )

    rng = np.random.default_rng(seed)
    assigned: dict[str, list[dict[str, str]]] = {name: [] for name in SPLITS}
    counts: dict[str, dict[str, int]] = {name: {} for name in SPLITS}
    for label in classes:
        keys = sorted(groups[label])  # sorted first: the permutation alone decides
        order = [keys[i] for i in rng.permutation(len(keys))]
        n_train, n_val, _ = _sizes(len(keys), params)
        for i, key in enumerate(order):
            name = "train" if i < n_train else "val" if i < n_train + n_val else "test"
            assigned[name].extend(groups[label][key])
            for row in groups[label][key]:
                counts[name][row["label"]] = counts[name].get(row["label"], 0) + 1

    out_dir.mkdir(parents=True, exist_ok=True)
    # New files, never old ones rewritten: with DVC's hardlink cache they are links into
    # .dvc/cache, and writing through them would corrupt the cached version.
    for old in [out_dir / f"{name}.csv" for name in SPLITS] + [out_dir / "classes.json"]:
        old.unlink(missing_ok=True)
    for name, items in assigned.items():
        with open(out_dir / f"{name}.csv", "w", newline="") as fh:
            columns = [*COLUMNS, "group"]
            writer = csv.DictWriter(
                fh, columns, extrasaction="ignore", restval="", lineterminator="\n"
            )
            writer.writeheader()
            writer.writerows(sorted(items, key=lambda r: r["path"]))
    (out_dir / "classes.json").write_text(json.dumps(classes) + "\n")
    return SplitResult(out_dir, classes, counts)
