"""validate: every bad-input case found in one pass, reported, and never modified."""

from __future__ import annotations

import csv
import io
import json
import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from bakeoff.config.params import DataParams, SplitParams, ValidateParams
from bakeoff.data.ingest import ingest
from bakeoff.data.split import split
from bakeoff.data.validate import ValidationFailed, validate
from bakeoff.errors import BakeoffError
from tests.conftest import REPO
from tests.data import imagegen as gen

LENIENT = ValidateParams(min_size=16, max_invalid_fraction=0.5, min_images_per_class=5)

REJECTED = {
    "a/zero.png": "zero_bytes",
    "a/cut.png": "truncated",
    "b/cut.jpg": "truncated",
    "b/notes.jpg": "not_an_image",
    "c/tiny.png": "too_small",
    "c/bomb.png": "decompression_bomb",
    "a/outside_link.png": "symlink_outside_root",
    "stray.png": "outside_class_folder",
    "a/same.png": "label_conflict",
    "b/same.png": "label_conflict",
}
CONVERTED = {
    "a/cmyk.jpg": ("JPEG", "CMYK->RGB"),
    "a/palette.png": ("PNG", "P->RGB(alpha on white)"),
    "a/grey.png": ("PNG", "L->RGB"),
    "b/wide.png": ("PNG", "I;16->RGB(scaled to 8-bit)"),
    "b/alpha.png": ("PNG", "RGBA->RGB(alpha on white)"),
    "b/rotated.jpg": ("JPEG", "exif-rotated"),
    "c/anim.gif": ("GIF", "P->RGB; first-frame"),
    "c/photo.webp": ("WEBP", ""),
    "c/scan.tif": ("TIFF", ""),
    "c/old.bmp": ("BMP", ""),
    "c/UPPER.PNG": ("PNG", ""),
}


def make_zoo(root: Path, outside: Path) -> Path:
    """Three classes of good PNGs plus one file for every case validate must handle."""
    for i, label in enumerate("abc"):
        gen.good_class(root, label, 12, seed=i + 1)
    (root / "a/zero.png").write_bytes(b"")
    gen.truncated(root / "a/cut.png", "PNG")
    gen.truncated(root / "b/cut.jpg", "JPEG")
    (root / "b/notes.jpg").write_text("meeting notes, not a picture\n")
    gen.save(gen.noise(3, 8), root / "c/tiny.png")
    gen.bomb_png(root / "c/bomb.png")
    gen.save(gen.noise(4), outside / "elsewhere.png")
    os.symlink(outside / "elsewhere.png", root / "a/outside_link.png")
    os.symlink("a_000.png", root / "a/inside_link.png")  # inside the root: a normal file
    gen.save(gen.noise(5), root / "stray.png")
    gen.save(gen.noise(6), root / "a/same.png")
    shutil.copy(root / "a/same.png", root / "b/same.png")  # same bytes, two labels
    gen.save(gen.noise(8), root / "c/dup1.png")
    shutil.copy(root / "c/dup1.png", root / "c/dup2.png")  # same bytes, same label
    gen.save(Image.new("CMYK", (20, 20), (0, 255, 0, 0)), root / "a/cmyk.jpg")
    gen.palette_with_transparency(root / "a/palette.png")
    gen.save(gen.noise(9, mode="L"), root / "a/grey.png")
    gen.sixteen_bit(root / "b/wide.png")
    gen.save(gen.noise(10, mode="RGBA"), root / "b/alpha.png")
    gen.exif_rotated(root / "b/rotated.jpg")
    gen.animated_gif(root / "c/anim.gif")
    gen.save(gen.noise(12), root / "c/photo.webp")
    gen.save(gen.noise(13), root / "c/scan.tif")
    gen.save(gen.noise(14), root / "c/old.bmp")
    gen.save(gen.noise(15), root / "c/UPPER.PNG")
    for hidden in ("a/.DS_Store", "b/Thumbs.db", "c/.secret.png", ".hidden_dir/x.png"):
        (root / hidden).parent.mkdir(parents=True, exist_ok=True)
        (root / hidden).write_bytes(b"junk")
    (root / "empty_class").mkdir()
    return root


@pytest.fixture(scope="module")
def zoo(tmp_path_factory):
    """Ingest + validate of the zoo, once: (source, raw, validated, reports, result, digests)."""
    tmp = tmp_path_factory.mktemp("zoo")
    source = make_zoo(tmp / "source", tmp / "outside")
    before = gen.tree_digest(source)
    raw = tmp / "raw"
    ingest(DataParams(source=str(source)), raw, root=tmp, seed=42)
    raw_before = gen.tree_digest(raw)
    result = validate(LENIENT, raw, tmp / "validated", tmp / "reports", tmp)
    digests = (before, gen.tree_digest(source), raw_before, gen.tree_digest(raw))
    return source, raw, tmp / "validated", tmp / "reports", result, digests


def _manifest(path: Path) -> dict[str, dict[str, str]]:
    with open(path, newline="") as fh:
        return {row["path"]: row for row in csv.DictReader(fh)}


