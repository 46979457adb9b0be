"""The comparison report on hand-made, consistent inputs with known answers."""

from __future__ import annotations

import base64
import io
import json
import re

import numpy as np
import pandas as pd
import pytest

from bakeoff.errors import BakeoffError
from bakeoff.report.pick import Candidate, pareto_front, pick
from bakeoff.report.stats import bootstrap_interval
from tests.code.report_fixtures import (
    EXPORT,
    SPECS,
    make_inputs,
    run_report,
    shrunk_params,
    with_training_runs,
)


@pytest.fixture(scope="module")
def report_params():
    return shrunk_params()


@pytest.fixture(scope="module")
def made(tmp_path_factory, report_params):
    """One report over the hand-made inputs, logged to a fresh MLflow store (module-wide:
    creating an MLflow store takes seconds)."""
    root = tmp_path_factory.mktemp("project")
    metrics = make_inputs(root)
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("MLFLOW_TRACKING_URI", raising=False)  # the store under root: mlruns/
        with_training_runs(report_params, root, metrics)
        html = run_report(report_params, root)
        yield root, metrics, html


def _table(md: str, title: str = "## Results") -> dict[str, dict[str, str]]:
    """The first markdown table after the line `title`, by its first column."""
    lines = md.split(title + "\n", 1)[1].strip().splitlines()
    rows = lines[: next((i for i, line in enumerate(lines) if not line.startswith("|")), None)]
    rows = [line for line in rows if line.startswith("| ")]
    header = [c.strip() for c in rows[0].strip("|").split("|")]
    return {
        cells[0]: dict(zip(header, cells, strict=True))
        for cells in ([c.strip() for c in r.strip("|").split("|")] for r in rows[1:])
    }


def test_table_numbers_equal_the_metrics_files(made):
    root, metrics, _ = made
    md = (root / "reports" / "comparison.md").read_text()
    main, details = _table(md), _table(md, "## Details")
    table = {name: main[name] | details[name] for name in main}
    assert set(main) == set(details) == set(SPECS)
    for name, m in metrics.items():
        row = table[name]
        assert float(row["Test accuracy"]) == round(m["test_accuracy"], 4)
        assert float(row["Macro-F1"]) == round(m["test_macro_f1"], 4)
        assert float(row["Latency b1 (ms)"]) == m["latency_ms_b1"]
        assert float(row["Latency b32 (ms/img)"]) == m["latency_ms_b32"]
        assert float(row["Throughput (img/s)"]) == round(m["throughput_ips"], 1)
        assert int(row["Parameters"].replace(",", "")) == m["params"]
        assert float(row["Size (MB)"]) == m["size_mb"]
        assert float(row["Training (s)"]) == round(m["train_seconds"], 1)
        low, high = map(float, re.findall(r"[\d.]+", row["95% interval"]))
        assert low <= m["test_accuracy"] <= high
        assert high - low < 0.2
    # The data `dvc plots show` draws is the same, unrounded.
    data = pd.read_csv(root / "reports" / "comparison.csv", index_col="backbone")
    for name, m in metrics.items():
        for key in ("test_accuracy", "latency_ms_b1", "size_mb", "params"):
            assert data.loc[name, key] == m[key]


def test_recommends_the_faster_tied_backbone_not_the_worse_one(made):
    root, _, _ = made
    md = (root / "reports" / "comparison.md").read_text()
    assert "**Recommendation: Small.**" in md
    assert "Small is 0.0100 below Big, within the interval" in md
    assert "10x faster and 33x smaller" in md
    assert "Recommendation: Bad" not in md
    assert "Champion** (reports/register.json): Big (image-classifier version 1" in md


def test_table_shows_seeds_spread_and_default_vs_tuned_val_accuracy(made):
    md = (made[0] / "reports" / "comparison.md").read_text()
    assert "| Test acc. over seeds | Val acc. default head | Val acc. tuned head |" in md
    row = {line.split(" | ")[0].lstrip("| "): line for line in md.splitlines() if "|" in line}
    assert "| 0.8950 ± 0.0125 (3) | 0.7800 | 0.8000 |" in row["Big"]
    assert "| 1 seed | - | - |" in row["Bad"], "not tuned without a feature cache"
    assert "paired bootstrap interval of their difference contains 0" in md


