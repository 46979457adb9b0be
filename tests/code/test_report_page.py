"""The report's sentences and figures on hand-made cases: the TFLite pick, the champion,
the epoch-cap warning and the Pareto line."""

from __future__ import annotations

from bakeoff.export.choice import pick_variant
from bakeoff.report.context import champion
from bakeoff.report.render import export_section
from bakeoff.report.trained import still_improving


def _variant(name: str, size: float, latency: float, ok: bool = True) -> dict:
    return {"variant": name, "test_accuracy": 0.85, "accuracy_change": 0.0, "agreement": 1.0,
            "size_mb": size, "latency_ms_b1": latency, "input_dtype": "float32",
            "recommended": ok, "note": "" if ok else "not recommended: loses 0.0500"}  # fmt: skip


# The demo's export: dynamic_range and int8 both 0.31 MB, int8 the faster.
VARIANTS = [
    _variant("float32", 1.161, 0.767), _variant("float16", 0.588, 0.770),
    _variant("dynamic_range", 0.3055, 0.2115), _variant("int8", 0.3098, 0.2040),
]  # fmt: skip
EXPORT = {"backbone": "SimpleCNN", "source": "champion: image-classifier version 1",
          "version": "1", "image_size": 32, "n_test": 600, "threads": 1,
          "max_accuracy_drop": 0.02, "keras": {"test_accuracy": 0.85, "size_mb": 1.26},
          "variants": VARIANTS, "pick": "dynamic_range"}  # fmt: skip


def test_one_tflite_variant_is_recommended_and_a_size_tie_goes_to_the_faster():
    assert pick_variant(VARIANTS)["variant"] == "int8"
    section = export_section(EXPORT, "1")
    verdicts = {row[0]: row[-1] for row in section["rows"]}
    assert [v for v in verdicts.values() if v == "recommended"] == ["recommended"]
    assert verdicts["int8"] == "recommended"
    assert verdicts["dynamic_range"] == "accuracy kept; as small, not faster"
    assert verdicts["float32"] == "accuracy kept; 3.7x larger"
    assert section["notes"][0].startswith("Recommended: the smallest variant")
    assert "a tie goes to the faster" in section["notes"][0]
    # A variant that loses too much is never the pick, however small.
    small_but_bad = [*VARIANTS, _variant("tiny", 0.1, 0.1, ok=False)]
    assert pick_variant(small_but_bad)["variant"] == "int8"
    assert pick_variant([_variant("x", 1.0, 1.0, ok=False)]) is None


def test_champion_sentence_states_the_decision_once():
    register = {
        "decision": "promoted", "reason": "no champion yet: promoted",
        "model_name": "image-classifier", "version": "1", "backbone": "SimpleCNN",
    }  # fmt: skip
    name, version, text = champion(register)
    assert (name, version) == ("SimpleCNN", "1")
    assert text == (
        "SimpleCNN (image-classifier version 1). Last register decision: promoted, no champion yet."
    )
    assert text.count("promoted") == 1


def test_a_training_still_improving_at_its_epoch_cap_is_flagged():
    scratch = {"weights": "none", "params": {"epochs": 12}}
    head = {"weights": "imagenet", "params": {"cache_features": True, "head_epochs": 500}}
    trains = {
        "A": scratch | {"epochs_run": 12, "best_epoch": 12},
        "B": scratch | {"epochs_run": 12, "best_epoch": 9},
        "C": head | {"epochs_run": 500, "best_epoch": 500},
    }
    assert still_improving(trains) == (
        "Still improving at the epoch cap (best epoch = last epoch): A (12 of 12): raise "
        "`train.epochs`; C (500 of 500): raise `train.head_epochs`."
    )
    assert still_improving({"B": trains["B"]}) == ""


def test_pareto_line_and_its_legend_only_with_two_or_more_points(tmp_path, monkeypatch):
    import matplotlib.figure
    import pandas as pd

    from bakeoff.report.figures import accuracy_vs_latency

    drawn = []
    monkeypatch.setattr(matplotlib.figure.Figure, "savefig", lambda fig, *a, **k: drawn.append(fig))
    table = pd.DataFrame(
        {"test_accuracy": [0.85, 0.70, 0.66], "ci_low": [0.82, 0.67, 0.62],
         "ci_high": [0.88, 0.74, 0.70], "latency_ms_b1": [1.7, 8.2, 3.6],
         "params": [290_000, 14_700_000, 3_200_000]},
        index=["SimpleCNN", "VGG16", "MobileNet"],
    )  # fmt: skip
    accuracy_vs_latency(table, ["SimpleCNN"], tmp_path / "one.png")
    accuracy_vs_latency(table.iloc[1:], ["MobileNet", "VGG16"], tmp_path / "two.png")
    one, two = (fig.axes[0] for fig in drawn)

    def front_lines(ax) -> list:
        return [line for line in ax.get_lines() if line.get_label() == "Pareto front"]

    assert one.get_legend() is None and not front_lines(one)
    assert [t.get_text() for t in two.get_legend().get_texts()] == ["Pareto front"]
    assert len(front_lines(two)) == 1


def test_with_cross_validation_the_figure_plots_what_decides(tmp_path, monkeypatch):
    """The recommendation decides on cross-validated accuracy: so does the figure, with its
    interval, and its Pareto front is on that accuracy."""
    import matplotlib.figure
    import numpy as np
    import pandas as pd

    from bakeoff.report.figures import accuracy_vs_latency

    drawn = []
    monkeypatch.setattr(matplotlib.figure.Figure, "savefig", lambda fig, *a, **k: drawn.append(fig))
    table = pd.DataFrame(
        {"test_accuracy": [0.90, 0.70], "ci_low": [0.80, 0.60], "ci_high": [0.95, 0.80],
         "cv_accuracy": [0.81, 0.86], "cv_ci_low": [0.79, 0.84], "cv_ci_high": [0.83, 0.88],
         "latency_ms_b1": [2.0, 8.0], "params": [1_000, 2_000]},
        index=["Fast", "Slow"],
    )  # fmt: skip
    accuracy_vs_latency(table, ["Fast", "Slow"], tmp_path / "cv.png", "cv")
    [ax] = drawn[0].axes
    points = np.asarray(ax.collections[-1].get_offsets())  # the bubbles
    assert points[:, 1].tolist() == [0.81, 0.86]
    assert ax.get_ylabel() == "cross-validated accuracy"
    low, high = ax.containers[0].lines[2][0].get_segments()[0][:, 1]  # Fast's error bar
    assert (round(low, 2), round(high, 2)) == (0.79, 0.83)
