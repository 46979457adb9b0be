"""Runs that are not trainings: the report's run and a training's child runs (trials)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bakeoff.errors import BakeoffError
from bakeoff.tracking import outage
from bakeoff.tracking.child_runs import create_child_run
from bakeoff.tracking.epochs import is_number
from bakeoff.tracking.runs import (
    JOURNALS,
    ended_failed_on_error,
    log_artifacts,
    log_lock,
    log_metrics,
    run_exists,
    set_tags,
)
from bakeoff.tracking.store import configure, flatten, mlflow_client, tracking_uri
from bakeoff.tracking.view import OTHER_COLOR, run_color

if TYPE_CHECKING:
    from bakeoff.config.params import TrackingParams


def _finish(run_id: str, *steps: Callable[[], Any]) -> None:
    """Run `steps` (each waited for within the outage window), then end the run FINISHED;
    FAILED when a step fails."""
    client = mlflow_client()
    with ended_failed_on_error(run_id):
        for step in steps:
            outage.call(step, f"log to run {run_id}")
    outage.call(lambda: client.set_terminated(run_id, status="FINISHED"), f"end run {run_id}")


def log_report(
    params: Any,
    settings: TrackingParams,
    paths: list[Path],
    per_run: dict[str, dict[str, float]],
    root: Path,
    metrics: dict[str, float] | None = None,
) -> str:
    """Log the comparison report to a run of its own, named `report` (tag stage=report).

    Args:
        params: The report's settings (a dataclass), logged as the run's params.
        settings: The tracking section (picks the store).
        paths: The report files and figures, logged under the `report/` artifact folder.
        per_run: Numbers the report adds to each backbone's run (run id -> metrics, e.g.
            `test_acc_lo`): logged there, so the runs list shows each backbone's
            interval in its own row instead of a column per backbone on the report run.
        root: The project root (tracking store, git commit).
        metrics: Numbers of the report run itself (e.g. `label_issues`, the images that
            look mislabelled).

    Returns:
        The run id.
    """
    import time

    from mlflow.entities import Metric, Param

    from bakeoff.lineage import run_lineage, stage_lock

    experiment_id = configure(settings, root)
    client = mlflow_client()
    for backbone_run in per_run:
        if not run_exists(backbone_run):
            raise BakeoffError(
                f"the training run {backbone_run} the report describes is not in the MLflow "
                f"store {tracking_uri()}: point MLFLOW_TRACKING_URI at the store the backbones "
                "were trained and evaluated with"
            )
    for index, (backbone_run, numbers) in enumerate(per_run.items()):
        log_metrics(numbers, backbone_run)
        set_tags(run_color(index), backbone_run)  # distinct colours in the compared order
    tags = {"stage": "report", "dvc_stage": "report", **run_lineage(root), **OTHER_COLOR}
    run = outage.call(
        lambda: client.create_run(experiment_id, run_name="report", tags=tags),
        "start the report run",
    )
    run_id = run.info.run_id
    flat = [Param(k, v) for k, v in flatten(params, "report.").items()]
    lock = stage_lock(root, "report")
    now = int(time.time() * 1000)
    numbers = [Metric(k, float(v), now, 0) for k, v in (metrics or {}).items()]
    _finish(
        run_id,
        lambda: client.log_batch(run_id, params=flat, metrics=numbers),
        lambda: log_artifacts(paths, run_id, "report"),
        lambda: log_lock(lock, run_id) if lock else None,
    )
    return run_id


def log_child_run(
    parent_run_id: str,
    name: str,
    params: dict[str, Any],
    metrics: dict[str, float],
    tags: dict[str, str] | None = None,
) -> None:
    """A finished child run of `parent_run_id` (e.g. one tuning trial), in its experiment.

    A training run in progress journals it (`tracking.journal`): the child is created behind
    the training, so a tracking outage does not stall the tuning, and a rerun after an
    outage beyond the window creates what the server did not receive. Otherwise it is
    created now, waiting for an absent server within the outage window.
    """
    numbers = {k: float(v) for k, v in metrics.items() if is_number(v)}
    if parent_run_id in JOURNALS:
        JOURNALS[parent_run_id].child(name, params, numbers, tags or {})
        return
    outage.call(
        lambda: create_child_run(parent_run_id, name, params, numbers, tags or {}),
        f"log child run {name} of run {parent_run_id}",
    )