def test_seeds_spread_ties_backbones_the_bootstrap_alone_separates():
    from bakeoff.report.stats import tied_by_seeds

    assert tied_by_seeds((0.90, 0.02, 3), (0.87, 0.015, 3))
    assert not tied_by_seeds((0.90, 0.01, 3), (0.87, 0.01, 3))
    assert not tied_by_seeds((0.90, 0.02, 3), (0.89, 0.0, 1)), "one seed measures no spread"
    candidates = [Candidate("A", 0.90, 50.0, 100.0), Candidate("B", 0.87, 5.0, 10.0)]
    name, reason = pick(candidates, {"B": (0.03, 0.01, 0.05)})
    assert name == "B" and "within the seeds' spread" in reason


def test_pareto_front_and_budgets_in_the_report(made):
    md = (made[0] / "reports" / "comparison.md").read_text()
    assert "(fastest first): Bad, Small, Big" in md
    assert "- edge (latency <= 10 ms, size <= 20 MB): Small, Bad; most accurate: Small" in md
    assert "- tiny (latency no limit, size <= 10 MB): Bad; most accurate: Bad" in md
    assert "- server (latency <= 100 ms, size no limit): Big, Small, Bad; most accurate: Big" in md


def test_html_is_self_contained_with_the_figures(made):
    root, _, html = made
    assert html == root / "reports" / "comparison.html"
    text = html.read_text()
    images = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', text)
    assert len(images) == 3
    assert all(base64.b64decode(i).startswith(b"\x89PNG") for i in images)
    assert "Recommendation: Small." in text and "<table>" in text
    figures = sorted(p.name for p in (root / "reports" / "figures").iterdir())
    assert figures == ["accuracy_vs_latency.png", "champion_confusion.png", "training_curves.png"]


def test_report_is_logged_to_mlflow(made):
    import mlflow

    root = made[0]
    client = mlflow.MlflowClient(f"sqlite:///{root / 'mlruns' / 'mlflow.db'}")
    runs = client.search_runs(
        [e.experiment_id for e in client.search_experiments()], "tags.stage = 'report'"
    )
    assert runs and all(r.info.status == "FINISHED" for r in runs)
    names = {a.path for a in client.list_artifacts(runs[-1].info.run_id, "report")}
    assert "report/comparison.html" in names and "report/accuracy_vs_latency.png" in names
    # Each backbone's interval is on its own run (its row in the UI), as in the report's
    # table; the report run adds no metric columns.
    assert runs[-1].data.metrics == {}
    row = _table((root / "reports" / "comparison.md").read_text())["Small"]
    small = client.get_run(made[1]["Small"]["run_id"]).data.metrics
    interval = f"[{small['test_acc_lo']:.4f}, {small['test_acc_hi']:.4f}]"
    assert interval in row["95% interval"]


def test_report_is_deterministic(report_params, made):
    root = made[0]
    first = (root / "reports" / "comparison.md").read_text()
    run_report(report_params, root)
    assert (root / "reports" / "comparison.md").read_text() == first


def test_bootstrap_interval_is_seeded_and_contains_the_estimate():
    correct = np.r_[np.ones(80), np.zeros(20)]
    a = bootstrap_interval(correct, 1000, 0.95, seed=1)
    assert a == bootstrap_interval(correct, 1000, 0.95, seed=1)
    assert a != bootstrap_interval(correct, 1000, 0.95, seed=2)
    assert a[0] < 0.8 < a[1]
    assert bootstrap_interval(correct, 1000, 0.50, seed=1)[1] < a[1]


def test_pareto_front_on_a_hand_made_case():
    points = {
        "fast": (0.70, 1.0),
        "mid": (0.85, 5.0),
        "dominated": (0.80, 6.0),  # mid is more accurate and faster
        "slow_best": (0.90, 40.0),
        "slow_worse": (0.90, 50.0),  # same accuracy as slow_best, slower
    }
    assert pareto_front(points) == ["fast", "mid", "slow_best"]


def test_missing_metrics_is_a_clear_error(tmp_path, report_params):
    make_inputs(tmp_path)
    (tmp_path / "metrics" / "Small.json").unlink()
    with pytest.raises(BakeoffError, match=r"metrics/Small\.json.*bakeoff evaluate Small"):
        run_report(report_params, tmp_path)
    assert not (tmp_path / "reports" / "comparison.html").exists()


def test_incomplete_metrics_is_a_clear_error(tmp_path, report_params):
    make_inputs(tmp_path)
    path = tmp_path / "metrics" / "Big.json"
    metrics = json.loads(path.read_text())
    del metrics["latency_ms_b1"]
    path.write_text(json.dumps(metrics))
    with pytest.raises(BakeoffError, match=r"Big\.json lacks latency_ms_b1.*bakeoff evaluate Big"):
        run_report(report_params, tmp_path)


