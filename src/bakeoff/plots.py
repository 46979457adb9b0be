"""Training curves and confusion matrices as PNG files (matplotlib, headless Agg backend)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # no display on servers and CI; must precede the pyplot import
    import matplotlib.pyplot as plt

    return plt


def plot_history(history_df: Any, path: Path, title: str) -> Path:
    """Loss and accuracy per epoch, train vs validation, with the fine-tune phase marked.

    Args:
        history_df: A DataFrame (or a list of row dicts) with columns epoch, loss, accuracy,
            val_loss, val_accuracy and optionally phase (1 = frozen backbone, 2 = fine-tuning).
        path: The PNG to write (parent folders are created).
        title: The figure title (e.g. the backbone name).

    Returns:
        The path written.
    """
    import pandas as pd

    plt = _pyplot()
    history_df = pd.DataFrame(history_df)
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
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
    return _save(fig, plt, path)


def plot_confusion(cm: Any, classes: list[str], path: Path, title: str) -> Path:
    """A confusion matrix: counts as text, colour by row-normalised rate (recall per class).

    Args:
        cm: Square counts, rows = actual class, columns = predicted class.
        classes: Class names in index order.
        path: The PNG to write (parent folders are created).
        title: The figure title.

    Returns:
        The path written.
    """
    plt = _pyplot()
    cm = np.asarray(cm)
    n = len(classes)
    totals = cm.sum(axis=1, keepdims=True)
    # Row-normalised so a small class's errors are as visible as a big class's.
    rates = np.divide(cm, totals, out=np.zeros(cm.shape, dtype=float), where=totals > 0)
    side = max(4.5, 0.6 * n + 2.5)
    fig, ax = plt.subplots(figsize=(side + 1, side))
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
    return _save(fig, plt, path)


def _save(fig: Any, plt: Any, path: Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)  # figures are global state in pyplot; long runs would leak them
    return path
