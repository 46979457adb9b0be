"""MLflow runs: the training run (journaled metrics), run reads, artifacts and tags.

A training run's metrics and tags go through its journal (`tracking.journal`): written to
disk, sent behind the training, so a tracking outage neither stalls nor loses them. Other
calls wait for an absent server within the outage window (`tracking.outage`).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bakeoff.errors import BakeoffError
from bakeoff.tracking import outage
from bakeoff.tracking.journal import Journal
from bakeoff.tracking.store import configure, flatten, mlflow_client, tracking_uri

if TYPE_CHECKING:
    from bakeoff.config.params import TrackingParams

# run id -> the journal of a training run in progress (its metrics and tags go there).
JOURNALS: dict[str, Journal] = {}
# The training run of this thread (the epoch callback logs to it).
CURRENT = threading.local()


def run_exists(run_id: str | None) -> bool:
    """Whether the store holds this (not deleted) run.

    False only when MLflow says the run does not exist (or it was deleted); a failed read
    is waited for within the outage window, then raised (`TrackingUnavailable`).
    """
    if not run_id:
        return False
    client = mlflow_client()
    run = outage.read(lambda: client.get_run(run_id), f"read run {run_id}")
    return run is not None and run.info.lifecycle_stage == "active"


def _start(
    sections: dict[str, Any],
    experiment_id: str,
    backbone: str,
    run_id: str | None,
    tags: dict[str, str],
) -> str:
    """Resume `run_id` (status RUNNING again), or create the run and log its params."""
    from mlflow.entities import Param, RunTag

    client = mlflow_client()
    if run_exists(run_id):
        outage.call(lambda: client.update_run(run_id, status="RUNNING"), f"resume run {run_id}")
        items = [RunTag(k, str(v)) for k, v in tags.items()]
        outage.call(lambda: client.log_batch(run_id, tags=items), f"tag run {run_id}")
        return run_id
    run = outage.call(
        lambda: client.create_run(experiment_id, run_name=backbone, tags=tags),
        f"start a run for {backbone}",
    )
    new = run.info.run_id
    flat = flatten(sections)
    items = [Param(k, v) for k, v in flat.items()]
    with ended_failed_on_error(new):
        for start in range(0, len(items), 100):  # log_batch takes at most 100 params
            chunk = items[start : start + 100]
            outage.call(lambda c=chunk: client.log_batch(new, params=c), f"log params of {new}")
    return new


def _terminate(run_id: str, status: str) -> None:
    client = mlflow_client()
    outage.call(lambda: client.set_terminated(run_id, status=status), f"end run {run_id}")


@contextmanager
def ended_failed_on_error(run_id: str) -> Iterator[None]:
    """End `run_id` FAILED when the block raises; not when the tracking server is away
    (`TrackingUnavailable`: it cannot be told, and the window has been waited out once)."""
    try:
        yield
    except outage.TrackingUnavailable:
        raise
    except BaseException:
        _terminate(run_id, "FAILED")
        raise


@contextmanager
def training_run(
    sections: dict[str, Any],
    backbone: str,
    run_id: str | None,
    tags: dict[str, str],
    root: Path,
    journal: Path | None = None,
) -> Iterator[str]:
    """Start a run for one backbone (or resume `run_id`), ended FINISHED or FAILED.

    Args:
        sections: The params sections the training reads, by name (`train` as it applies
            to `backbone`, `tracking`, ...); logged flattened (`train.epochs`, ...) when the
            run is new. `tracking` picks the store.
        backbone: The backbone name (run name and tag).
        run_id: A run to resume (a crashed training); a new run when the store says it does
            not exist. A failed read is an outage or an error, never a new run.
        tags: Extra run tags (data_version, ...); with `dvc_stage`, the run also records
            that stage's dvc.lock entry (its dependencies' hashes) as the artifact
            `lineage/dvc.lock.yaml`.
        root: The project root (tracking store, git commit).
        journal: Where the run's metrics and tags are journaled before MLflow receives them
            (default: a file in a temporary folder, lost with the process).

    Yields:
        The run id.

    Raises:
        TrackingUnavailable: The server stayed away longer than `tracking.outage_timeout`;
            the run is left RUNNING and its journal on disk, for the rerun to complete.
    """
    import tempfile

    from bakeoff.lineage import run_lineage, stage_lock

    experiment_id = configure(sections["tracking"], root)
    all_tags = {"backbone": backbone, **run_lineage(root), **tags}
    run_id = _start(sections, experiment_id, backbone, run_id, all_tags)
    if lock := (stage_lock(root, tags["dvc_stage"]) if tags.get("dvc_stage") else None):
        log_lock(lock, run_id)
    with tempfile.TemporaryDirectory() as tmp:
        book = Journal(journal or Path(tmp) / "journal.jsonl", run_id)
        JOURNALS[run_id], CURRENT.run_id = book, run_id
        try:
            # The server away: the run stays RUNNING until the rerun completes it.
            with ended_failed_on_error(run_id):
                yield run_id
                book.flush()
        finally:
            book.close()
            JOURNALS.pop(run_id, None)
            CURRENT.run_id = None
    _terminate(run_id, "FINISHED")


def log_metrics(
    metrics: dict[str, float], run_id: str, step: int | None = None, model_uri: str | None = None
) -> None:
    """Log metrics to a run, active or finished (its status is left alone).

    A training run in progress journals them (sent behind, see `tracking.journal`).

    Args:
        metrics: Name -> value.
        run_id: The run.
        step: The step (epoch); 0 when None.
        model_uri: A logged model (`models:/m-...`) the numbers also describe: MLflow 3
            shows them on that model's page too.
    """
    from mlflow.entities import Metric

    model_id = None
    if model_uri and model_uri.startswith("models:/m-"):
        model_id = model_uri.removeprefix("models:/")
    if run_id in JOURNALS:
        JOURNALS[run_id].metrics({k: float(v) for k, v in metrics.items()}, step or 0, model_id)
        return
    now = int(time.time() * 1000)
    items = [Metric(k, float(v), now, step or 0, model_id=model_id) for k, v in metrics.items()]
    client = mlflow_client()
    outage.call(lambda: client.log_batch(run_id, metrics=items), f"log metrics to run {run_id}")


def log_lock(lock: str, run_id: str) -> None:
    """A stage's dvc.lock entry (`lineage.stage_lock`) as the run's `lineage/dvc.lock.yaml`."""
    client = mlflow_client()
    what = f"log the DVC lineage of run {run_id}"
    outage.call(lambda: client.log_text(run_id, lock, "lineage/dvc.lock.yaml"), what)


def log_artifacts(paths: list[Path], run_id: str, artifact_path: str | None = None) -> None:
    """Upload files (and folders, by name) to a run, active or finished."""
    client = mlflow_client()
    for path in map(Path, paths):
        if path.is_dir():
            sub = f"{artifact_path}/{path.name}" if artifact_path else path.name
            outage.call(
                lambda p=path, s=sub: client.log_artifacts(run_id, str(p), s), f"upload {path}"
            )
        else:
            outage.call(
                lambda p=path: client.log_artifact(run_id, str(p), artifact_path), f"upload {path}"
            )


def run_info(run_id: str) -> dict[str, Any]:
    """A run's status, params, metrics and tags, as plain dicts."""
    client = mlflow_client()
    run = outage.read(lambda: client.get_run(run_id), f"read run {run_id}")
    if run is None:
        raise BakeoffError(f"MLflow run {run_id} not found in {tracking_uri()}")
    return {
        "run_id": run.info.run_id,
        "status": run.info.status,
        "params": dict(run.data.params),
        "metrics": dict(run.data.metrics),
        "tags": dict(run.data.tags),
    }


def search_runs(
    params: TrackingParams, root: Path, order_by: list[str] | None = None, filter_string: str = ""
):
    """The experiment's runs as a DataFrame, best first per `order_by`.

    Args:
        params: The tracking section (experiment name).
        root: The project root (tracking store).
        order_by: e.g. `["metrics.test_accuracy DESC"]`.
        filter_string: An MLflow filter, e.g. `"attributes.status = 'FINISHED'"`.

    Returns:
        A pandas DataFrame (`run_id`, `status`, `params.*`, `metrics.*`, `tags.*`).
    """
    import mlflow

    experiment_id = configure(params, root)
    return outage.call(
        lambda: mlflow.search_runs(
            experiment_ids=[experiment_id], filter_string=filter_string, order_by=order_by
        ),
        "search runs",
    )


def set_tags(tags: dict[str, str], run_id: str) -> None:
    """Tag a run, active or finished (a training run in progress journals them)."""
    from mlflow.entities import RunTag

    if run_id in JOURNALS:
        JOURNALS[run_id].tags(tags)
        return
    items = [RunTag(k, str(v)) for k, v in tags.items()]
    client = mlflow_client()
    outage.call(lambda: client.log_batch(run_id, tags=items), f"tag run {run_id}")
