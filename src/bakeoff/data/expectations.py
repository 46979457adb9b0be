"""The Great Expectations gate over the image manifest (GE 1.x, ephemeral context).

Four tables are checked, each by its own suite: the manifest itself (one row per file),
the accepted contents (one row per distinct sha256: identical files must agree on their
label), the classes (one row per class: enough images, balanced enough) and the
near-duplicate groups (one row per group: a group spanning classes is a label conflict
that the Data Docs list; it does not fail validation). The results and a static Data
Docs site are written under the reports folder.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from bakeoff.config.params import ValidateParams
from bakeoff.data.docs_offline import make_offline

COLUMNS = [
    "path", "label", "format", "mode", "width", "height",
    "bytes", "sha256", "status", "reason", "conversion", "phash", "group",
]  # fmt: skip
REASONS = [
    "zero_bytes", "truncated", "undecodable", "not_an_image", "too_small",
    "decompression_bomb", "symlink_outside_root", "broken_symlink", "symlinked_folder",
    "outside_class_folder", "label_conflict",
]  # fmt: skip


@dataclass(frozen=True)
class SuiteOutcome:
    """One suite's verdict: its name, success, and the failed expectations in words."""

    suite: str
    success: bool
    evaluated: int
    failed: list[str]


def _manifest_suite(gx: Any, params: ValidateParams, classes: list[str]) -> Any:
    from great_expectations.expectations.row_conditions import Column

    accepted = Column("status") == "accepted"
    expect = gx.expectations
    suite = gx.ExpectationSuite(name="manifest")
    for exp in [
        expect.ExpectTableColumnsToMatchOrderedList(column_list=COLUMNS),
        expect.ExpectColumnValuesToNotBeNull(column="path"),
        expect.ExpectColumnValuesToBeUnique(column="path"),
        expect.ExpectColumnValuesToBeInSet(column="status", value_set=["accepted", "rejected"]),
        expect.ExpectColumnValuesToBeInSet(
            column="reason", value_set=REASONS, row_condition=Column("status") == "rejected"
        ),
        expect.ExpectColumnValuesToBeInSet(
            column="label", value_set=classes, row_condition=accepted
        ),
        expect.ExpectColumnValuesToMatchRegex(
            column="sha256", regex=r"^[0-9a-f]{64}$", row_condition=accepted
        ),
        expect.ExpectColumnValuesToBeBetween(
            column="width", min_value=params.min_size, row_condition=accepted
        ),
        expect.ExpectColumnValuesToBeBetween(
            column="height", min_value=params.min_size, row_condition=accepted
        ),
        expect.ExpectColumnValuesToBeBetween(column="bytes", min_value=1, row_condition=accepted),
        # No reason on an accepted row. Not `value_set=[""]`: Data Docs render the empty
        # string as nothing ("values must belong to this set: .").
        expect.ExpectColumnValueLengthsToEqual(column="reason", value=0, row_condition=accepted),
    ]:
        suite.add_expectation(exp)
    return suite


def _contents_suite(gx: Any) -> Any:
    expect = gx.expectations
    suite = gx.ExpectationSuite(name="accepted_contents")
    # Leakage: the same bytes under two labels would teach the model both answers.
    suite.add_expectation(expect.ExpectColumnValuesToBeUnique(column="sha256"))
    suite.add_expectation(expect.ExpectColumnValuesToBeBetween(column="labels", max_value=1))
    return suite


def _near_duplicates_suite(gx: Any) -> Any:
    suite = gx.ExpectationSuite(name="near_duplicates")
    # Copies of one picture filed under two classes: the Data Docs list each such group
    # (its members as "class: path", classes separated by " | "). Listed, not fatal.
    suite.add_expectation(
        gx.expectations.ExpectColumnValuesToNotMatchRegex(column="members", regex=r" \| ")
    )
    return suite


def near_duplicate_table(manifest: pd.DataFrame) -> pd.DataFrame:
    """One row per group of two or more accepted images: `members`, its files by class."""
    acc = manifest[manifest["status"] == "accepted"]
    rows = []
    for group, frame in acc.groupby("group", sort=True):
        if len(frame) < 2:
            continue
        by_class = frame.groupby("label")["path"].apply(lambda p: ", ".join(sorted(p)))
        members = " | ".join(f"{label}: {paths}" for label, paths in by_class.items())
        rows.append({"group": group, "members": members})
    return pd.DataFrame(rows, columns=["group", "members"])


def _classes_suite(gx: Any, params: ValidateParams) -> Any:
    expect = gx.expectations
    suite = gx.ExpectationSuite(name="classes")
    suite.add_expectation(expect.ExpectTableRowCountToBeBetween(min_value=2))
    suite.add_expectation(
        expect.ExpectColumnValuesToBeBetween(column="images", min_value=params.min_images_per_class)
    )
    suite.add_expectation(
        expect.ExpectColumnValuesToBeBetween(
            column="ratio_to_smallest", max_value=params.max_class_imbalance
        )
    )
    return suite