def test_recommendation_keeps_the_best_when_no_tied_backbone_is_faster():
    candidates = [Candidate("A", 0.90, 5.0, 10.0), Candidate("B", 0.89, 50.0, 100.0)]
    name, reason = pick(candidates, {"B": (0.01, -0.01, 0.03)})
    assert name == "A" and "tied with it (B) are not faster" in reason
    name, reason = pick(candidates, {})
    assert name == "A" and "no other backbone is statistically tied" in reason


def test_the_tflite_export_table_and_its_verdicts(made):
    root, _, html = made
    md = (root / "reports" / "comparison.md").read_text()
    title = "## Mobile export (TFLite): Big (champion: image-classifier version 1)"
    table = _table(md, title)
    assert list(table) == ["float32", "float16", "int8", "Keras (reference)"]
    assert table["float16"]["Change vs Keras"] == "-0.1000"
    assert table["float16"]["Verdict"].startswith("not recommended: loses 0.1000")
    # One variant is recommended: of equal sizes and latencies, the first.
    assert [row["Verdict"] for row in table.values()].count("recommended") == 1
    assert table["float32"]["Verdict"] == "recommended"
    assert table["int8"]["Verdict"] == "accuracy kept; as small, not faster"
    assert table["int8"]["Input"] == "uint8"
    assert table["Keras (reference)"]["Size (MB)"] == "6.00"
    assert "not of the current champion" not in md
    page = html.read_text()
    assert "Mobile export (TFLite)" in page and "not recommended: loses 0.1000" in page


def test_an_export_of_another_model_is_flagged():
    from bakeoff.report.render import export_section

    stale = export_section(EXPORT, champion_version="2")
    assert "not of the current champion (version 2): run `bakeoff export`" in stale["notes"][-1]
    assert export_section(None, "2")["title"].startswith("not run")


def test_report_opens_with_the_decision_and_how_it_was_trained(made):
    md = (made[0] / "reports" / "comparison.md").read_text()
    order = ["**How the backbones were trained:**", "**Recommendation: Small.**",
             "**Champion**", "## Results", "## Mistakes of Small (the recommendation)",
             "## Mistakes of Big (the champion)", "## Per-class test accuracy", "## Details",
             "## Mobile export"]  # fmt: skip
    positions = [md.index(heading) for heading in order]
    assert positions == sorted(positions)
    how = md.split("\n")[2]
    assert "Big, Small: ImageNet weights, 224 px, no augmentation, frozen base" in how
    assert "head tuned with 20 trials" in how
    assert "Bad: from scratch (random initial weights), 32 px, augmentation on" in how
    assert "from-scratch question" not in md, "the recommendation (Small) is pretrained"
    # At most 7 columns in the main table; no cross-validation in this run: no CV column.
    assert len(_table(md)["Small"]) <= 7 and "CV" not in md.split("## Results")[1][:400]


def test_mistakes_are_thumbnails_most_confident_first(made):
    page = (made[0] / "reports" / "comparison.html").read_text()
    small = page.split("Mistakes of Small")[1].split("Mistakes of Big")[0]
    assert "24 of its 33 misclassified test images" in small
    thumbs = re.findall(r'<img src="data:image/jpeg;base64,([A-Za-z0-9+/=]+)" alt="([^"]+)"', small)
    assert len(thumbs) == 24
    from PIL import Image

    first = Image.open(io.BytesIO(base64.b64decode(thumbs[0][0])))
    assert first.format == "JPEG" and first.size == (40, 30), "never enlarged"
    assert thumbs[0][1] == "shirt/shirt_299.png"  # confidence 0.89, the highest
    confidences = [float(c) for c in re.findall(r"confidence (0\.\d+)", small)]
    assert confidences == sorted(confidences, reverse=True) and confidences[0] == 0.89
    assert 'true: <span class="cls" title="shirt">shirt</span><br>' in small
    assert '<span class="pred">predicted: <span class="cls" title="bag">bag</span>' in small
    assert "30 misclassified" in page.split("Mistakes of Big")[1]