def test_every_bad_file_is_rejected_with_its_reason_in_one_pass(zoo):
    _, _, validated, _, result, _ = zoo
    rows = _manifest(validated / "manifest.csv")
    rejected = {p: r["reason"] for p, r in rows.items() if r["status"] == "rejected"}
    assert rejected == REJECTED
    assert result.rejected == len(REJECTED) and result.passed
    accepted = _manifest(validated / "accepted.csv")
    assert set(accepted) == {p for p in rows if p not in REJECTED}
    assert rows["c/tiny.png"]["width"] == "8"


def test_odd_formats_are_accepted_with_the_conversion_recorded(zoo):
    rows = _manifest(zoo[2] / "manifest.csv")
    for path, (fmt, conversion) in CONVERTED.items():
        assert rows[path]["status"] == "accepted", path
        assert (rows[path]["format"], rows[path]["conversion"]) == (fmt, conversion), path
    assert rows["a/inside_link.png"]["sha256"] == rows["a/a_000.png"]["sha256"]


def test_hidden_files_and_empty_folders_are_ignored(zoo):
    rows = _manifest(zoo[2] / "manifest.csv")
    assert not [p for p in rows if "/." in p or p.startswith(".") or "Thumbs" in p]
    assert zoo[4].classes == ["a", "b", "c"]
    assert zoo[4].warnings[0] == "empty class folder ignored: empty_class"


def test_source_and_raw_are_never_modified(zoo):
    before, after, raw_before, raw_after = zoo[5]
    assert before == after
    assert raw_before == raw_after


def test_validation_json_lists_everything_and_data_docs_exist(zoo):
    _, _, _, reports, result, _ = zoo
    report = json.loads((reports / "validation.json").read_text())
    assert {(p["path"], p["reason"]) for p in report["problems"]} == set(REJECTED.items())
    assert report["per_reason"]["label_conflict"] == 2
    assert report["per_class"]["c"]["rejected"] == 2
    assert report["data_version"] == result.data_version and len(result.data_version) == 16
    suites = {s["suite"]: s["success"] for s in report["suites"]}
    assert list(suites) == ["manifest", "accepted_contents", "classes", "near_duplicates"]
    # The zoo's two half-white pictures (a/palette.png, b/wide.png) look alike: listed, kept.
    assert suites == {**suites, "manifest": True, "accepted_contents": True, "classes": True}
    assert not suites["near_duplicates"] and result.passed
    assert (reports / "data_docs/index.html").is_file()
    assert "label_conflict" in result.summary_markdown() and "passed" in str(result)


def test_identical_files_with_the_same_label_land_in_the_same_split(zoo, tmp_path):
    split(SplitParams(val=0.2, test=0.2), zoo[2] / "accepted.csv", tmp_path, seed=1)
    where = {}
    for name in ("train", "val", "test"):
        with open(tmp_path / f"{name}.csv", newline="") as fh:
            where.update({row["path"]: name for row in csv.DictReader(fh)})
    assert where["c/dup1.png"] == where["c/dup2.png"]
    assert where["a/inside_link.png"] == where["a/a_000.png"]


def test_validate_sees_symlinks_and_stray_files_without_ingest(tmp_path):
    raw = tmp_path / "raw"
    for i, label in enumerate("xy"):
        gen.good_class(raw, label, 10, seed=i + 20)
    gen.save(gen.noise(1), tmp_path / "out.png")
    os.symlink(tmp_path / "out.png", raw / "x/link.png")
    os.symlink(tmp_path / "nowhere.png", raw / "y/broken.png")
    gen.save(gen.noise(2), raw / "loose.png")
    result = validate(LENIENT, raw, tmp_path / "v", tmp_path / "r", tmp_path)
    got = {(p["path"], p["reason"]) for p in result.problems}
    assert got == {
        ("x/link.png", "symlink_outside_root"),
        ("y/broken.png", "broken_symlink"),
        ("loose.png", "outside_class_folder"),
    }


def test_too_many_invalid_files_fail_after_writing_the_reports(zoo, tmp_path):
    with pytest.raises(ValidationFailed) as info:
        validate(ValidateParams(min_size=16), zoo[1], tmp_path / "v", tmp_path / "r", tmp_path)
    assert "validate.max_invalid_fraction" in str(info.value)
    assert info.value.result.rejected == len(REJECTED)
    assert not json.loads((tmp_path / "r/validation.json").read_text())["passed"]
    assert "Why it failed" in info.value.result.summary_markdown()


def test_dataset_problems_are_listed_together_in_one_message(tmp_path):
    raw = tmp_path / "raw"
    gen.good_class(raw, "big", 40, seed=1)
    gen.good_class(raw, "small", 3, seed=2)
    params = ValidateParams(min_images_per_class=5, max_class_imbalance=10.0)
    with pytest.raises(ValidationFailed) as info:
        validate(params, raw, tmp_path / "v", tmp_path / "r", tmp_path)
    message = str(info.value)
    assert "'small' (3)" in message and "validate.min_images_per_class=5" in message
    assert "ratio 13.3 > validate.max_class_imbalance=10.0" in message
    assert isinstance(info.value, BakeoffError)


