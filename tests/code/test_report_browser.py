"""reports/comparison.html in a real browser (Debian's chromium, driven by playwright).

The fixture is the longest first screen the report has: every backbone trained from scratch
(the recommendation then says which question it answers) and a champion other than the
recommendation (two mistake galleries). The screenshots are kept as test artefacts: under
tmp_path, and in $BAKEOFF_ARTIFACTS when it is set.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest

from bakeoff.report.stage import report
from tests.code.test_report import SPECS, make_inputs, shrunk_params, with_training_runs

CHROMIUM = Path("/usr/bin/chromium")
VIEWPORT = {"width": 1024, "height": 768}


@pytest.fixture(scope="module")
def scratch_report(tmp_path_factory) -> Path:
    """The report of three backbones trained from scratch; its comparison.html."""
    root = tmp_path_factory.mktemp("scratch")
    metrics = make_inputs(root, scratch=True)
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("MLFLOW_TRACKING_URI", raising=False)
        params = shrunk_params()
        with_training_runs(params, root, metrics)  # the report logs intervals there
        return report(
            params.report, list(SPECS), root / "metrics", root / "models", root / "reports",
            tracking_params=params.tracking, root=root,
        )  # fmt: skip


def _keep(path: Path) -> None:
    """Copy a screenshot to $BAKEOFF_ARTIFACTS (CI uploads it) and say where it is."""
    print(f"screenshot: {path}")
    folder = os.environ.get("BAKEOFF_ARTIFACTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        print(f"screenshot: {shutil.copy2(path, Path(folder) / path.name)}")


def test_from_scratch_recommendation_says_which_question_it_answers(scratch_report):
    md = (scratch_report.parent / "comparison.md").read_text()
    decision = md.split("## Results")[0]
    assert "**How the backbones were trained:** from scratch (random initial weights), 32 px" in (
        decision
    )
    recommendation = re.search(r"\*\*Recommendation: .*", decision).group(0)
    assert "This answers a from-scratch question" in recommendation
    assert "`train.weights: imagenet`" in recommendation
    # No backbone was tuned: the default/tuned head columns are not shown.
    assert "Val acc. tuned head" not in md and "Val acc. default head" not in md


def test_report_in_chromium_at_1024_px(scratch_report, tmp_path):
    from playwright import sync_api

    assert CHROMIUM.is_file(), f"no {CHROMIUM}: install Debian's chromium (`make setup`)"
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=str(CHROMIUM),
            args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        try:
            page = browser.new_page(viewport=VIEWPORT)
            page.goto(scratch_report.as_uri(), wait_until="load")
            first = tmp_path / "comparison-1024x768.png"
            page.screenshot(path=first)
            page.screenshot(path=tmp_path / "comparison-full.png", full_page=True)
            images = page.eval_on_selector_all(
                "img", "els => els.map(e => [e.alt, e.complete, e.naturalWidth])"
            )
            boxes = {
                key: page.locator(key).bounding_box() for key in ("#recommendation", "#champion")
            }
            widths = page.evaluate(
                "[document.documentElement.scrollWidth, document.documentElement.clientWidth]"
            )
            main_columns = page.locator("table").first.locator("th").count()
        finally:
            browser.close()
    for path in (first, tmp_path / "comparison-full.png"):
        _keep(path)
    broken = [alt for alt, complete, width in images if not (complete and width > 0)]
    assert not broken, f"images that did not load: {broken}"
    # 3 figures and 24 thumbnails for each of the recommendation and the champion.
    assert len(images) == 3 + 2 * 24
    for key, box in boxes.items():
        assert box and box["y"] >= 0 and box["y"] + box["height"] <= VIEWPORT["height"], key
    scroll_width, client_width = widths
    assert scroll_width <= client_width, "the page scrolls horizontally at 1024 px"
    assert main_columns <= 7


@pytest.fixture(scope="module")
def checked_report(tmp_path_factory) -> Path:
    """The report of backbones with out-of-fold probabilities and a cross-class copy."""
    from tests.code.test_label_issues import checked_report as make

    return make(tmp_path_factory.mktemp("checked"))


def test_folder_problems_in_chromium_as_pictures_near_the_top(checked_report, tmp_path):
    from playwright import sync_api

    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=str(CHROMIUM),
            args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        try:
            page = browser.new_page(viewport=VIEWPORT)
            page.goto(checked_report.as_uri(), wait_until="load")
            section = page.locator("#folder-problems")
            section.scroll_into_view_if_needed()
            shot = tmp_path / "folder-problems-1024.png"
            page.screenshot(path=shot)
            line = page.locator("#label-issues-line").inner_text()
            thumbs = page.eval_on_selector_all(
                "#label-issues img", "els => els.map(e => [e.alt, e.complete, e.naturalWidth])"
            )
            captions = page.locator("#label-issues figcaption").all_inner_texts()
            conflict = page.eval_on_selector_all(
                ".conflict img", "els => els.map(e => [e.alt, e.complete, e.naturalWidth])"
            )
            tops = {
                key: page.locator(key).first.bounding_box()["y"]
                for key in (
                    "#folder-problems",
                    "h2:has-text('Mistakes of')",
                    "h2:has-text('Details')",
                )
            }
            widths = page.evaluate(
                "[document.documentElement.scrollWidth, document.documentElement.clientWidth]"
            )
        finally:
            browser.close()
    _keep(shot)
    n = len((checked_report.parent / "label_issues.csv").read_text().splitlines()) - 1
    assert line == f"{n} of 300 images look mislabelled (reports/label_issues.csv)."
    assert len(thumbs) == min(n, 24) and all(ok and w > 0 for _, ok, w in thumbs)
    assert captions[0].startswith("1. given: ") and "suggested: " in captions[0]
    assert "score 0." in captions[0]
    assert [alt for alt, _, _ in conflict] == ["bag/bag_000.png", "coat/coat_001.png"]
    assert all(ok and w > 0 for _, ok, w in conflict)
    # Before the evidence: the mistakes of the backbones and the details follow it.
    assert (
        tops["#folder-problems"]
        < tops["h2:has-text('Mistakes of')"]
        < tops["h2:has-text('Details')"]
    )
    assert widths[0] <= widths[1], "the section makes the page scroll horizontally"
