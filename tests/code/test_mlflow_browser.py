"""bakeoff's runs in MLflow's own UI (a real `mlflow server`, Debian's chromium driven by
playwright), opened the ways a user does: the link `make ui` prints, and the UI's root.

The store holds a few backbone runs logged through bakeoff's tracking functions (tiny
models, evaluation numbers as evaluate logs them) and the report run. Screenshots are kept
under tmp_path, and in $BAKEOFF_ARTIFACTS when it is set.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from bakeoff import tracking
from bakeoff.config.params import load_params
from tests.conftest import REPO, MlflowServer, run_sections

CHROMIUM = Path("/usr/bin/chromium")
VIEWPORT = {"width": 1280, "height": 800}
BACKBONES = ["SimpleCNN", "MobileNet", "MobileNetV2", "VGG16"]
CLASSES = ["Bag", "Coat", "T-shirt/top"]

# About 45 s on 2 cores (the store, the server, two page loads): with the slow tests.
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium"),
]


def _evaluation(backbone: str, i: int, run_id: str, model_uri: str) -> dict:
    """What evaluate hands its MLflow logging, with the float noise real numbers carry."""
    accuracy = 0.6 + 0.061234 * i
    return {
        "backbone": backbone, "run_id": run_id, "model_uri": model_uri,
        "test_accuracy": accuracy, "test_macro_f1": accuracy - 0.0123456,
        "val_accuracy": accuracy + 0.0012345, "val_macro_f1": accuracy - 0.02,
        "params": 2275914 * (i + 1), "size_mb": 9.697403 * (i + 1),
        "latency_ms_b1": 1.6095949999908044 * (i + 1), "latency_ms_b32": 0.478053 * (i + 1),
        "throughput_ips": 2091.815604588086 / (i + 1), "train_seconds": 128.65,
        "image_size": 32, "n_test": 600, "interval_confidence": 0.95,
        "test_accuracy_interval": [accuracy - 0.0391234, accuracy + 0.0371234],
        "n_seeds": 1, "test_accuracy_mean": accuracy, "test_accuracy_std": 0.0,
        "per_class": {c: {"precision": 0.8, "recall": 0.7, "f1": 0.75, "support": 60}
                      for c in CLASSES},
    }  # fmt: skip


def _store(root: Path) -> None:
    """Backbone runs with a logged model and evaluate's numbers each, then the report run."""
    import keras

    from bakeoff.evaluate.stage import _log_to_run

    params = load_params(REPO / "params.yaml")
    per_run = {}
    for i, backbone in enumerate(BACKBONES):
        tags = {"data_version": "df963e632cbe4ad3", "seed": "42", "dvc_stage": f"train@{backbone}"}
        with tracking.training_run(run_sections(params), backbone, None, tags, root) as run_id:
            model = keras.Sequential(
                [keras.Input((8, 8, 3)), keras.layers.Flatten(), keras.layers.Dense(3, "softmax")]
            )
            example = np.zeros((1, 8, 8, 3), "float32")
            uri = tracking.log_keras_model(model, example, run_id, CLASSES, backbone)
        metrics = _evaluation(backbone, i, run_id, uri)
        _log_to_run(metrics, [])
        per_run[run_id] = tracking.interval_metrics("test", metrics["test_accuracy_interval"])
    tracking.log_report(params.report, params.tracking, [], per_run, root)


@pytest.fixture(scope="module")
def ui(tmp_path_factory):
    """(the MLflow server's URL, bakeoff's experiment id) over the store of `_store`."""
    root = tmp_path_factory.mktemp("project")
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("MLFLOW_TRACKING_URI", raising=False)
        _store(root)
        experiment_id = tracking.configure(load_params(REPO / "params.yaml").tracking, root)
    server = MlflowServer(root, f"sqlite:///{root / 'mlruns' / 'mlflow.db'}")
    try:
        server.start()
        yield server.uri, experiment_id
    finally:
        server.stop()


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    args = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
            "--disable-component-update"]  # fmt: skip
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=str(CHROMIUM), args=args)
        yield chromium
        chromium.close()


