"""The comparison report's figures, drawn with matplotlib and saved as PNG.

matplotlib is imported inside the functions (with the Agg backend: no display on the
training machines) so that importing this module stays free.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import pandas as pd

_DPI = 110


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


# The accuracy a figure plots, by what decides the comparison: (accuracy, interval low and
# high columns of the table, axis label).
MEASURES = {
    "test": ("test_accuracy", "ci_low", "ci_high", "test accuracy"),
    "cv": ("cv_accuracy", "cv_ci_low", "cv_ci_high", "cross-validated accuracy"),
}


def accuracy_vs_latency(
    table: pd.DataFrame, front: Sequence[str], path: Path, measure: str = "test"
) -> Path:
    """Accuracy (with its interval) against batch-1 latency; bubble area = parameters.

    Args:
        table: One row per backbone (index = name) with the measure's columns,
            latency_ms_b1 and params.
        front: The Pareto-optimal backbones on that accuracy, fastest first.
        path: The PNG to write.
        measure: `cv` when the comparison decides on cross-validation (the recommendation's
            accuracy), else `test`.

    Returns:
        `path`.
    """
    accuracy, low, high, label = MEASURES[measure]
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.5))
    # Area proportional to parameters, scaled so the largest bubble stays readable.
    sizes = 60 + 1400 * table["params"] / max(float(table["params"].max()), 1.0)
    ax.errorbar(
        table["latency_ms_b1"],
        table[accuracy],
        yerr=[table[accuracy] - table[low], table[high] - table[accuracy]],
        fmt="none",
        ecolor="#888",
        capsize=3,
        zorder=1,
    )
    ax.scatter(
        table["latency_ms_b1"],
        table[accuracy],
        s=sizes,
        alpha=0.55,
        color="#3b7dd8",
        edgecolor="#1d3f73",
        zorder=2,
    )
    for name, row in table.iterrows():
        ax.annotate(
            str(name),
            (row["latency_ms_b1"], row[accuracy]),
            xytext=(6, 6),
            textcoords="offset points",
            fontsize=9,
        )
    if len(front) >= 2:  # one point is no line: neither drawn nor in the legend
        ax.plot(
            table.loc[list(front), "latency_ms_b1"],
            table.loc[list(front), accuracy],
            "--",
            color="#d8543b",
            drawstyle="steps-post",
            label="Pareto front",
            zorder=3,
        )
        ax.legend(loc="lower right")
    _latency_axes(ax, label)
    fig.tight_layout()
    fig.savefig(path, dpi=_DPI)
    plt.close(fig)
    return path


def _latency_axes(ax, ylabel: str) -> None:
    """A log latency axis in plain numbers, labels and grid."""
    from matplotlib.ticker import LogLocator, NullFormatter, ScalarFormatter

    ax.set_xscale("log")
    # Plain numbers (2, 5, 10, 20 ms) read better than 2x10^0 on a latency axis.
    ax.xaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    ax.xaxis.set_major_formatter(ScalarFormatter())
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.margins(x=0.2, y=0.1)
    ax.set_xlabel("latency, ms per image at batch 1 (log scale)")
    ax.set_ylabel(ylabel)
    ax.set_title("Accuracy vs latency (bubble area = parameters, bars = interval)")
    ax.grid(alpha=0.3)


def training_curves(histories: Mapping[str, pd.DataFrame], path: Path) -> Path:
    """Validation accuracy per epoch of every backbone on one chart.

    Args:
        histories: name -> history.csv as a frame (epoch, val_accuracy, ...).
        path: The PNG to write.

    Returns:
        `path`.
    """
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for name, history in histories.items():
        epochs = history["epoch"]
        # A fine-tuning phase may restart its epoch count: then number the epochs in order.
        x = (
            epochs
            if epochs.is_monotonic_increasing and epochs.is_unique
            else range(1, len(history) + 1)
        )
        ax.plot(list(x), history["val_accuracy"], marker="o", markersize=3, label=name)
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("epoch")
    ax.set_ylabel("validation accuracy")
    ax.set_title("Training curves")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=_DPI)
    plt.close(fig)
    return path
