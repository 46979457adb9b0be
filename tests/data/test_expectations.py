"""The Great Expectations suites on fixture manifests: a clean one passes, a bad one fails."""

from __future__ import annotations

import pandas as pd
import pytest

from bakeoff.data.expectations import COLUMNS, run_suites
from tests.data.manifest_rows import PARAMS, row, sha


@pytest.fixture
def clean():
    rows = [row(f"{lab}/{i}.png", lab, sha(k * 10 + i)) for k, lab in enumerate("ab")
            for i in range(4)]  # fmt: skip
    rows.append(row("a/dup.png", "a", sha(0)))  # same bytes, same label: fine
    rows.append(row("a/small_copy.png", "a", sha(50), group=sha(1)))  # a/1.png resized
    rows.append(row("stray.png", "", "", 0, "rejected", "outside_class_folder"))
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
                    row("a/small.png", "a", sha(90), width=8),  # accepted yet too small
                    row("b/conflict.png", "b", sha(0)),  # same bytes as a/0.png
                    row("z/new.png", "zebra", sha(91)),  # a label outside the class set
                    row("a/odd.png", "a", sha(92), status="maybe"),
                    row("a/0.png", "a", sha(93)),  # a path listed twice
                    row("b/copy.png", "b", sha(94), group=sha(2)),  # a/2.png, filed in b
                ]
                + [row(f"a/more{i}.png", "a", sha(100 + i)) for i in range(10)],
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
