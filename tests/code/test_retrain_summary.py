"""What a retrain tells a person: registry descriptions, tags, the Prefect headline and table."""

from __future__ import annotations

import json

import pytest

from bakeoff.register.description import retrain_headline, rounded, version_description
from bakeoff.retrain_summary import MlflowLinks, outcome, retrain_summary_markdown, run_name

TEST = {
    "metric": "accuracy", "n": 600, "challenger": 0.912, "champion": 0.874,
    "difference": 0.038, "lower_bound": 0.021, "confidence": 0.95,
    "interval": [0.015, 0.06], "mcnemar_p": 0.002,
}  # fmt: skip
CANDIDATE = {"backbone": "MobileNet", "seed": 42, "test_accuracy": 0.912, "run_id": "r1"}


def test_registry_tags_are_rounded_to_four_significant_digits():
    assert rounded(0.8565457912345) == "0.8565"
    assert rounded(1234.5678) == "1235" and rounded(42) == "42" and rounded(None) == "None"


def test_version_descriptions_are_sentences_with_the_numbers_that_decided():
    first = version_description("promoted", CANDIDATE, "test_accuracy", None, None, 0.0)
    assert first == (
        "First champion: MobileNet seed 42, test accuracy 0.912; no earlier version to "
        "compare with."
    )
    won = version_description("promoted", CANDIDATE, "test_accuracy", "3", TEST, 0.0)
    assert won.startswith("Promoted to champion: MobileNet seed 42, test accuracy 0.912 vs ")
    assert "champion v3 0.874 on the same 600 test images" in won
    assert "95% lower bound of the gain +0.021 > 0.000" in won
    kept = version_description("challenger", CANDIDATE, "test_accuracy", "3", TEST, 0.05)
    assert kept.startswith("Kept as challenger: MobileNet seed 42")
    assert "does not exceed 0.050" in kept and kept.endswith("champion v3 stays.")


def _report(decision, **extra):
    return {
        "decision": decision, "reason": "why", "model_name": "image-classifier",
        "version": "2", "backbone": "MobileNet", "metric": "val_accuracy",
        "compared_on": "test_accuracy", "candidate": CANDIDATE,
        "champion": {"backbone": "SimpleCNN", "version": "1", "test_accuracy": 0.874},
        "paired_test": TEST, **extra,
    }  # fmt: skip


def test_the_headline_leads_with_what_happened():
    kept = _report("challenger", paired_test=TEST | {"difference": 0.0})
    assert retrain_headline(kept) == (
        "Champion kept: v1 SimpleCNN 0.874; v2 MobileNet registered as challenger (gain +0.000)"
    )
    assert retrain_headline(_report("promoted")) == (
        "New champion: v2 MobileNet 0.912 replaces v1 SimpleCNN 0.874 (gain +0.038)"
    )
    first = _report("promoted", champion={}, paired_test=None)
    assert retrain_headline(first) == "First champion: v2 MobileNet 0.912"
    assert retrain_headline(_report("none", reason="no eligible: x")).startswith(
        "No model registered: no eligible"
    )


@pytest.mark.parametrize(
    ("decision", "state", "tag"),
    [("promoted", "Promoted", "promoted"), ("challenger", "ChampionKept", "champion-kept"),
     ("rejected", "ChampionKept", "champion-kept"),
     ("none", "NothingRegistered", "nothing-registered")],
)  # fmt: skip
def test_each_decision_ends_in_its_own_named_state_and_tag(decision, state, tag):
    assert outcome(decision) == (state, tag)
    with pytest.raises(ValueError, match="unknown register decision"):
        outcome("maybe")


def test_run_names_say_the_date_and_when_forced():
    assert run_name("2026-11-29-0300", False) == "retrain-2026-11-29-0300"
    assert run_name("2026-11-29-0300", True) == "retrain-2026-11-29-0300-forced"


def test_the_artifact_marks_the_chosen_backbone_and_the_champion_and_links_mlflow(tmp_path):
    metrics = tmp_path / "metrics"
    metrics.mkdir()
    for name, acc in (("SimpleCNN", 0.874), ("MobileNet", 0.91234)):
        (metrics / f"{name}.json").write_text(json.dumps({
            "test_accuracy": acc, "test_macro_f1": 0.9, "val_accuracy": 0.88,
            "size_mb": 1.5, "latency_ms_b1": 2.25}))  # fmt: skip
    register = tmp_path / "register.json"
    register.write_text(json.dumps(_report("challenger", description="Kept as challenger: x.")))
    links = MlflowLinks("http://127.0.0.1:5000", "7", "http://x/runs", "start it: `make ui`")
    md = retrain_summary_markdown(
        "abc123", ["SimpleCNN", "MobileNet", "VGG16"], metrics, register, links
    )
    assert md.startswith("# Champion kept: v1 SimpleCNN 0.874; v2 MobileNet registered")
    assert "`abc123`" in md and "Kept as challenger: x." in md and "**Why:** why" in md
    assert "| **MobileNet** | chosen: v2 challenger | 0.9123 | 0.9 | 0.88 | 1.5 | 2.25 |" in md
    assert "| **SimpleCNN** | champion v1 | 0.874 |" in md
    assert "| VGG16 |  | no metrics |" in md
    assert "[all runs](http://x/runs)" in md and "(start it: `make ui`)" in md
    assert "(http://127.0.0.1:5000/#/experiments/7/runs/r1)" in md
    assert "[image-classifier v2](http://127.0.0.1:5000/#/models/image-classifier/versions/2)" in md
