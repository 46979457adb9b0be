"""Stage `report`: reports/comparison.{md,html}, which backbone to use, and why.

Every number in the table is read from metrics/<backbone>.json, the same file
`dvc metrics show` and the evaluate run in MLflow show; the report only adds the
statistics (bootstrap intervals from the per-image predictions in
plots/<backbone>/confusion.csv) and the reasoning.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bakeoff.config import Params
from bakeoff.errors import BakeoffError
from bakeoff.report import figures as report_figures
from bakeoff.report import render as report_render
from bakeoff.report import stats as report_stats

# What the table needs from metrics/<backbone>.json (the evaluate stage writes them all).
_REQUIRED = [
    key for _, key, _ in report_render.COLUMNS[1:] if key not in report_render.NOT_FROM_METRICS
] + ["test_accuracy_mean", "test_accuracy_std", "n_seeds"]


@dataclass
class _BackboneResults:
    metrics: dict[str, Any]
    actual: np.ndarray
    predicted: np.ndarray
    history: pd.DataFrame
    train: dict[str, Any]

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
    lacking = [key for key in _REQUIRED if metrics.get(key) is None]
    if lacking:
        raise BakeoffError(f"{path} lacks {', '.join(lacking)}: re-run `{fix}`")
    conf = pd.read_csv(
        _read(plots_dir / name / "confusion.csv", f"test predictions of {name}", fix), dtype=str
    )
    history = pd.read_csv(
        _read(plots_dir / name / "history.csv", f"history of {name}", f"bakeoff train {name}")
    )
    train_json = models_dir / name / "train.json"
    train = json.loads(train_json.read_text()) if train_json.is_file() else {}
    return _BackboneResults(
        metrics, conf["actual"].to_numpy(), conf["predicted"].to_numpy(), history, train
    )


def _champion(register: dict[str, Any]) -> tuple[str | None, str]:
    """(backbone holding the `champion` alias after the register stage, sentence about it)."""
    decision, reason = register.get("decision"), register.get("reason", "")
    if decision == "promoted":
        name, version = register.get("backbone"), register.get("version")
    else:
        name, version = (
            (register.get("champion") or {}).get("backbone"),
            (register.get("champion") or {}).get("version"),
        )
    if not name:
        return None, f"none yet (last register decision: {decision}; {reason})"
    model = f"{register.get('model_name')} version {version}, alias champion"
    return name, f"{name} ({model}; last register decision: {decision}, {reason})"


def _read_json(path: Path) -> dict[str, Any] | None:
    return json.loads(path.read_text()) if path.is_file() else None


def _champion_version(register: dict[str, Any]) -> str | None:
    """The version holding `champion` after the register stage."""
    if register.get("decision") == "promoted":
        return register.get("version")
    return (register.get("champion") or {}).get("version")


def _seeds_text(metrics: dict[str, Any]) -> str:
    """Test accuracy over seeds, as mean ± sample standard deviation (n)."""
    n = metrics.get("n_seeds", 1)
    if n < 2:
        return "1 seed"
    return f"{metrics['test_accuracy_mean']:.4f} ± {metrics['test_accuracy_std']:.4f} ({n})"


def build_table(params: Params, data: dict[str, _BackboneResults]) -> pd.DataFrame:
    """One row per backbone: the metrics files' numbers plus the bootstrap interval."""
    rows = {}
    for name, b in data.items():
        low, high = report_stats.bootstrap_interval(
            b.correct, params.report.bootstrap, params.report.confidence, params.report.seed
        )
        row = {"backbone": name}
        row.update({key: b.metrics.get(key) for _, key, _ in report_render.COLUMNS[1:]})
        row.update(ci_low=low, ci_high=high, interval=f"[{low:.4f}, {high:.4f}]")
        row["epochs_run"] = b.train.get("epochs_run", "-")
        tuning = b.train.get("tuning") or {}
        for key in ("default_val_accuracy", "tuned_val_accuracy"):
            row[key] = tuning.get(key) if tuning.get("status") == "on" else None
        row["seeds_text"] = _seeds_text(b.metrics)
        rows[name] = row
    return pd.DataFrame.from_dict(rows, orient="index")


def analyse(
    params: Params, table: pd.DataFrame, data: dict[str, _BackboneResults]
) -> dict[str, Any]:
    """The recommendation, the Pareto front and the budgets, from the table."""
    best = str(table["test_accuracy"].astype(float).idxmax())
    for name, b in data.items():
        if len(b.actual) != len(data[best].actual) or (b.actual != data[best].actual).any():
            raise BakeoffError(
                f"{name} and {best} were tested on different images (their confusion.csv "
                "differ): re-run `dvc repro` so every backbone is evaluated on the same split"
            )
    tied = {}
    for name, b in data.items():
        if name == best:
            continue
        diff, low, high = report_stats.paired_difference(
            data[best].correct,
            b.correct,
            params.report.bootstrap,
            params.report.confidence,
            params.report.seed,
        )
        spread = [(t["test_accuracy_mean"], t["test_accuracy_std"], t["n_seeds"])
                  for t in (data[best].metrics, b.metrics)]  # fmt: skip
        if low <= 0 <= high or report_stats.tied_by_seeds(*spread):
            tied[name] = (diff, low, high)
    candidates = [
        report_stats.Candidate(n, float(r.test_accuracy), float(r.latency_ms_b1), float(r.size_mb))
        for n, r in table.iterrows()
    ]
    pick, reason = report_stats.recommend(candidates, tied)
    front = report_stats.pareto_front({c.name: (c.accuracy, c.latency_ms) for c in candidates})
    budgets = {
        label: report_stats.within_budget(candidates, b.max_latency_ms, b.max_size_mb)
        for label, b in (params.report.budgets or {}).items()
    }
    return {
        "best": best,
        "tied": sorted(tied),
        "pick": pick,
        "reason": reason,
        "front": front,
        "budgets": budgets,
    }