# What each suite's table is, as Data Docs name its data asset.
ASSETS = {
    "manifest": "manifest.csv (one row per file)",
    "accepted_contents": "manifest.csv's accepted rows, one per sha256",
    "classes": "manifest.csv's accepted rows, one per class",
    "near_duplicates": "manifest.csv's near-duplicate groups, one per group of two or more",
}


def derived_tables(manifest: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(contents, classes) tables of the accepted rows, the inputs of the other two suites."""
    acc = manifest[manifest["status"] == "accepted"]
    contents = acc.groupby("sha256")["label"].nunique().rename("labels").reset_index()
    classes = acc.groupby("label").size().rename("images").reset_index()
    smallest = max(int(classes["images"].min()), 1) if len(classes) else 1
    classes["ratio_to_smallest"] = classes["images"] / smallest
    return contents, classes


def _describe(result: Any) -> list[str]:
    failed = []
    for r in result.results:
        if r.success:
            continue
        cfg = r.expectation_config
        kwargs = {k: v for k, v in cfg.kwargs.items() if k not in ("batch_id", "row_condition")}
        sample = (r.result or {}).get("partial_unexpected_list") or []
        text = f"{cfg.type}({', '.join(f'{k}={v}' for k, v in kwargs.items())})"
        failed.append(text + (f": unexpected {sample[:5]}" if sample else ""))
    return failed


def run_suites(
    manifest: pd.DataFrame,
    params: ValidateParams,
    classes: list[str],
    docs_dir: Path,
    run_name: str | None = None,
) -> list[SuiteOutcome]:
    """Run the four suites through checkpoints and build Data Docs into `docs_dir`.

    Args:
        manifest: The manifest (columns `COLUMNS`; empty strings, not NaN).
        params: The `validate` section (thresholds).
        classes: The class names the accepted labels must belong to.
        docs_dir: Where the static Data Docs site goes (`index.html` at its top).
        run_name: The run's name in Data Docs: the data version it validated
            (`bakeoff.lineage.data_version`); None: "data" with the run's time.

    Returns:
        One outcome per suite.
    """
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")  # offline machine: no telemetry
    import great_expectations as gx
    from great_expectations.core.run_identifier import RunIdentifier
    from great_expectations.data_context.types.base import ProgressBarsConfig

    context = gx.get_context(mode="ephemeral")
    # Our own tqdm bar shows the scan; GE's per-metric bars would only add noise.
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    context.add_data_docs_site(
        site_name="bakeoff",
        site_config={
            "class_name": "SiteBuilder",
            "store_backend": {
                "class_name": "TupleFilesystemStoreBackend",
                "base_directory": str(docs_dir),
            },
            "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
        },
    )
    source = context.data_sources.add_pandas("bakeoff")
    contents, class_table = derived_tables(manifest)
    tables = [
        (_manifest_suite(gx, params, classes), manifest),
        (_contents_suite(gx), contents),
        (_classes_suite(gx, params), class_table),
        (_near_duplicates_suite(gx), near_duplicate_table(manifest)),
    ]
    run_id = RunIdentifier(run_name=run_name or "data", run_time=_now())
    outcomes = []
    for suite, frame in tables:
        suite = context.suites.add(suite)
        batch = source.add_dataframe_asset(suite.name).add_batch_definition_whole_dataframe("all")
        definition = context.validation_definitions.add(
            gx.ValidationDefinition(name=suite.name, data=batch, suite=suite)
        )
        checkpoint = context.checkpoints.add(
            gx.Checkpoint(
                name=suite.name,
                validation_definitions=[definition],
                result_format="SUMMARY",
            )
        )
        run = checkpoint.run(batch_parameters={"dataframe": frame}, run_id=run_id)
        for key, result in run.run_results.items():
            _name_asset(context, key, result, ASSETS[suite.name])
            outcomes.append(
                SuiteOutcome(
                    suite.name, bool(result.success), len(result.results), _describe(result)
                )
            )
    context.build_data_docs(site_names=["bakeoff"])  # every stored result, renamed assets too
    make_offline(docs_dir)  # GE's pages load their CSS and JS from CDNs
    return outcomes


def _now():
    import datetime

    return datetime.datetime.now(datetime.UTC)


def _name_asset(context: Any, key: Any, result: Any, name: str) -> None:
    """Store the result again with its data asset named: a dataframe batch's spec has no
    asset name, so Data Docs would show "Data asset: None"."""
    spec = dict(result.meta.get("batch_spec") or {})
    spec["data_asset_name"] = name
    result.meta["batch_spec"] = spec
    context.validation_results_store.set(key, result)
