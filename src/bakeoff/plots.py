"""Training curves and confusion matrices as matplotlib figures and PNG files.

The figures are built on `matplotlib.figure.Figure`, not pyplot: no global figure state
to close (a long run would leak pyplot's), no display needed, and the caller (or a test)
can read what a figure shows before it is saved.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from matplotlib.figure import Figure


def history_figure(history_df: Any, title: str) -> Figure:
    """Loss and accuracy per epoch, train vs validation, with the fine-tune phase marked.

    Args:
        history_df: A DataFrame (or a list of row dicts) with columns epoch, loss, accuracy,
            val_loss, val_accuracy and optionally phase (1 = frozen backbone, 2 = fine-tuning).
        title: The figure title (e.g. the backbone name).

    Returns:
        The figure: two axes (loss, accuracy), each with a train and a val line.
    """
    import pandas as pd
    from matplotlib.figure import Figure

    history_df = pd.DataFrame(history_df)
    fig = Figure(figsize=(11, 4))
    axes = fig.subplots(1, 2)
    epochs = history_df["epoch"].to_numpy()
    for ax, metric in zip(axes, ("loss", "accuracy"), strict=True):
        for column, label, style in ((metric, "train", "-o"), (f"val_{metric}", "val", "-s")):
            if column in history_df:
                ax.plot(epochs, history_df[column].to_numpy(dtype=float), style, label=label, ms=3)
        if "phase" in history_df and history_df["phase"].nunique() > 1:
            # The first epoch of phase 2: where the backbone was unfrozen.
            start = history_df.loc[history_df["phase"] != history_df["phase"].iloc[0], "epoch"]
            ax.axvline(start.min() - 0.5, color="grey", ls="--", lw=1, label="fine-tuning starts")
        ax.set_xlabel("epoch")
        ax.set_ylabel(metric)
        ax.grid(alpha=0.3)
        ax.legend()
    axes[1].set_ylim(0, 1.02)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_history(history_df: Any, path: Path, title: str) -> Path:
    """`history_figure` written to the PNG `path` (parent folders are created)."""
    return _save(history_figure(history_df, title), path)


def confusion_figure(cm: Any, classes: list[str], title: str) -> Figure:
    """A confusion matrix: counts as text, colour by row-normalised rate (recall per class).

    Args:
        cm: Square counts, rows = actual class, columns = predicted class.
        classes: Class names in index order.
        title: The figure title.

    Returns:
        The figure: one image of the rates, a count per cell, the classes as tick labels.
    """
    from matplotlib.figure import Figure

    cm = np.asarray(cm)
    n = len(classes)
    totals = cm.sum(axis=1, keepdims=True)
    # Row-normalised so a small class's errors are as visible as a big class's.
    rates = np.divide(cm, totals, out=np.zeros(cm.shape, dtype=float), where=totals > 0)
    side = max(4.5, 0.6 * n + 2.5)
    fig = Figure(figsize=(side + 1, side))
    ax = fig.subplots()
    image = ax.imshow(rates, cmap="Blues", vmin=0, vmax=1)
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="fraction of actual class")
    ax.set_xticks(range(n), labels=classes, rotation=45, ha="right", rotation_mode="anchor")
    ax.set_yticks(range(n), labels=classes)
    ax.set_xlabel("predicted")
    ax.set_ylabel("actual")
    fontsize = 9 if n <= 12 else 6
    for i in range(n):
        for j in range(n):
            colour = "white" if rates[i, j] > 0.5 else "black"
            ax.text(j, i, int(cm[i, j]), ha="center", va="center", color=colour, fontsize=fontsize)
    ax.set_title(title)
    fig.tight_layout()
    return fig


def plot_confusion(cm: Any, classes: list[str], path: Path, title: str) -> Path:
    """`confusion_figure` written to the PNG `path` (parent folders are created)."""
    return _save(confusion_figure(cm, classes, title), path)


def _save(fig: Figure, path: Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    return path