def _shot(page, path: Path) -> None:
    page.screenshot(path=str(path))
    print(f"screenshot: {path}")
    folder = os.environ.get("BAKEOFF_ARTIFACTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, Path(folder) / path.name)


def _header(page, metric: str):
    return page.locator(f'.ag-header-cell[col-id="metrics.`{metric}`"]')


def _comparison_shown(page, shot) -> dict:
    """Wait for the saved view's table, close MLflow's assistant panel, keep a screenshot,
    read what the comparison shows, and close the page.

    Returns:
        `cut`: the deciding metrics whose header is outside the grid's visible width or
        truncated; `runs`: the run names in row order; `unlinked`: the backbones without
        both a run link and a model link.
    """
    _header(page, "test_accuracy").wait_for(timeout=60_000)
    _close_assistant(page)
    page.wait_for_timeout(500)
    _shot(page, shot)
    grid = page.locator(".ag-body-viewport").first.bounding_box()
    cut = []
    for metric in ("test_accuracy", "test_acc_lo", "test_acc_hi", "latency_ms_b1"):
        box = _header(page, metric).bounding_box()
        inside = box and box["x"] + box["width"] <= grid["x"] + grid["width"] + 1
        if not inside or _header(page, metric).inner_text().strip() != metric:
            cut.append(metric)
    # The grid places rows by their row-index, not by their order in the page.
    runs = page.eval_on_selector_all(
        '.ag-pinned-left-cols-container [row-index] [col-id="attributes.`Run Name`"] a',
        """links => links.map(a => [Number(a.closest('[row-index]').getAttribute('row-index')),
                                 a.innerText.trim()]).sort((x, y) => x[0] - y[0]).map(p => p[1])""",
    )
    unlinked = [b for b in BACKBONES
                if page.get_by_role("link", name=b, exact=True).count() < 2]  # fmt: skip
    page.close()
    return {"cut": cut, "runs": runs, "unlinked": unlinked}


# Test accuracy and its interval and latency whole on screen, the backbone runs only, best
# test accuracy first, each run's model linked by its backbone name.
COMPARISON = {"cut": [], "runs": BACKBONES[::-1], "unlinked": []}


def _close_assistant(page) -> None:
    """MLflow opens its assistant panel beside the page on a first visit; users close it."""
    close = page.locator('[data-testid="assistant-panel-close"], [aria-label="Close"]')
    if close.count():
        close.first.click()


def test_the_make_ui_link_opens_the_comparison(ui, browser, tmp_path):
    url, experiment_id = ui
    page = browser.new_page(viewport=VIEWPORT)
    page.goto(tracking.runs_page(url, experiment_id))
    assert _comparison_shown(page, tmp_path / "mlflow_runs_link.png") == COMPARISON


def _chart_titles(page) -> list[str]:
    """The titles of the chart cards the chart view shows, top to bottom, left to right."""
    cards = page.get_by_test_id("experiment-view-compare-runs-card")
    cards.first.wait_for(timeout=60_000)
    page.wait_for_timeout(1000)  # the cards of a section render together
    return [cards.nth(i).locator("h4").first.inner_text().strip() for i in range(cards.count())]


def test_the_chart_view_opens_on_the_deciding_charts(ui, browser, tmp_path):
    """The saved view's chart view: test accuracy, latency and size bars, then accuracy
    against latency; every other metric in a collapsed section below."""
    url, experiment_id = ui
    page = browser.new_page(viewport=VIEWPORT)
    page.goto(tracking.runs_page(url, experiment_id))
    _header(page, "test_accuracy").wait_for(timeout=60_000)
    _close_assistant(page)
    chart_mode = page.locator('input[name="runs-view-mode"][value="CHART"]')
    page.locator("label", has=chart_mode).click()
    titles = _chart_titles(page)
    _shot(page, tmp_path / "mlflow_charts_link.png")
    assert titles == ["test_accuracy", "latency_ms_b1", "size_mb",
                      "latency_ms_b1 vs. test_accuracy"]  # fmt: skip
    sections = page.get_by_test_id("experiment-view-compare-runs-section-header")
    assert sections.first.inner_text().startswith("Backbone comparison")
    assert sections.nth(1).inner_text().startswith("Model metrics")
    sections.nth(1).click()  # opens the section of the other metrics
    assert len(_chart_titles(page)) > 4
    page.close()


def test_from_the_root_one_click_on_the_experiment_shows_the_way_to_its_runs(ui, browser, tmp_path):
    """MLflow opens every experiment in the view of the browser's GenAI/Model training switch
    (GenAI at first, whatever the experiment's kind): one click on the experiment shows its
    description on top, whose link opens the comparison."""
    url, _ = ui
    context = browser.new_context(viewport=VIEWPORT)
    page = context.new_page()
    page.goto(url)
    page.get_by_role("link", name="bakeoff", exact=True).first.click()
    page.wait_for_url("**/experiments/**", timeout=60_000)
    link = page.get_by_role("link", name="open the comparison").locator("visible=true")
    link.wait_for(timeout=60_000)
    got_it = page.get_by_role("button", name="Got it")  # a first visit's feature tour
    if got_it.count():
        got_it.first.click()
    _shot(page, tmp_path / "mlflow_experiment_first_click.png")
    box = link.bounding_box()
    assert box and box["y"] < VIEWPORT["height"] / 3  # at the top, no scrolling
    with context.expect_page() as opened:  # MLflow opens description links in a new tab
        link.click()
    assert _comparison_shown(opened.value, tmp_path / "mlflow_runs_from_root.png") == COMPARISON
    context.close()
