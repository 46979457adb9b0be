"""MLflow runs: training runs, per-epoch metrics, artifacts, the report run."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bakeoff.errors import BakeoffError
from bakeoff.tracking.store import _client, configure, flatten, retrying, tracking_uri

if TYPE_CHECKING:
    from mlflow import MlflowClient

    from bakeoff.config import ReportParams, TrackingParams


def _run_exists(client: MlflowClient, run_id: str | None) -> bool:
    from mlflow.exceptions import MlflowException

    if not run_id:
        return False
    try:
        return client.get_run(run_id).info.lifecycle_stage == "active"
    except MlflowException:
        return False


def run_exists(run_id: str | None) -> bool:
    """Whether the store holds this (not deleted) run."""
    return _run_exists(_client(), run_id)


@contextmanager
def training_run(
    sections: dict[str, Any], backbone: str, run_id: str | None, tags: dict[str, str], root: Path
) -> Iterator[str]:
    """Start a run for one backbone (or resume `run_id`), ended FINISHED or FAILED.

    Args:
        sections: The params sections the training reads, by name (`train` as it applies
            to `backbone`, `tracking`, ...); logged flattened (`train.epochs`, ...) when the
            run is new. `tracking` picks the store.
        backbone: The backbone name (run name and tag).
        run_id: A run to resume (a crashed training); ignored when the store lacks it.
        tags: Extra run tags (data_version, ...); with `dvc_stage`, the run also records
            the hash of each of that stage's DVC dependencies (`lineage.run_lineage`).
        root: The project root (tracking store, git commit).

    Yields:
        The run id.
    """
    import mlflow
    from mlflow.entities import Param

    from bakeoff.lineage import run_lineage

    experiment_id = configure(sections["tracking"], root)
    client = _client()
    all_tags = {"backbone": backbone, **run_lineage(root, tags.get("dvc_stage")), **tags}
    resume = _run_exists(client, run_id)
    if resume:
        run = mlflow.start_run(run_id=run_id, tags=all_tags)
    else:
        run = mlflow.start_run(experiment_id=experiment_id, run_name=backbone, tags=all_tags)
    # From here the run is this thread's active run: any failure must end it, or a retry
    # in the same thread (a Prefect task on a Dask worker) finds it "already active".
    try:
        if not resume:
            flat = flatten(sections)
            items = [Param(k, v) for k, v in flat.items()]
            for start in range(0, len(items), 100):  # log_batch takes at most 100 params
                client.log_batch(run.info.run_id, params=items[start : start + 100])
        yield run.info.run_id
    except BaseException:
        mlflow.end_run(status="FAILED")
        raise
    mlflow.end_run(status="FINISHED")


def epoch_callback() -> Any:
    """A Keras callback logging every epoch's metrics, learning_rate included, step = epoch.

    It logs to the run active when training begins (inside `training_run`). A failure to
    log is not swallowed (MLflow's own callback turns it into a warning and the epoch's
    numbers are lost): a transient one is retried (`log_metrics`), then the training fails.
    """
    import keras
    import mlflow

    class EpochLogger(keras.callbacks.Callback):
        """Logs each epoch's metrics to the run active when training began."""

        def on_train_begin(self, logs=None):
            run = mlflow.active_run()
            if run is None:
                raise RuntimeError("epoch_callback() needs an active run: use training_run()")
            self.run_id = run.info.run_id

        def on_epoch_end(self, epoch, logs=None):
            metrics = {k: v for k, v in (logs or {}).items() if _is_number(v)}
            if "learning_rate" not in metrics:
                lr = self.model.optimizer.learning_rate
                metrics["learning_rate"] = float(keras.ops.convert_to_numpy(lr))
            log_metrics(metrics, self.run_id, step=epoch)

    return EpochLogger()


def _is_number(value: Any) -> bool:
    try:
        float(value)
    except (TypeError, ValueError):
        return False
    return True


def log_metrics(
    metrics: dict[str, float], run_id: str, step: int | None = None, model_uri: str | None = None
) -> None:
    """Log metrics to a run, active or finished (its status is left alone).

    Args:
        metrics: Name -> value.
        run_id: The run.
        step: The step (epoch); 0 when None.
        model_uri: A logged model (`models:/m-...`) the numbers also describe: MLflow 3
            shows them on that model's page too.
    """
    from mlflow.entities import Metric

    now = int(time.time() * 1000)
    model_id = None
    if model_uri and model_uri.startswith("models:/m-"):
        model_id = model_uri.removeprefix("models:/")
    items = [Metric(k, float(v), now, step or 0, model_id=model_id) for k, v in metrics.items()]
    retrying(lambda: _client().log_batch(run_id, metrics=items), f"log metrics to run {run_id}")


