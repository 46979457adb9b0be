"""The comparison table: one row per backbone, split into a main table and a details table.

The main table holds what decides (accuracy, its interval, latency, size) in at most 7
columns, so it fits a 1024 px screen; the rest goes to the details table. A column no
backbone has a value for in this run (cross-validation off, no tuning, one seed) is not shown.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from bakeoff.report import stats as report_stats
from bakeoff.report.settings import ReportSettings

Column = tuple[str, str, str]  # (title, key in the table, format)

MAIN: list[Column] = [
    ("Backbone", "backbone", "{}"),
    ("CV accuracy", "cv_accuracy", "{:.4f}"),
    ("CV {conf}% interval", "cv_interval_text", "{}"),
    ("Test accuracy", "test_accuracy", "{:.4f}"),
    ("{conf}% interval", "interval", "{}"),
    ("Latency b1 (ms)", "latency_ms_b1", "{:.2f}"),
    ("Size (MB)", "size_mb", "{:.2f}"),
]
DETAILS: list[Column] = [
    ("Backbone", "backbone", "{}"),
    ("Macro-F1", "test_macro_f1", "{:.4f}"),
    ("CV macro-F1", "cv_macro_f1", "{:.4f}"),
    ("Test acc. over seeds", "seeds_text", "{}"),
    ("Val acc. default head", "default_val_accuracy", "{:.4f}"),
    ("Val acc. tuned head", "tuned_val_accuracy", "{:.4f}"),
    ("Latency b32 (ms/img)", "latency_ms_b32", "{:.2f}"),
    ("Throughput (img/s)", "throughput_ips", "{:.1f}"),
    ("Parameters", "params", "{:,}"),
    ("Training (s)", "train_seconds", "{:.1f}"),
    ("Epochs (best)", "epochs_text", "{}"),
]
# What every metrics/<backbone>.json must hold (evaluate writes them all); the cv_* keys
# exist only when cross-validation ran, the rest the report computes or reads from train.json.
REQUIRED = [
    "test_accuracy", "test_macro_f1", "latency_ms_b1", "latency_ms_b32", "throughput_ips",
    "params", "size_mb", "train_seconds", "test_accuracy_mean", "test_accuracy_std", "n_seeds",
]  # fmt: skip
_FROM_METRICS = (*REQUIRED, "cv_accuracy", "cv_macro_f1", "cv_n", "cv_off_reason")


def _interval_text(interval: Sequence[float] | None) -> str | None:
    if interval is None:
        return None
    low, high = interval
    return f"[{low:.4f}, {high:.4f}]"


def _seeds_text(metrics: Mapping[str, Any]) -> str:
    """Test accuracy over seeds, as mean ± sample standard deviation (n)."""
    n = metrics.get("n_seeds", 1)
    if n < 2:
        return "1 seed"
    return f"{metrics['test_accuracy_mean']:.4f} ± {metrics['test_accuracy_std']:.4f} ({n})"


def _row(params: ReportSettings, name: str, b: Any) -> dict:
    """One backbone's cells: its metrics, both intervals and what train.json says.

    Both intervals are bootstrapped here from the per-image results (the test predictions,
    the out-of-fold ones), at `report.confidence`: evaluate records the samples, not an
    interval, so changing the confidence re-runs only the report.
    """
    metrics, train = b.metrics, b.train
    row: dict[str, Any] = {"backbone": name}
    row.update({key: metrics.get(key) for key in _FROM_METRICS})
    stats = (params.bootstrap, params.confidence, params.seed)
    low, high = report_stats.bootstrap_interval(b.correct, *stats)
    row.update(ci_low=low, ci_high=high, interval=_interval_text((low, high)))
    cv = (None, None)
    if b.oof is not None and len(b.oof):
        cv = report_stats.bootstrap_interval(
            (b.oof["label"] == b.oof["predicted"]).to_numpy(float), *stats
        )
    row.update(cv_ci_low=cv[0], cv_ci_high=cv[1])
    row["cv_interval_text"] = _interval_text(cv if cv[0] is not None else None)
    run, best = train.get("epochs_run"), train.get("best_epoch")
    row["epochs_run"] = run
    row["epochs_text"] = (f"{run} (best {best})" if best else str(run)) if run else None
    tuning = train.get("tuning") or {}
    for key in ("default_val_accuracy", "tuned_val_accuracy"):
        row[key] = tuning.get(key) if tuning.get("status") == "on" else None
    row["seeds_text"] = _seeds_text(metrics)
    return row


def build_table(params: ReportSettings, data: Mapping[str, Any]) -> pd.DataFrame:
    """One row per backbone (index = name): the metrics files' numbers plus the interval.

    Args:
        params: The report's settings (the bootstrap and confidence of the intervals).
        data: name -> the backbone's results (`metrics`, `correct`, `oof`, `train`).

    Returns:
        The table; `seeds_text` is empty when every backbone trained with one seed.
    """
    rows = {n: _row(params, n, b) for n, b in data.items()}
    table = pd.DataFrame.from_dict(rows, orient="index")
    if (table["n_seeds"].fillna(1) < 2).all():
        table["seeds_text"] = None  # one seed everywhere measures no spread: no column
    return table


def missing(value: Any) -> bool:
    """No value: None or NaN."""
    return value is None or (isinstance(value, float) and value != value)


def visible(table: pd.DataFrame, columns: Sequence[Column]) -> list[Column]:
    """The columns at least one backbone has a value for (the first, the name, always)."""
    return [columns[0]] + [c for c in columns[1:] if not table[c[1]].map(missing).all()]


def header(columns: Sequence[Column], conf: str) -> list[str]:
    """The column titles, with the confidence level filled in."""
    return [title.format(conf=conf) for title, _, _ in columns]


def cells(table: pd.DataFrame, columns: Sequence[Column]) -> list[list[str]]:
    """The formatted cells, one list per backbone; "-" where a backbone has no value
    (a head that was not tuned has no default/tuned pair)."""
    return [
        [fmt.format(row[key]) if not missing(row[key]) else "-" for _, key, fmt in columns]
        for _, row in table.iterrows()
    ]


def sections(
    table: pd.DataFrame, conf: str, meaning: Mapping[str, str] | None = None
) -> dict[str, dict[str, list]]:
    """The main and details tables as header, rows and each column's meaning (its tooltip
    in the HTML), shared by the markdown and the HTML."""
    meaning = meaning or {}
    out = {}
    for name, columns in (("main", MAIN), ("details", DETAILS)):
        shown = visible(table, columns)
        out[name] = {
            "header": header(shown, conf),
            "rows": cells(table, shown),
            "tips": [meaning.get(key, "") for _, key, _ in shown],
        }
    return out


def meanings(tables: Mapping[str, Mapping[str, list]]) -> list[tuple[str, str]]:
    """(column title, what it measures) of every shown column that has a meaning, once."""
    seen: dict[str, str] = {}
    for t in tables.values():
        for title, tip in zip(t["header"], t["tips"], strict=True):
            if tip and title not in seen:
                seen[title] = tip
    return list(seen.items())
