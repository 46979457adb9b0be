"""Stage `report`: reports/comparison.{md,html}, which backbone to use, and why.

Every number in the tables is read from metrics/<backbone>.json, the same file
`dvc metrics show` and the evaluate run in MLflow show; the report only adds the
statistics (bootstrap intervals at `report.confidence` from the per-image predictions in
plots/<backbone>/confusion.csv and oof.csv), the reasoning, how the backbones were trained
(models/<backbone>/train.json) and the mistakes as pictures (plots/<backbone>/predictions.csv
and the images under data/raw).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bakeoff.config.params import Budget, ReportParams, TrackingParams
from bakeoff.errors import BakeoffError
from bakeoff.report import context, issues_section, per_class
from bakeoff.report import figures as report_figures
from bakeoff.report.answer import answer
from bakeoff.report.render import FIGURES, export_section, render_markdown
from bakeoff.report.settings import ReportSettings
from bakeoff.report.stats import CV
from bakeoff.report.table import REQUIRED, build_table, meanings, missing, sections


@dataclass
class _BackboneResults:
    metrics: dict[str, Any]
    actual: np.ndarray
    predicted: np.ndarray
    history: pd.DataFrame
    train: dict[str, Any]
    oof: pd.DataFrame | None = None  # plots/<b>/oof.csv when evaluate cross-validated

    @property
    def correct(self) -> np.ndarray:
        return (self.actual == self.predicted).astype(float)


def _read(path: Path, what: str, fix: str) -> Path:
    if not path.is_file():
        raise BakeoffError(f"{what} is missing: no file {path}; run `{fix}` (or `dvc repro`)")
    return path


def _load(name: str, metrics_dir: Path, plots_dir: Path, models_dir: Path) -> _BackboneResults:
    fix = f"bakeoff evaluate {name}"
    path = _read(metrics_dir / f"{name}.json", f"metrics of {name}", fix)
    metrics = json.loads(path.read_text())
    lacking = [key for key in REQUIRED if metrics.get(key) is None]
    if lacking:
        raise BakeoffError(f"{path} lacks {', '.join(lacking)}: re-run `{fix}`")
    conf = pd.read_csv(
        _read(plots_dir / name / "confusion.csv", f"test predictions of {name}", fix), dtype=str
    )
    history = pd.read_csv(
        _read(plots_dir / name / "history.csv", f"history of {name}", f"bakeoff train {name}")
    )
    oof = None
    if metrics.get("cv_n"):  # evaluate cross-validated: its predictions must be there
        oof_csv = _read(plots_dir / name / "oof.csv", f"out-of-fold predictions of {name}", fix)
        oof = pd.read_csv(oof_csv, dtype={"path": str, "label": str, "predicted": str})
    fix = f"bakeoff train {name}"
    train_json = _read(models_dir / name / "train.json", f"how {name} trained", fix)
    train = json.loads(train_json.read_text())
    return _BackboneResults(
        metrics, conf["actual"].to_numpy(), conf["predicted"].to_numpy(), history, train, oof
    )


def _figures(
    table: pd.DataFrame,
    front: list[str],
    data: dict[str, _BackboneResults],
    shown: tuple[str, str],
    figures_dir: Path,
    measure: str,
) -> list[Path]:
    """reports/figures/*.png; the confusion matrix is of shown = (backbone, title); the
    accuracy plotted against latency is `measure` (`cv` or `test`), the one that decides."""
    from sklearn.metrics import confusion_matrix

    from bakeoff.plots import plot_confusion

    figures_dir.mkdir(parents=True, exist_ok=True)
    names = [figures_dir / name for name in FIGURES]
    shown, title = shown
    classes = data[shown].train.get("classes") or sorted(set(data[shown].actual))
    return [
        report_figures.accuracy_vs_latency(table, front, names[0], measure),
        report_figures.training_curves({n: b.history for n, b in data.items()}, names[1]),
        # The same drawing as plots/<backbone>/confusion.png, from the evaluate stage.
        plot_confusion(
            confusion_matrix(data[shown].actual, data[shown].predicted, labels=list(classes)),
            list(classes),
            names[2],
            title,
        ),
    ]


def _decisions(out_dir: Path) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """reports/register.json (required) and reports/export.json (None: export has not run)."""
    register = _read(out_dir / "register.json", "the register decision", "bakeoff register")
    export = out_dir / "export.json"
    return json.loads(register.read_text()), (
        json.loads(export.read_text()) if export.is_file() else None
    )


def _page(
    params: ReportSettings, data, register, export, plots_dir: Path, image_root: Path
) -> dict[str, Any]:
    """Everything both pages show, built once."""
    table = build_table(params, data)
    ctx = answer(params, table, data, register)
    table = table.loc[ctx["order"]]  # ranked by the measure that decides
    roles = {ctx["pick"]: "the recommendation"}
    if ctx["champion"]:
        both = ctx["champion"] == ctx["pick"]
        roles[ctx["champion"]] = "the recommendation and the champion" if both else "the champion"
    first = next(iter(data.values()))
    classes = first.train.get("classes") or sorted(set(first.actual))
    n_test = len(first.actual)
    tables = sections(
        table, f"{100 * params.confidence:g}", context.definitions(params, table, n_test)
    )
    return {
        **ctx,
        "table": table,
        "tables": tables,
        "how_to_read": context.how_to_read(ctx["basis"]),
        "front_text": context.front_text(ctx["front"]),
        "measured": [("Tied", context.TIED), *meanings(tables)],
        "galleries": context.galleries(roles, plots_dir, image_root),
        "per_class": per_class.accuracy(
            {n: (data[n].actual, data[n].predicted) for n in ctx["order"]}, classes
        ),
        "export": export_section(export, ctx["champion_version"]),
        "n_test": n_test,
        "classes": list(classes),
    }


def report(
    params: ReportParams,
    backbones: list[str],
    metrics_dir: Path,
    models_dir: Path,
    out_dir: Path,
    plots_dir: Path,
    image_root: Path,
    *,
    seed: int,
    bootstrap: int,
    budgets: dict[str, Budget] | None,
    tracking_params: TrackingParams,
    root: Path,
) -> Path:
    """Write reports/comparison.{md,html,csv}, reports/label_issues.csv and
    reports/figures/*.png; log them to MLflow.

    Args:
        params: The report section (the intervals' confidence).
        backbones: The backbones to compare (each needs its metrics file).
        metrics_dir: Where metrics/<backbone>.json are.
        models_dir: Where models/<backbone>/train.json are.
        out_dir: The reports folder: holds register.json, receives the report.
        plots_dir: Where plots/<backbone>/{confusion,predictions,history,oof}.csv are.
        image_root: The images the test predictions name (data/raw).
        seed: The top-level `seed`: of the bootstrap resampling.
        bootstrap: The top-level `bootstrap`: resamples of the intervals and comparisons.
        budgets: The top-level `budgets`: which backbones fit each.
        tracking_params: The tracking section (the MLflow store the report is logged to).
        root: The project root (MLflow store, git commit).

    Returns:
        The path of comparison.html.
    """
    from bakeoff import tracking
    from bakeoff.report.html import render_html

    plots_dir, image_root = Path(plots_dir), Path(image_root)
    settings = ReportSettings(params.confidence, bootstrap, seed, budgets)
    data = {b: _load(b, Path(metrics_dir), plots_dir, Path(models_dir)) for b in backbones}
    if not data:
        raise BakeoffError("params.yaml lists no backbones: add at least one to `backbones`")
    out_dir = Path(out_dir)
    ctx = _page(settings, data, *_decisions(out_dir), plots_dir, image_root)
    ctx["label_issues"], issues_csv, issue_metrics = issues_section.build(
        {n: b.oof for n, b in data.items()}, ctx["classes"], ctx["pick"],
        data[ctx["pick"]].metrics.get("cv_off_reason"), out_dir, image_root,
    )  # fmt: skip
    table = ctx["table"]
    shown = (ctx["champion"], f"{ctx['champion']} (champion)") if ctx["champion"] else (
        ctx["best"], f"{ctx['best']} (most accurate)")  # fmt: skip
    measure = "cv" if ctx["basis"] == CV else "test"
    figures = _figures(table, ctx["front"], data, shown, out_dir / "figures", measure)
    # The table as data: `dvc plots show` draws it (the top-level plot in dvc.yaml).
    csv = out_dir / "comparison.csv"
    text = ["interval", "cv_interval_text", "cv_off_reason", "epochs_text"]
    table.drop(columns=text).to_csv(csv, index=False)
    md = out_dir / "comparison.md"
    md.write_text(render_markdown(ctx))
    html = out_dir / "comparison.html"
    html.write_text(render_html(ctx, figures))
    intervals = {  # each backbone's intervals on its own run (its row in the MLflow UI)
        data[n].metrics["run_id"]: {
            key: value
            for prefix, column in (("test", "ci"), ("cv", "cv_ci"))
            if not missing(table.loc[n, f"{column}_low"])
            for key, value in tracking.interval_metrics(
                prefix,
                (float(table.loc[n, f"{column}_low"]), float(table.loc[n, f"{column}_high"])),
            ).items()
        }
        for n in table.index
    }
    files = [md, html, csv, issues_csv, *figures]
    tracking.log_report(settings, tracking_params, files, intervals, root, issue_metrics)
    return html
