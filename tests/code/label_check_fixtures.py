"""Report inputs with a label check: out-of-fold probabilities with a few images filed under
the wrong class, and a near-duplicate group spanning two classes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.code.report_fixtures import (
    CLASSES,
    N_TEST,
    make_inputs,
    run_report,
    shrunk_params,
    with_training_runs,
)

# Images filed under the wrong class: every backbone's out-of-fold head says otherwise.
FLIPPED = (7, 40, 91, 150, 222, 281)


def oof_csv(root: Path, name: str, sure: float) -> pd.DataFrame:
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
        oof = oof_csv(root, name, sure)
        right = float((oof["label"] == oof["predicted"]).mean())
        metrics[name] |= {"cv_accuracy": right, "cv_macro_f1": right, "cv_n": N_TEST,
                          "cv_folds": 5}  # fmt: skip
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
        return run_report(params, root)