def _summary(params: Params, table: pd.DataFrame, found: dict[str, Any]) -> dict[str, Any]:
    """The text below the table, shared by the markdown and the HTML."""
    budgets = []
    for label, fits in found["budgets"].items():
        budget = (params.report.budgets or {})[label]
        best_fit = max(fits, key=lambda n: table.loc[n, "test_accuracy"]) if fits else None
        budgets.append(
            {
                "label": label,
                "limits": f"latency {report_render.limit(budget.max_latency_ms, 'ms')}, "
                f"size {report_render.limit(budget.max_size_mb, 'MB')}",
                "fits": ", ".join(fits) or "none",
                "best": best_fit,
            }
        )
    return {**found, "budgets": budgets}


def _figures(
    table: pd.DataFrame,
    ctx: dict[str, Any],
    data: dict[str, _BackboneResults],
    champion: str | None,
    figures_dir: Path,
) -> list[Path]:
    """reports/figures/*.png; the confusion matrix is the champion's (else the best's)."""
    from sklearn.metrics import confusion_matrix

    from bakeoff.plots import plot_confusion

    figures_dir.mkdir(parents=True, exist_ok=True)
    names = [figures_dir / name for name in report_render.FIGURES]
    shown = champion if champion in data else ctx["best"]
    title = f"{shown} (champion)" if shown == champion else f"{shown} (most accurate)"
    classes = data[shown].train.get("classes") or sorted(set(data[shown].actual))
    return [
        report_figures.accuracy_vs_latency(table, ctx["front"], names[0]),
        report_figures.training_curves({n: b.history for n, b in data.items()}, names[1]),
        # The same drawing as plots/<backbone>/confusion.png, from the evaluate stage.
        plot_confusion(
            confusion_matrix(data[shown].actual, data[shown].predicted, labels=list(classes)),
            list(classes),
            names[2],
            title,
        ),
    ]


def report(
    params: Params,
    backbones: list[str],
    metrics_dir: Path,
    models_dir: Path,
    out_dir: Path,
    plots_dir: Path | None = None,
    *,
    root: Path,
) -> Path:
    """Write reports/comparison.{md,html,csv} and reports/figures/*.png; log them to MLflow.

    Args:
        params: All params (the `report` section drives the statistics).
        backbones: The backbones to compare (each needs its metrics file).
        metrics_dir: Where metrics/<backbone>.json are.
        models_dir: Where models/<backbone>/train.json are.
        out_dir: The reports folder: holds register.json, receives the report.
        plots_dir: Where plots/<backbone>/{confusion,history}.csv are; default the
            `plots` folder next to `metrics_dir`.
        root: The project root (MLflow store, git commit).

    Returns:
        The path of comparison.html.
    """
    from bakeoff import tracking

    plots_dir = plots_dir or Path(metrics_dir).parent / "plots"
    data = {b: _load(b, Path(metrics_dir), plots_dir, Path(models_dir)) for b in backbones}
    if not data:
        raise BakeoffError("params.yaml lists no backbones: add at least one to `backbones`")
    register_path = _read(
        Path(out_dir) / "register.json", "the register decision", "bakeoff register"
    )
    register = json.loads(register_path.read_text())
    table = build_table(params, data)
    ctx = _summary(params, table, analyse(params, table, data))
    champion, ctx["champion_text"] = _champion(register)
    ctx["export"] = report_render.export_section(
        _read_json(Path(out_dir) / "export.json"), _champion_version(register)
    )
    ctx["n_test"] = len(next(iter(data.values())).actual)
    figures = _figures(table, ctx, data, champion, Path(out_dir) / "figures")
    # The table as data: `dvc plots show` draws it (the top-level plot in dvc.yaml).
    csv = Path(out_dir) / "comparison.csv"
    table.drop(columns=["interval"]).to_csv(csv, index=False)
    md = Path(out_dir) / "comparison.md"
    md.write_text(report_render.render_markdown(params, table, ctx))
    html = Path(out_dir) / "comparison.html"
    html.write_text(report_render.render_html(params, table, ctx, figures))
    intervals = {
        f"{n}.test_accuracy_ci_{end}": float(table.loc[n, f"ci_{end}"])
        for n in table.index
        for end in ("low", "high")
    }
    tracking.log_report(params, [md, html, csv, *figures], intervals, root)
    return html
