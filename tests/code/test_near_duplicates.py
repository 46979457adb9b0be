"""Near-duplicates at validate, and `validate.exclude`: copies found, kept in one split,
cross-class copies listed as label conflicts, the user's rejections dropped, the folder
never touched."""

from __future__ import annotations

import csv
import io
import json

import numpy as np
import pytest
from PIL import Image

from bakeoff.config.params import DataParams, SplitParams, ValidateParams
from bakeoff.data.ingest import ingest
from bakeoff.data.near_duplicates import close_pairs, near_duplicate_groups
from bakeoff.data.split import split
from bakeoff.data.validate import validate
from tests.data import imagegen as gen

# The distance `bakeoff init` sets for photos.
PARAMS = ValidateParams(min_images_per_class=5, workers=1, near_duplicate_distance=8)
# Each copy of a picture in class `a`, made as a user's folder makes them.
COPIES = {
    "a/t00_half.png": lambda im: im.resize((im.width // 2, im.height // 2), Image.LANCZOS),
    "a/t01_double.png": lambda im: im.resize((im.width * 2, im.height * 2), Image.BICUBIC),
    "a/t02_q60.jpg": None,  # JPEG quality 60
    "a/t03_crop.png": lambda im: im.crop((2, 2, im.width - 2, im.height - 2)),
}


def _folder(root):
    """Two classes of distinct textures, four copies in `a`, and one copy of a `b` picture
    filed under `a` (the same photo in two classes)."""
    for label, seed in (("a", 0), ("b", 100)):
        for i in range(12):
            gen.save(gen.texture(seed + i), root / label / f"t{i:02d}.png")
    for (name, make), original in zip(COPIES.items(), range(4), strict=True):
        img = Image.open(root / "a" / f"t{original:02d}.png").convert("RGB")
        if make is None:
            gen.save(img, root / name, quality=60)
        else:
            gen.save(make(img), root / name)
    small = Image.open(root / "b/t05.png").convert("RGB").resize((80, 80), Image.LANCZOS)
    gen.save(small, root / "a/b05_copy.jpg", quality=60)
    return root


@pytest.fixture(scope="module")
def checked(tmp_path_factory):
    """The folder ingested and validated, with an exclude file: (project, source, result,
    source digest before, after)."""
    project = tmp_path_factory.mktemp("near")
    source = _folder(project / "photos")
    before = gen.tree_digest(source)
    ingest(DataParams(source=str(source)), project / "data/raw", root=project, seed=42)
    (project / "exclude.txt").write_text("# rejected after review\nb/t11.png\na/gone.png\n\n")
    result = validate(
        PARAMS, project / "data/raw", project / "data/validated", project / "reports", project
    )
    return project, source, result, before, gen.tree_digest(source)


def _rows(path):
    with open(path, newline="") as fh:
        return {row["path"]: row for row in csv.DictReader(fh)}


def test_resized_reencoded_and_cropped_copies_form_groups(checked):
    near = checked[2].near_duplicates
    groups = {tuple(g["paths"]) for g in near["list"]}
    expected = {
        ("a/t00.png", "a/t00_half.png"),
        ("a/t01.png", "a/t01_double.png"),
        ("a/t02.png", "a/t02_q60.jpg"),
        ("a/t03.png", "a/t03_crop.png"),
        ("a/b05_copy.jpg", "b/t05.png"),
    }
    assert groups == expected  # every copy found, no unrelated picture grouped
    assert near["groups"] == 5 and near["images"] == 10 and near["distance"] == 8
    accepted = _rows(checked[0] / "data/validated/accepted.csv")
    assert accepted["a/t00_half.png"]["group"] == accepted["a/t00.png"]["group"]
    assert accepted["a/t04.png"]["group"] == accepted["a/t04.png"]["sha256"]


def test_a_group_is_never_split_across_train_val_and_test(checked, tmp_path):
    accepted = checked[0] / "data/validated/accepted.csv"
    for seed in range(5):
        out = tmp_path / str(seed)
        split(SplitParams(val=0.2, test=0.2), accepted, out, seed=seed)
        where = {}
        for name in ("train", "val", "test"):
            where |= {p: name for p in _rows(out / f"{name}.csv")}
        for group in checked[2].near_duplicates["list"]:
            assert len({where[p] for p in group["paths"]}) == 1, (seed, group)


def test_a_group_spanning_classes_is_a_listed_label_conflict(checked):
    project, _, result, _, _ = checked
    report = json.loads((project / "reports/validation.json").read_text())
    conflicts = [g for g in report["near_duplicates"]["list"] if g["label_conflict"]]
    assert conflicts == [
        {"paths": ["a/b05_copy.jpg", "b/t05.png"], "labels": ["a", "b"], "label_conflict": True}
    ]
    assert report["near_duplicates"]["label_conflicts"] == 1
    assert result.passed  # listed for the user to decide, both copies kept
    assert any("span two or more classes" in w for w in result.warnings)
    assert "`a/b05_copy.jpg` (a), `b/t05.png` (b)" in result.summary_markdown()
    suite = next(s for s in report["suites"] if s["suite"] == "near_duplicates")
    assert not suite["success"] and "a/b05_copy.jpg" in suite["failed"][0]
    docs = "".join(p.read_text() for p in (project / "reports/data_docs").rglob("*.html"))
    assert "a: a/b05_copy.jpg | b: b/t05.png" in docs


def test_excluded_images_are_dropped_and_reported_and_the_folder_is_untouched(checked):
    project, _, result, before, after = checked
    assert before == after  # the user's folder: byte for byte, mtimes and names included
    assert result.excluded == ["b/t11.png"]
    manifest = _rows(project / "data/validated/manifest.csv")
    assert "b/t11.png" not in manifest and "b/t10.png" in manifest
    assert (project / "data/raw/b/t11.png").is_file()  # dropped from the manifest only
    report = json.loads((project / "reports/validation.json").read_text())
    assert report["excluded"] == ["b/t11.png"]
    assert "excluded by you (validate.exclude): 1" in str(result)
    assert "Excluded by you" in result.summary_markdown()


def test_a_listed_path_not_in_the_folder_is_a_warning_naming_it(checked):
    assert any(
        w.startswith("exclude.txt lists a/gone.png, which is not in the folder")
        for w in checked[2].warnings
    )


def test_excluding_one_of_two_identical_files_ends_their_label_conflict(tmp_path):
    raw = tmp_path / "data/raw"
    for label, seed in (("a", 0), ("b", 50)):
        for i in range(6):
            gen.save(gen.texture(seed + i, 48), raw / label / f"{i}.png")
    (raw / "b/same.png").write_bytes((raw / "a/0.png").read_bytes())
    (tmp_path / "exclude.txt").write_text("b/same.png\n")
    result = validate(PARAMS, raw, tmp_path / "v", tmp_path / "r", tmp_path)
    assert result.rejected == 0 and result.excluded == ["b/same.png"]


def test_null_distance_groups_only_identical_files(tmp_path):
    source = _folder(tmp_path / "photos")
    params = ValidateParams(min_images_per_class=5, workers=1, near_duplicate_distance=None)
    result = validate(params, source, tmp_path / "v", tmp_path / "r", tmp_path)
    assert result.near_duplicates["groups"] == 0
    rows = _rows(tmp_path / "v/accepted.csv")
    assert all(r["group"] == r["sha256"] for r in rows.values())


def test_flat_images_of_different_colours_are_not_copies():
    from bakeoff.data.near_duplicates import perceptual_hash

    assert perceptual_hash(Image.new("RGB", (40, 40), "red")) == ""
    buf = io.BytesIO()
    gen.texture(1, 48).save(buf, "PNG")
    assert len(perceptual_hash(Image.open(buf).convert("RGB"))) == 16


@pytest.mark.parametrize("distance", [0, 3, 6, 10])
def test_band_search_finds_exactly_the_pairs_a_full_comparison_finds(distance):
    rng = np.random.default_rng(distance)
    hashes = rng.integers(0, 2**64, size=1500, dtype=np.uint64)
    for k in range(60):  # planted neighbours at every distance up to distance + 2
        flips = rng.choice(64, size=k % (distance + 3), replace=False)
        hashes[700 + k] = hashes[k] ^ np.uint64(sum(1 << int(f) for f in flips))
    full = np.bitwise_count(hashes[:, None] ^ hashes[None, :])
    i, j = np.nonzero(np.triu(full <= distance, 1))
    found = set(map(tuple, close_pairs(hashes, distance).tolist()))
    assert found == set(zip(i.tolist(), j.tolist(), strict=True))


def test_groups_are_the_chains_of_close_pairs():
    hashes = ["0000000000000000", "0000000000000007", "000000000000003f", "ffffffffffffffff"]
    assert near_duplicate_groups(hashes, 3) == [[0, 1, 2]]  # 0-1 and 1-2 close: one group
    assert near_duplicate_groups(hashes, 2) == []
    assert near_duplicate_groups(hashes, None) == []


def test_thousands_of_mutually_close_hashes_are_one_group_without_all_pairs():
    """Near-blank scans or a burst of frames: every hash close to every other. The pairs
    are folded into a forest as they come (millions of pairs, one group)."""
    rng = np.random.default_rng(0)
    base = 0x0123456789ABCDEF
    flips = rng.integers(0, 64, size=(6000, 2))
    hashes = [f"{base ^ (1 << int(a)) ^ (1 << int(b)):016x}" for a, b in flips]
    hashes += ["ffff0000ffff0000"] * 3000  # identical hashes: one node
    groups = near_duplicate_groups(hashes, 4)
    assert sorted(len(g) for g in groups) == [3000, 6000]
