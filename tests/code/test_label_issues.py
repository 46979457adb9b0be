"""Probable label errors: cleanlab on the out-of-fold probabilities, the CSV, the report."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pandas as pd
import pytest

from bakeoff.report.label_issues import COLUMNS, check_labels
from tests.code.label_check_fixtures import FLIPPED, checked_report, oof_csv
from tests.code.report_fixtures import (
    CLASSES,
    N_TEST,
    SPECS,
    make_inputs,
    run_report,
    shrunk_params,
    with_training_runs,
)


@pytest.fixture(scope="module")
def checked(tmp_path_factory) -> Path:
    return checked_report(tmp_path_factory.mktemp("checked"))


def test_label_issues_csv_ranks_the_flipped_images_first(checked):
    with open(checked.parent / "label_issues.csv", newline="") as fh:
        reader = csv.DictReader(fh)
        rows = list(reader)
    assert reader.fieldnames == COLUMNS
    flipped = {f"{CLASSES[i % 3]}/{CLASSES[i % 3]}_{i:03d}.png" for i in FLIPPED}
    assert {r["path"] for r in rows[: len(FLIPPED)]} == flipped
    assert [int(r["rank"]) for r in rows] == list(range(1, len(rows) + 1))
    scores = [float(r["score"]) for r in rows]
    assert scores == sorted(scores)  # the most likely wrong (lowest label quality) first
    top = rows[0]
    i = int(top["path"][-7:-4])
    assert (top["given"], top["suggested"]) == (CLASSES[(i + 1) % 3], CLASSES[i % 3])


def test_the_report_shows_the_count_and_the_gallery_near_the_top(checked):
    md = (checked.parent / "comparison.md").read_text()
    n = len(pd.read_csv(checked.parent / "label_issues.csv"))
    section = md.split("## Your folder's own problems")[1].split("## Mistakes of")[0]
    assert f"**{n} of {N_TEST} images look mislabelled (reports/label_issues.csv).**" in section
    assert "on Small's out-of-fold probabilities" in section  # the recommendation's
    assert "**1 near-duplicate group(s) span classes" in section
    assert "- bag/bag_000.png (bag), coat/coat_001.png (coat)" in section
    assert md.index("## Your folder's own problems") < md.index("## Per-class test accuracy")
    html = checked.read_text()
    assert f"{n} of {N_TEST} images look mislabelled" in html
    assert html.count("<figcaption>1. given: ") == 1
    assert 'alt="coat/coat_001.png"' in html


def test_the_count_is_logged_to_the_report_run_with_the_csv(checked):
    from mlflow import MlflowClient

    root = checked.parent.parent
    client = MlflowClient(f"sqlite:///{root}/mlruns/mlflow.db")
    runs = client.search_runs(
        [e.experiment_id for e in client.search_experiments()], "tags.stage = 'report'"
    )
    assert len(runs) == 1
    n = len(pd.read_csv(checked.parent / "label_issues.csv"))
    assert runs[0].data.metrics["label_issues"] == n
    files = [a.path for a in client.list_artifacts(runs[0].info.run_id, "report")]
    assert "report/label_issues.csv" in files


def test_the_mean_over_the_backbones_when_asked():
    frame = _oof_frame(0.9)
    check = check_labels({"A": frame, "B": frame}, CLASSES, "A", None, how="mean")
    assert check.source == "the mean of the out-of-fold probabilities of A, B"
    assert check.checked == N_TEST and len(check.issues) >= len(FLIPPED)


def _oof_frame(sure: float) -> pd.DataFrame:
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "plots" / "X").mkdir(parents=True)
        return oof_csv(Path(tmp), "X", sure)


def test_no_out_of_fold_predictions_no_check_and_the_report_says_why(tmp_path):
    metrics = make_inputs(tmp_path, scratch=True)
    for name in SPECS:
        metrics[name]["cv_off_reason"] = "train.weights is none: no feature cache"
        (tmp_path / "metrics" / f"{name}.json").write_text(json.dumps(metrics[name]))
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("MLFLOW_TRACKING_URI", raising=False)
        params = shrunk_params()
        with_training_runs(params, tmp_path, metrics)
        html = run_report(params, tmp_path)
    why = "No label check: no out-of-fold predictions (train.weights is none: no feature cache)."
    assert f"**{why}**" in (tmp_path / "reports/comparison.md").read_text()
    assert why in html.read_text()
    # DVC tracks the file: it exists, with its header and no rows.
    assert (tmp_path / "reports/label_issues.csv").read_text() == ",".join(COLUMNS) + "\n"


def test_out_of_fold_predictions_without_probabilities_say_to_rerun_evaluate():
    frame = _oof_frame(0.9)[["path", "label", "fold", "predicted"]]
    check = check_labels({"A": frame}, CLASSES, "A", None)
    assert check.reason and "re-run `bakeoff evaluate`" in check.reason
    assert check.issues.empty
