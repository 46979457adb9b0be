"""split: stratified, deterministic, duplicates together, clear errors."""

from __future__ import annotations

import csv
import hashlib
import json
from pathlib import Path

import pytest

from bakeoff.config.params import SplitParams
from bakeoff.data.split import split
from bakeoff.errors import BakeoffError

COLUMNS = ["path", "label", "format", "mode", "width", "height", "bytes", "sha256", "status",
           "reason", "conversion"]  # fmt: skip


def write_accepted(path: Path, per_class: dict[str, int], duplicates: int = 0) -> Path:
    """accepted.csv with distinct contents; the first `duplicates` of each class get a twin."""
    rows = []
    for label, n in per_class.items():
        for i in range(n):
            sha = hashlib.sha256(f"{label}{i}".encode()).hexdigest()
            copies = 2 if i < duplicates else 1
            for c in range(copies):
                rows.append({"path": f"{label}/{i:03d}_{c}.png", "label": label, "sha256": sha,
                             "status": "accepted"})  # fmt: skip
    with open(path, "w", newline="") as fh:
        writer = csv.DictWriter(fh, COLUMNS, restval="")
        writer.writeheader()
        writer.writerows(rows)
    return path


def read_split(out: Path) -> dict[str, list[dict[str, str]]]:
    result = {}
    for name in ("train", "val", "test"):
        with open(out / f"{name}.csv", newline="") as fh:
            result[name] = list(csv.DictReader(fh))
    return result


def test_stratified_grouped_and_deterministic(tmp_path):
    accepted = write_accepted(tmp_path / "accepted.csv", {"b": 40, "a": 20}, duplicates=5)
    result = split(SplitParams(val=0.2, test=0.2), accepted, tmp_path / "one", seed=3)
    split(SplitParams(val=0.2, test=0.2), accepted, tmp_path / "two", seed=3)
    for name in ("train.csv", "val.csv", "test.csv", "classes.json"):
        assert (tmp_path / "one" / name).read_bytes() == (tmp_path / "two" / name).read_bytes()
    parts = read_split(tmp_path / "one")
    assert list(parts["train"][0]) == ["path", "label", "sha256", "group"]
    assert json.loads((tmp_path / "one/classes.json").read_text()) == ["a", "b"]
    split_of = {r["sha256"]: name for name, rows in parts.items() for r in rows}
    for name, rows in parts.items():
        assert {r["label"] for r in rows} == {"a", "b"}  # every class in every split
        assert all(split_of[r["sha256"]] == name for r in rows)  # twins never straddle
    # Fractions apply to distinct contents: 20 in 'a' -> 4 val, 4 test; 40 in 'b' -> 8, 8.
    distinct = {
        name: {lab: len({r["sha256"] for r in rows if r["label"] == lab}) for lab in "ab"}
        for name, rows in parts.items()
    }
    assert distinct == {"train": {"a": 12, "b": 24}, "val": {"a": 4, "b": 8},
                        "test": {"a": 4, "b": 8}}  # fmt: skip
    assert sum(sum(c.values()) for c in result.counts.values()) == 70  # 60 + 10 twins
    other = split(SplitParams(val=0.2, test=0.2), accepted, tmp_path / "three", seed=4)
    assert read_split(tmp_path / "three") != parts and "train" in str(other)


# Each fraction outside (0, 1) is already an error when params.yaml is loaded (test_config);
# fractions valid one by one may still leave no training images.
@pytest.mark.parametrize(("val", "test"), [(0.5, 0.5), (0.7, 0.4)])
def test_bad_fractions_say_what_to_change(tmp_path, val, test):
    accepted = write_accepted(tmp_path / "accepted.csv", {"a": 20, "b": 20})
    with pytest.raises(BakeoffError, match=r"must each be > 0 and sum to less than 1"):
        split(SplitParams(val=val, test=test), accepted, tmp_path / "out", seed=42)


def test_class_too_small_for_three_splits(tmp_path):
    accepted = write_accepted(tmp_path / "accepted.csv", {"a": 20, "b": 2, "c": 4}, duplicates=2)
    with pytest.raises(BakeoffError) as info:
        split(SplitParams(), accepted, tmp_path / "out", seed=42)
    assert "'b' (2)" in str(info.value) and "'c'" not in str(info.value)
    assert not (tmp_path / "out").exists()


def test_missing_accepted_list(tmp_path):
    with pytest.raises(BakeoffError, match="run `bakeoff validate` first"):
        split(SplitParams(), tmp_path / "accepted.csv", tmp_path / "out", seed=42)


def test_a_manifest_without_a_column_names_it_and_the_command(tmp_path):
    accepted = tmp_path / "accepted.csv"
    accepted.write_text("path,label\na/1.png,a\n")
    with pytest.raises(BakeoffError, match=r"no column sha256: re-run `bakeoff validate`"):
        split(SplitParams(), accepted, tmp_path / "out", seed=42)
