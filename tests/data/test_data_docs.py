"""The Data Docs pages as a reader sees them: the data asset and the run are named, and every
expectation shows its values."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

from bakeoff.data.expectations import ASSETS, COLUMNS, run_suites
from tests.data.manifest_rows import PARAMS, row, sha


def _text(page: Path) -> str:
    """A page's words: no scripts, styles or tags, whitespace collapsed."""
    html = re.sub(r"<(script|style)\b.*?</\1>", " ", page.read_text(), flags=re.S)
    return " ".join(re.sub(r"<[^>]+>", " ", html).split())


def test_data_docs_name_the_asset_and_the_data_version_and_show_every_value_set(tmp_path):
    rows = [row(f"{lab}/{i}.png", lab, sha(k * 10 + i)) for k, lab in enumerate("ab")
            for i in range(4)]  # fmt: skip
    rows.append(row("stray.png", "", "", 0, "rejected", "outside_class_folder"))
    docs = tmp_path / "docs"
    run_suites(pd.DataFrame(rows, columns=COLUMNS), PARAMS, ["a", "b"], docs, "0123abcd4567ef89")
    pages = sorted((docs / "validations").rglob("*.html"))
    assert {p.relative_to(docs / "validations").parts[:2] for p in pages} == {
        (suite, "0123abcd4567ef89") for suite in ASSETS
    }, "one page per suite, filed under the data version"
    for page in pages:
        text = _text(page)
        suite = page.relative_to(docs / "validations").parts[0]
        assert "Data asset: None" not in text and "__none__" not in text, page
        assert f"Data asset: {ASSETS[suite]}" in text.replace("&#39;", "'"), page
        assert "Run Name 0123abcd4567ef89" in text, page
        # A set rendered without its values reads "belong to this set: ."
        for values in re.findall(r"belong to this set:(.*?)\.(?:\s|$)", text):
            assert values.strip(), f"an expectation renders an empty set in {page}"
    manifest = _text(next(p for p in pages if "manifest" in p.parts))
    assert "belong to this set: a b ." in manifest
    assert "values must be 0.0 characters long" in manifest  # accepted rows have no reason
    assert "0123abcd4567ef89" in (docs / "index.html").read_text()
