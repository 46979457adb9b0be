"""How runs read in the MLflow UI: metric names that fit a column header, values rounded to
what the data supports, a colour per backbone.

The UI shows every logged digit (`1.6095949999908044`) and truncates a header after about
14 characters, so the comparison metrics are logged rounded and under short names.
"""

from __future__ import annotations

import math
from typing import Any

from bakeoff.tracking import outage
from bakeoff.tracking.store import mlflow_client

# Name pattern -> decimals: accuracies and F1 are ratios over a few hundred images (4 digits
# already resolve one image in 10,000); latency and size are measured to ~1%.
_DIGITS = (
    ("accuracy", 4),
    ("_f1", 4),
    ("_acc_", 4),
    ("latency_ms", 2),
    ("size_mb", 2),
    ("throughput_ips", 0),
    ("seconds", 1),
)
# Distinct hues for the runs table and charts (MLflow otherwise picks a colour from the run
# id, and two runs can share one).
PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
           "#8c564b", "#e377c2", "#17becf", "#bcbd22", "#393b79")  # fmt: skip
RUN_COLOR_TAG = "mlflow.runColor"
OTHER_COLOR = {RUN_COLOR_TAG: "#7f7f7f"}  # runs that are no backbone (the report)


def rounded(metrics: dict[str, float]) -> dict[str, float]:
    """The metrics rounded by name (`_DIGITS`); other names and non-finite values as given."""
    out = {}
    for name, value in metrics.items():
        value = float(value)
        digits = next((d for pattern, d in _DIGITS if pattern in name), None)
        out[name] = round(value, digits) if digits is not None and math.isfinite(value) else value
    return out


def interval_metrics(prefix: str, interval: tuple[float, float] | list[float]) -> dict[str, float]:
    """An accuracy interval as two short metrics, `<prefix>_acc_lo` and `<prefix>_acc_hi`
    (`test`, `cv`), rounded like the accuracy."""
    low, high = interval
    return rounded({f"{prefix}_acc_lo": low, f"{prefix}_acc_hi": high})


def run_color(index: int) -> dict[str, str]:
    """The run colour tag for the `index`-th backbone (`PALETTE`, cycled)."""
    return {RUN_COLOR_TAG: PALETTE[index % len(PALETTE)]}


def log_table(rows: list[dict[str, Any]], artifact_file: str, run_id: str) -> None:
    """Rows as a table artifact of a run (MLflow's artifact view shows it as a table):
    detail that would otherwise be dozens of metric columns and charts."""
    import mlflow
    import pandas as pd

    mlflow_client()  # points the fluent API at the configured store
    outage.call(
        lambda: mlflow.log_table(pd.DataFrame(rows), artifact_file, run_id=run_id),
        f"log {artifact_file} to run {run_id}",
    )
