"""The training history of all phases: history_phase<n>.csv files, the best epoch, plots."""

from __future__ import annotations

import csv
import json
from pathlib import Path

HISTORY_COLUMNS = [
    "epoch",
    "phase",
    "loss",
    "accuracy",
    "val_loss",
    "val_accuracy",
    "learning_rate",
]


def best_row(history: list[dict], state_dir: Path) -> dict:
    """The history row of the weights in best.keras: the best val accuracy, unless a head
    phase chose its epoch by val loss (best.json), then only a later epoch beating it."""
    chosen = Path(state_dir) / "best.json"
    if not chosen.is_file():
        return max(history, key=lambda row: row["val_accuracy"])
    pick = json.loads(chosen.read_text())
    later = [r for r in history if r["epoch"] > pick["epoch"]]
    better = [r for r in later if r["val_accuracy"] > pick["val_accuracy"]]
    if better:
        return max(better, key=lambda row: row["val_accuracy"])
    return next(r for r in history if r["epoch"] == pick["epoch"])


def read_history(state_dir: Path) -> list[dict]:
    """Every completed epoch of both phases, 1-based, a re-run epoch counted once."""
    rows: dict[int, dict] = {}
    for number in (1, 2):
        path = Path(state_dir) / f"history_phase{number}.csv"
        if not path.is_file():
            continue
        with open(path, newline="") as fh:
            for raw in csv.DictReader(fh):
                row = {k: float(v) for k, v in raw.items() if k in HISTORY_COLUMNS and v != ""}
                row["epoch"], row["phase"] = int(raw["epoch"]) + 1, number
                rows[row["epoch"]] = row  # after a crash the last write of an epoch wins
    return [rows[e] for e in sorted(rows)]


def write_history(history: list[dict], plots_dir: Path, title: str) -> tuple[Path, Path]:
    """plots_dir/history.csv and curves.png (loss and accuracy per epoch, train and val)."""
    from bakeoff.plots import plot_history

    csv_path, png_path = plots_dir / "history.csv", plots_dir / "curves.png"
    with open(csv_path, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=HISTORY_COLUMNS, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(history)
    plot_history(history, png_path, title=title)
    return csv_path, png_path