def log_artifacts(paths: list[Path], run_id: str, artifact_path: str | None = None) -> None:
    """Upload files (and folders, by name) to a run, active or finished."""
    client = _client()
    for path in map(Path, paths):
        if path.is_dir():
            sub = f"{artifact_path}/{path.name}" if artifact_path else path.name
            client.log_artifacts(run_id, str(path), sub)
        else:
            client.log_artifact(run_id, str(path), artifact_path)


def run_info(run_id: str) -> dict[str, Any]:
    """A run's status, params, metrics and tags, as plain dicts."""
    from mlflow.exceptions import MlflowException

    try:
        run = _client().get_run(run_id)
    except MlflowException as exc:
        raise BakeoffError(f"MLflow run {run_id} not found in {tracking_uri()}: {exc}") from None
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
    return mlflow.search_runs(
        experiment_ids=[experiment_id], filter_string=filter_string, order_by=order_by
    )


def log_report(
    params: ReportParams,
    settings: TrackingParams,
    paths: list[Path],
    per_run: dict[str, dict[str, float]],
    root: Path,
) -> str:
    """Log the comparison report to a run of its own, named `report` (tag stage=report).

    Args:
        params: The report section, logged as the run's params.
        settings: The tracking section (picks the store).
        paths: The report files and figures, logged under the `report/` artifact folder.
        per_run: Numbers the report adds to each backbone's run (run id -> metrics, e.g.
            `test_accuracy_ci_low`): logged there, so the runs list shows each backbone's
            interval in its own row instead of a column per backbone on the report run.
        root: The project root (tracking store, git commit).

    Returns:
        The run id.
    """
    from mlflow.entities import Param

    from bakeoff.lineage import run_lineage

    experiment_id = configure(settings, root)
    client = _client()
    for backbone_run, numbers in per_run.items():
        if not _run_exists(client, backbone_run):
            raise BakeoffError(
                f"the training run {backbone_run} the report describes is not in the MLflow "
                f"store {tracking_uri()}: point MLFLOW_TRACKING_URI at the store the backbones "
                "were trained and evaluated with"
            )
        log_metrics(numbers, backbone_run)
    tags = {"stage": "report", "dvc_stage": "report", **run_lineage(root, "report")}
    run = client.create_run(experiment_id, run_name="report", tags=tags)
    run_id = run.info.run_id
    try:
        client.log_batch(
            run_id, params=[Param(k, v) for k, v in flatten(params, "report.").items()]
        )
        log_artifacts(paths, run_id, "report")
    except BaseException:
        client.set_terminated(run_id, status="FAILED")
        raise
    client.set_terminated(run_id, status="FINISHED")
    return run_id


def log_history(rows: list[dict[str, float]], run_id: str) -> None:
    """Log per-epoch rows (`epoch` 1-based, the rest metrics) at step = epoch - 1, batched."""
    from mlflow.entities import Metric

    now = int(time.time() * 1000)
    items = [
        Metric(k, float(v), now, int(row["epoch"]) - 1)
        for row in rows
        for k, v in row.items()
        if k not in ("epoch", "phase") and _is_number(v)
    ]
    client = _client()
    for start in range(0, len(items), 1000):  # log_batch takes at most 1000 metrics
        client.log_batch(run_id, metrics=items[start : start + 1000])


def log_child_run(
    parent_run_id: str,
    name: str,
    params: dict[str, Any],
    metrics: dict[str, float],
    tags: dict[str, str] | None = None,
) -> str:
    """A finished child run of `parent_run_id` (e.g. one tuning trial), in its experiment.

    Returns:
        The child run's id.
    """
    from mlflow.entities import Metric, Param
    from mlflow.utils.mlflow_tags import MLFLOW_PARENT_RUN_ID

    client = _client()
    parent = client.get_run(parent_run_id)
    all_tags = {**parent_tags(parent), **(tags or {}), MLFLOW_PARENT_RUN_ID: parent_run_id}
    run = client.create_run(parent.info.experiment_id, run_name=name, tags=all_tags)
    now = int(time.time() * 1000)
    try:
        client.log_batch(
            run.info.run_id,
            metrics=[Metric(k, float(v), now, 0) for k, v in metrics.items() if _is_number(v)],
            params=[Param(k, str(v)) for k, v in params.items()],
        )
    except BaseException:
        client.set_terminated(run.info.run_id, status="FAILED")
        raise
    client.set_terminated(run.info.run_id, status="FINISHED")
    return run.info.run_id


def parent_tags(parent: Any) -> dict[str, str]:
    """The lineage tags a child run inherits from its parent run."""
    keep = ("backbone", "data_version", "git_commit", "git_dirty_files", "seed")
    return {k: v for k, v in parent.data.tags.items() if k in keep}


def set_tags(tags: dict[str, str], run_id: str) -> None:
    """Tag a run, active or finished."""
    from mlflow.entities import RunTag

    _client().log_batch(run_id, tags=[RunTag(k, str(v)) for k, v in tags.items()])