def test_a_single_class_fails(tmp_path, caplog):
    raw = tmp_path / "raw"
    gen.good_class(raw, "only", 12, seed=1)
    (raw / "nothing").mkdir()
    with caplog.at_level(logging.WARNING), pytest.raises(ValidationFailed) as info:
        validate(ValidateParams(), raw, tmp_path / "v", tmp_path / "r", tmp_path)
    assert "found 1 class(es) with usable images (only)" in str(info.value)
    assert "empty class folder ignored: nothing" in caplog.text


def test_cli_exits_1_with_one_line_and_writes_reports(zoo, tmp_path, monkeypatch, capsys):
    """`bakeoff validate` (the console script's main) on a project folder: one line, exit 1."""
    from bakeoff import cli

    shutil.copytree(zoo[1], tmp_path / "data/raw", symlinks=True)
    (tmp_path / "params.yaml").write_text((REPO / "params.yaml").read_text())
    monkeypatch.delenv("BAKEOFF_ROOT", raising=False)
    monkeypatch.chdir(tmp_path)  # a folder with a params.yaml is the project bakeoff runs
    argv = ["bakeoff", "validate"]
    monkeypatch.setattr("sys.argv", argv)
    with pytest.raises(SystemExit) as info:
        cli.main()
    assert info.value.code == 1
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("error: data validation failed:")
    assert f"{len(REJECTED)} of {zoo[4].total} files" in err
    assert (tmp_path / "reports/data_docs/index.html").is_file()
    assert (tmp_path / "data/validated/manifest.csv").is_file()


@pytest.mark.parametrize("limit", [100, 300])  # 400 px: PIL's error, and PIL's mere warning
def test_inspect_flags_a_bomb_by_pixel_limit(tmp_path, monkeypatch, limit):
    from bakeoff.data.validate import inspect_file

    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", limit)
    path = gen.save(gen.noise(1, 20), tmp_path / "big.png")
    assert inspect_file(str(path), 16)["reason"] == "decompression_bomb"
    buf = io.BytesIO()
    gen.noise(1, 10).save(buf, "PNG")
    (tmp_path / "ok.png").write_bytes(buf.getvalue())
    assert "reason" not in inspect_file(str(tmp_path / "ok.png"), 8)


POOL_UNDER_A_SIGTERM_HANDLER = """
import signal, sys
from pathlib import Path

def handler(signum, frame):  # what Prefect installs in a task's process
    print("PARENT-HANDLER-RAN", file=sys.stderr, flush=True)
    raise SystemExit("TerminationSignal")

signal.signal(signal.SIGTERM, handler)
from bakeoff.config.params import ValidateParams
from bakeoff.data.validate import validate
root = Path(sys.argv[1])
result = validate(
    ValidateParams(workers=2, min_size=16), root / "raw", root / "v", root / "r", root
)
print("ACCEPTED", result.accepted)
"""


def test_pool_workers_exit_quietly_under_a_parent_sigterm_handler(tmp_path):
    """Inside a Prefect task, validate's forked workers inherit Prefect's SIGTERM handler:
    the pool shuts them down without a TerminationSignal traceback."""
    for label, seed in (("a", 1), ("b", 2)):
        gen.good_class(tmp_path / "raw", label, 70, seed=seed)  # > one chunk: the pool runs
    done = subprocess.run(
        [sys.executable, "-c", POOL_UNDER_A_SIGTERM_HANDLER, str(tmp_path)],
        capture_output=True, text=True, timeout=240,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    assert "ACCEPTED 140" in done.stdout
    assert "PARENT-HANDLER-RAN" not in done.stderr and "Traceback" not in done.stderr


def test_data_docs_render_offline_with_the_list_of_validation_results(zoo, tmp_path):
    """The index page in a real browser with every non-file request refused: styled, its
    icons' font loaded, and bootstrap-table has drawn one row per suite."""
    import playwright.sync_api as playwright

    reports = zoo[3]
    refused: list[str] = []

    def offline(route):
        if route.request.url.startswith("file://"):
            route.continue_()
        else:
            refused.append(route.request.url)
            route.abort()

    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path="/usr/bin/chromium",
            args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.route("**/*", offline)
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.goto((reports / "data_docs" / "index.html").as_uri())
            page.wait_for_load_state("networkidle")
            rows = page.locator("table.table tbody tr:visible").all_inner_texts()
            # Bootstrap's stylesheet applied: its .container-fluid padding, its font stack.
            padding = page.eval_on_selector(
                ".container-fluid", "e => getComputedStyle(e).paddingLeft"
            )
            icons = page.evaluate("document.fonts.check('900 16px \"Font Awesome 6 Free\"')")
            page.screenshot(path=str(tmp_path / "data_docs.png"), full_page=True)
        finally:
            browser.close()
    assert refused == [] and errors == []
    suites = ("manifest", "accepted_contents", "classes", "near_duplicates")
    assert all(any(suite in row for row in rows) for suite in suites), rows
    assert padding != "0px" and icons
