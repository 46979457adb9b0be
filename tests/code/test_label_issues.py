"""Probable label errors: cleanlab on the out-of-fold probabilities, the CSV, the report."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bakeoff.report.label_issues import COLUMNS, check_labels
from bakeoff.report.stage import report
from tests.code.test_report import (
    CLASSES,
    N_TEST,
    SPECS,
    make_inputs,
    shrunk_params,
    with_training_runs,
)

# Images filed under the wrong class: every backbone's out-of-fold head says otherwise.
FLIPPED = (7, 40, 91, 150, 222, 281)


def _oof(root: Path, name: str, sure: float) -> pd.DataFrame:
    """plots/<name>/oof.csv for the report fixture's 300 images: the true class gets `sure`,
    except a few uncertain ones; the FLIPPED images are filed one class off."""
    rows = []
    for i in range(N_TEST):
        true = i % 3
        given = (true + 1) % 3 if i in FLIPPED else true
        p = np.full(3, (1 - sure) / 2)
        p[true] = sure
        if i % 25 == 3:  # hard images: the model hesitates, but the label is right
            p = np.array([0.34, 0.33, 0.33])
            p[true], p[(true + 1) % 3] = 0.4, 0.27
        cls = CLASSES[true]
        rows.append({"path": f"{cls}/{cls}_{i:03d}.png", "label": CLASSES[given],
                     "fold": i % 5, "predicted": CLASSES[int(p.argmax())],
                     **{f"p_{c}": float(v) for c, v in zip(CLASSES, p, strict=True)}})  # fmt: skip
    frame = pd.DataFrame(rows)
    frame.to_csv(root / "plots" / name / "oof.csv", index=False)
    return frame


def add_label_check_inputs(root: Path, metrics: dict[str, dict]) -> None:
    """Cross-validation for Big and Small (oof.csv with probabilities, the cv metrics), and
    reports/validation.json with one near-duplicate group spanning two classes."""
    for name, sure in (("Big", 0.9), ("Small", 0.8)):
        oof = _oof(root, name, sure)
        right = float((oof["label"] == oof["predicted"]).mean())
        metrics[name] |= {"cv_accuracy": right, "cv_macro_f1": right, "cv_n": N_TEST,
                          "cv_interval": [right - 0.03, right + 0.02], "cv_folds": 5}  # fmt: skip
        (root / "metrics" / f"{name}.json").write_text(json.dumps(metrics[name]))
    metrics["Bad"]["cv_off_reason"] = "train.weights is none: no feature cache"
    (root / "metrics" / "Bad.json").write_text(json.dumps(metrics["Bad"]))
    group = {"paths": ["bag/bag_000.png", "coat/coat_001.png"], "labels": ["bag", "coat"],
             "label_conflict": True}  # fmt: skip
    near = {"distance": 6, "groups": 2, "images": 4, "largest": 2, "label_conflicts": 1,
            "list": [group, {"paths": ["bag/bag_003.png", "bag/bag_006.png"],
                             "labels": ["bag", "bag"], "label_conflict": False}]}  # fmt: skip
    (root / "reports" / "validation.json").write_text(json.dumps({"near_duplicates": near}))


def checked_report(root: Path) -> Path:
    """The report fixture with cross-validation and a near-duplicate conflict; its HTML."""
    metrics = make_inputs(root)
    add_label_check_inputs(root, metrics)
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("MLFLOW_TRACKING_URI", raising=False)
        params = shrunk_params()
        with_training_runs(params, root, metrics)
        return report(
            params.report, list(SPECS), root / "metrics", root / "models", root / "reports",
            tracking_params=params.tracking, root=root,
        )  # fmt: skip


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
        return _oof(Path(tmp), "X", sure)


def test_no_out_of_fold_predictions_no_check_and_the_report_says_why(tmp_path):
    metrics = make_inputs(tmp_path, scratch=True)
    for name in SPECS:
        metrics[name]["cv_off_reason"] = "train.weights is none: no feature cache"
        (tmp_path / "metrics" / f"{name}.json").write_text(json.dumps(metrics[name]))
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("MLFLOW_TRACKING_URI", raising=False)
        params = shrunk_params()
        with_training_runs(params, tmp_path, metrics)
        html = report(
            params.report, list(SPECS), tmp_path / "metrics", tmp_path / "models",
            tmp_path / "reports", tracking_params=params.tracking, root=tmp_path,
        )  # fmt: skip
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
