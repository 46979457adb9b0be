"""The Great Expectations suites on fixture manifests: a clean one passes, a bad one fails."""

from __future__ import annotations

import pandas as pd
import pytest

from bakeoff.config.params import ValidateParams
from bakeoff.data.expectations import COLUMNS, run_suites

PARAMS = ValidateParams(min_size=16, min_images_per_class=3, max_class_imbalance=2.0)


def _row(path: str, label: str, sha: str, width: int = 28, status: str = "accepted", reason="",
         group=None):  # fmt: skip
    info = dict(format="PNG", mode="L", width=width, height=28, bytes=500, conversion="L->RGB")
    info |= dict(phash="c3a5" * 4 if sha else "", group=sha if group is None else group)
    return dict(path=path, label=label, sha256=sha, status=status, reason=reason, **info)


def _sha(i: int) -> str:
    return f"{i:064x}"


@pytest.fixture
def clean():
    rows = [_row(f"{lab}/{i}.png", lab, _sha(k * 10 + i)) for k, lab in enumerate("ab")
            for i in range(4)]  # fmt: skip
    rows.append(_row("a/dup.png", "a", _sha(0)))  # same bytes, same label: fine
    rows.append(_row("a/small_copy.png", "a", _sha(50), group=_sha(1)))  # a/1.png resized
    rows.append(_row("stray.png", "", "", 0, "rejected", "outside_class_folder"))
    return pd.DataFrame(rows, columns=COLUMNS)


def _by_suite(outcomes):
    return {o.suite: o for o in outcomes}


def test_clean_manifest_passes_every_suite_and_builds_docs(clean, tmp_path):
    outcomes = _by_suite(run_suites(clean, PARAMS, ["a", "b"], tmp_path / "docs"))
    assert {name: o.success for name, o in outcomes.items()} == {
        "manifest": True, "accepted_contents": True, "classes": True,
        "near_duplicates": True}  # fmt: skip
    assert outcomes["manifest"].evaluated >= 10
    assert (tmp_path / "docs/index.html").is_file()
    assert list((tmp_path / "docs/validations").rglob("*.html"))


def test_each_broken_rule_is_reported(clean, tmp_path):
    bad = pd.concat(
        [
            clean,
            pd.DataFrame(
                [
                    _row("a/small.png", "a", _sha(90), width=8),  # accepted yet too small
                    _row("b/conflict.png", "b", _sha(0)),  # same bytes as a/0.png
                    _row("z/new.png", "zebra", _sha(91)),  # a label outside the class set
                    _row("a/odd.png", "a", _sha(92), status="maybe"),
                    _row("a/0.png", "a", _sha(93)),  # a path listed twice
                    _row("b/copy.png", "b", _sha(94), group=_sha(2)),  # a/2.png, filed in b
                ]
                + [_row(f"a/more{i}.png", "a", _sha(100 + i)) for i in range(10)],
                columns=COLUMNS,
            ),
        ]
    )
    outcomes = _by_suite(run_suites(bad, PARAMS, ["a", "b"], tmp_path / "docs"))
    assert not any(o.success for o in outcomes.values())
    failed = " | ".join(outcomes["manifest"].failed)
    for expectation in (
        "expect_column_values_to_be_between(column=width",
        "expect_column_values_to_be_in_set(column=label",
        "expect_column_values_to_be_in_set(column=status",
        "expect_column_values_to_be_unique(column=path",
    ):
        assert expectation in failed
    assert "zebra" in failed and "maybe" in failed
    contents = " | ".join(outcomes["accepted_contents"].failed)
    assert "column=labels" in contents
    classes = " | ".join(outcomes["classes"].failed)
    assert "ratio_to_smallest" in classes  # 'a' now has about 4x 'b'
    assert "a: a/2.png | b: b/copy.png" in " | ".join(outcomes["near_duplicates"].failed)
