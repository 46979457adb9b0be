"""reports/comparison.html in a real browser (Debian's chromium, driven by playwright).

The fixture is the longest first screen the report has: every backbone trained from scratch
(the recommendation then says which question it answers) and a champion other than the
recommendation (two mistake galleries). Its backbones are listed least accurate first, so
the table's order shows whether rows are ranked or follow params. The screenshots are kept
as test artefacts: under tmp_path, and in $BAKEOFF_ARTIFACTS when it is set.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
from pathlib import Path

import pytest

from tests.code.report_fixtures import (
    SPECS,
    make_inputs,
    run_report,
    shrunk_params,
    with_training_runs,
)

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
        return run_report(params, root, list(SPECS)[::-1])


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


@contextlib.contextmanager
def _page(viewport: dict[str, int]):
    """A chromium page at `viewport`, closed on exit."""
    from playwright import sync_api

    assert CHROMIUM.is_file(), f"no {CHROMIUM}: install Debian's chromium (`make setup`)"
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=str(CHROMIUM),
            args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        try:
            yield browser.new_page(viewport=viewport)
        finally:
            browser.close()


def test_report_in_chromium_at_1024_px(scratch_report, tmp_path):
    with _page(VIEWPORT) as page:
        page.goto(scratch_report.as_uri(), wait_until="load")
        first = tmp_path / "comparison-1024x768.png"
        page.screenshot(path=first)
        page.screenshot(path=tmp_path / "comparison-full.png", full_page=True)
        images = page.eval_on_selector_all(
            "img", "els => els.map(e => [e.alt, e.complete, e.naturalWidth])"
        )
        boxes = {key: page.locator(key).bounding_box() for key in ("#recommendation", "#champion")}
        widths = page.evaluate(
            "[document.documentElement.scrollWidth, document.documentElement.clientWidth]"
        )
        main_columns = page.locator("table").first.locator("th").count()
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


# The visible text of the blocks that start within the first `height` px (tables excluded:
# their cells are numbers, not sentences).
_FIRST_SCREEN = """height => [...document.body.children]
    .filter(e => e.getBoundingClientRect().top < height && !e.matches('.scroll, style'))
    .map(e => e.innerText)"""
_SENTENCE = re.compile(r"(?<=[.!?:;])\s+(?=[A-Z])")


def _sentences(text: str) -> list[str]:
    """The sentences of each line (a heading is a line), of at least four words, with
    whitespace collapsed."""
    flat = [" ".join(line.split()) for line in text.splitlines()]
    return [s for line in flat for s in _SENTENCE.split(line) if len(s.split()) >= 4]


def _markdown_text(md: str) -> str:
    """The markdown's prose as a reader sees it: no tables, images or markup."""
    keep = [line for line in md.splitlines() if not line.startswith(("|", "!["))]
    text = "\n".join(keep)
    for mark in ("**", "`", "## ", "# "):
        text = text.replace(mark, "")
    return "\n".join(re.sub(r"^- ", "", line) for line in text.splitlines())


def test_first_screen_says_each_thing_once_and_ranks_the_rows(scratch_report, tmp_path):
    with _page(VIEWPORT) as page:
        page.goto(scratch_report.as_uri(), wait_until="load")
        blocks = page.evaluate(_FIRST_SCREEN, VIEWPORT["height"])
        header = page.locator("#main th").all_inner_texts()
        rows = [r.split("\t") for r in page.locator("#main tr").all_inner_texts()[1:]]
        tips = page.eval_on_selector_all("#main th", "els => els.map(e => e.title)")
        page.screenshot(path=tmp_path / "first-screen-1024.png")
    _keep(tmp_path / "first-screen-1024.png")
    sentences = _sentences("\n".join(blocks))
    assert len(sentences) >= 5, blocks
    twice = {s for s in sentences if sentences.count(s) > 1}
    assert not twice, f"said twice on the first screen: {twice}"
    # Ranked by the measure that decides (CV accuracy when shown, else test accuracy).
    column = header.index("CV accuracy" if "CV accuracy" in header else "Test accuracy")
    accuracy = [float(r[column]) for r in rows]
    assert accuracy == sorted(accuracy, reverse=True) and len(rows) == len(SPECS)
    assert [r[0] for r in rows] != list(SPECS)[::-1], "rows follow the params order"
    # The definitions are the column titles' tooltips, not footnotes under the table.
    assert all(tips[1:]) and "bootstrap" in tips[header.index("95% interval")]
    assert sum("How to read this" in b for b in blocks) == 1


def test_html_and_markdown_say_the_same(scratch_report):
    md_lines = _markdown_text(scratch_report.with_suffix(".md").read_text())
    md_text = " ".join(md_lines.split())
    with _page({"width": 1440, "height": 900}) as page:
        page.goto(scratch_report.as_uri(), wait_until="load")
        html_text = " ".join(page.inner_text("body").split())
        prose = page.eval_on_selector_all(
            "h1, h2, p, li, .card", "els => els.map(e => e.innerText)"
        )
    missing_in_html = [s for s in _sentences(md_lines) if s not in html_text]
    assert not missing_in_html, missing_in_html
    # The HTML's colour scale has no counterpart in the (colourless) markdown.
    html_only = [
        s
        for s in _sentences("\n".join(prose))
        if s not in md_text and not s.startswith("Colour from the lowest")
    ]
    assert not html_only, html_only


def test_gallery_captions_keep_class_names_whole(scratch_report, tmp_path):
    with _page({"width": 1440, "height": 900}) as page:
        page.goto(scratch_report.as_uri(), wait_until="load")
        # The fixture's classes are short: give the captions the longest demo class names.
        page.eval_on_selector_all(
            ".gallery .cls", "els => els.forEach(e => { e.textContent = 'T-shirt_top' })"
        )
        names = page.eval_on_selector_all(
            ".gallery .cls",
            "els => els.map(e => [e.textContent, e.getClientRects().length,"
            " e.scrollWidth <= e.clientWidth])",
        )
        page.screenshot(path=tmp_path / "comparison-1440.png", full_page=True)
    _keep(tmp_path / "comparison-1440.png")
    assert len(names) == 2 * 2 * 24  # true and predicted class of every thumbnail
    broken = [name for name, lines, fits in names if lines != 1 or not fits]
    assert not broken, f"class names broken or cut in captions: {broken}"


@pytest.fixture(scope="module")
def checked_report(tmp_path_factory) -> Path:
    """The report of backbones with out-of-fold probabilities and a cross-class copy."""
    from tests.code.label_check_fixtures import checked_report as make

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
