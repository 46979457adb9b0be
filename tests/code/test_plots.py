"""plots.py: the training curves and confusion matrices show the numbers they are given."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from bakeoff.plots import confusion_figure, history_figure, plot_confusion, plot_history

ROWS = [
    {"epoch": e, "phase": 1 if e < 3 else 2, "loss": 2 - e / 5, "accuracy": e / 5,
     "val_loss": 2.1 - e / 5, "val_accuracy": e / 6, "learning_rate": 1e-3}
    for e in range(5)
]  # fmt: skip


def _lines(ax) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    return {line.get_label(): (line.get_xdata(), line.get_ydata()) for line in ax.get_lines()}


def test_history_figure_plots_train_and_val_per_epoch_and_marks_fine_tuning():
    fig = history_figure(ROWS, "SimpleCNN")
    assert fig.get_suptitle() == "SimpleCNN"
    loss_ax, acc_ax = fig.axes
    epochs = [r["epoch"] for r in ROWS]
    for ax, metric in ((loss_ax, "loss"), (acc_ax, "accuracy")):
        assert (ax.get_xlabel(), ax.get_ylabel()) == ("epoch", metric)
        lines = _lines(ax)
        assert set(lines) == {"train", "val", "fine-tuning starts"}
        for label, column in (("train", metric), ("val", f"val_{metric}")):
            x, y = lines[label]
            assert list(x) == epochs
            assert list(y) == pytest.approx([r[column] for r in ROWS])
        # Phase 2 begins at epoch 3: the marker sits between epochs 2 and 3.
        assert list(lines["fine-tuning starts"][0]) == [2.5, 2.5]
        legend = [t.get_text() for t in ax.get_legend().get_texts()]
        assert legend == ["train", "val", "fine-tuning starts"]
    assert acc_ax.get_ylim() == pytest.approx((0, 1.02))


def test_history_figure_of_one_phase_has_no_fine_tuning_marker():
    one_phase = [r | {"phase": 1} for r in ROWS]
    for ax in history_figure(one_phase, "MobileNet").axes:
        assert set(_lines(ax)) == {"train", "val"}


def test_history_png_is_written_into_new_folders(tmp_path):
    path = plot_history(ROWS, tmp_path / "deep" / "curves.png", "SimpleCNN")
    with Image.open(path) as img:
        assert img.format == "PNG" and img.width > img.height


def test_confusion_figure_shows_counts_and_row_rates_with_an_empty_class():
    cm = np.array([[5, 1, 0], [0, 0, 0], [2, 0, 7]])  # class "b" has no test images
    classes = ["a", "b", "a long class name"]
    fig = confusion_figure(cm, classes, "test")
    ax = fig.axes[0]
    assert ax.get_title() == "test"
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("predicted", "actual")
    assert [t.get_text() for t in ax.get_xticklabels()] == classes
    assert [t.get_text() for t in ax.get_yticklabels()] == classes
    # Colour: the share of each actual class (rows sum to 1; the empty class is all 0).
    rates = np.asarray(ax.get_images()[0].get_array())
    expected = [[5 / 6, 1 / 6, 0], [0, 0, 0], [2 / 9, 0, 7 / 9]]
    np.testing.assert_allclose(rates, expected)
    # Text: the raw count in each cell, at (column, row).
    cells = {(round(t.get_position()[1]), round(t.get_position()[0])): t.get_text()
             for t in ax.texts}  # fmt: skip
    assert cells == {(i, j): str(cm[i, j]) for i in range(3) for j in range(3)}
    # The well-recalled cells are white on dark blue, the others black.
    colours = {(round(t.get_position()[1]), round(t.get_position()[0])): t.get_color()
               for t in ax.texts}  # fmt: skip
    assert colours[(0, 0)] == colours[(2, 2)] == "white" and colours[(2, 0)] == "black"
    assert fig.axes[1].get_ylabel() == "fraction of actual class"  # the colour bar


def test_confusion_png_is_readable(tmp_path):
    cm = np.array([[5, 1], [2, 7]])
    path = plot_confusion(cm, ["a", "b"], tmp_path / "cm.png", "test")
    with Image.open(path) as img:
        assert img.format == "PNG" and min(img.size) > 300