def test_per_class_accuracy_is_a_heat_map(made):
    from bakeoff.report.per_class import colour

    md = (made[0] / "reports" / "comparison.md").read_text()
    table = _table(md, "## Per-class test accuracy")
    assert table["coat"] == {"Class": "coat", "Test images": "100", "Big": "0.9000",
                             "Small": "0.8900", "Bad": "0.6000"}  # fmt: skip
    page = (made[0] / "reports" / "comparison.html").read_text()
    row = re.search(r"<tr><td>coat</td><td>100</td>(.*?)</tr>", page, re.S).group(1)
    cells = re.findall(r'background:(#[0-9a-f]{6})">([\d.]+)<', row)
    assert cells == [(colour(0.9, 0.6, 0.9), "0.9000"), (colour(0.89, 0.6, 0.9), "0.8900"),
                     (colour(0.6, 0.6, 0.9), "0.6000")]  # fmt: skip
    assert colour(0.6, 0.6, 0.9) == "#f4a582" and colour(0.9, 0.6, 0.9) == "#91cf60"


def test_cross_validation_columns_are_shown_when_evaluate_wrote_them(report_params):
    from types import SimpleNamespace

    from bakeoff.report.context import definitions
    from bakeoff.report.settings import ReportSettings
    from bakeoff.report.table import build_table, sections

    def right_of(k: int, n: int) -> np.ndarray:
        return (np.arange(n) < k).astype(float)

    def stats(p) -> tuple:
        return p.bootstrap, p.report.confidence, p.seed

    def backbone(cv: dict) -> SimpleNamespace:
        metrics = {"test_accuracy": 0.9, "test_macro_f1": 0.89, "latency_ms_b1": 5.0,
                   "latency_ms_b32": 1.0, "throughput_ips": 900.0, "params": 1000,
                   "size_mb": 1.0, "train_seconds": 10.0, "test_accuracy_mean": 0.9,
                   "test_accuracy_std": 0.0, "n_seeds": 1}  # fmt: skip
        oof = None
        if cv.get("cv_n"):  # 273 of 300 out-of-fold predictions right
            right = np.arange(300) < 273
            oof = pd.DataFrame({"label": ["a"] * 300, "predicted": np.where(right, "a", "b")})
        correct = (np.arange(10) < 9).astype(float)
        return SimpleNamespace(metrics=metrics | cv, correct=correct, train={}, oof=oof)

    settings = ReportSettings(
        report_params.report.confidence, report_params.bootstrap, report_params.seed, None
    )
    cv = {"cv_accuracy": 0.91, "cv_n": 300}
    table = build_table(settings, {"A": backbone(cv), "B": backbone({})})
    main = sections(table, "95")["main"]
    assert main["header"][:5] == [
        "Backbone", "CV accuracy", "CV 95% interval", "Test accuracy", "95% interval"
    ]  # fmt: skip
    assert len(main["header"]) == 7
    # Both intervals bootstrapped by the report, at report.confidence, from the per-image results.
    cv_low, cv_high = bootstrap_interval(right_of(273, 300), *stats(report_params))
    low, high = bootstrap_interval(right_of(9, 10), *stats(report_params))
    assert main["rows"][0][:5] == [
        "A", "0.9100", f"[{cv_low:.4f}, {cv_high:.4f}]", "0.9000", f"[{low:.4f}, {high:.4f}]"
    ]  # fmt: skip
    assert cv_low < 273 / 300 < cv_high and cv_high - cv_low < 0.1
    assert main["rows"][1][1:3] == ["-", "-"]
    assert "over all 300 accepted images" in definitions(settings, table, 10)["cv_accuracy"]
    off = {"cv_off_reason": "train.weights is none: no feature cache"}
    table = build_table(settings, {"A": backbone(off), "B": backbone(off)})
    assert "CV accuracy" not in sections(table, "95")["main"]["header"]


def test_missing_or_broken_predictions_say_to_rerun_evaluate(tmp_path, report_params):
    make_inputs(tmp_path)
    predictions = tmp_path / "plots" / "Small" / "predictions.csv"
    text = predictions.read_text()
    predictions.unlink()
    with pytest.raises(BakeoffError, match=r"predictions of Small.*bakeoff evaluate Small"):
        run_report(report_params, tmp_path)
    predictions.write_text(text.replace(",0.1\n", ",high\n", 1))
    with pytest.raises(BakeoffError, match=r"line \d+ is not a prediction.*evaluate Small"):
        run_report(report_params, tmp_path)
    predictions.write_text(text)
    (tmp_path / "data" / "raw" / "shirt" / "shirt_299.png").unlink()  # the top mistake
    with pytest.raises(BakeoffError, match=r"test image .*shirt_299.png is missing"):
        run_report(report_params, tmp_path)
    assert not (tmp_path / "reports" / "comparison.html").exists()
