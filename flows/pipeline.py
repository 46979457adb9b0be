"""Prefect flow `bakeoff-pipeline`: the DVC pipeline as Prefect tasks, backbones in parallel.

Each task is a thin adapter around the stage function the CLI calls, with the same
arguments (`bakeoff.config.wiring.stage_kwargs`, for the project at `root`). The backbones train
concurrently on the task runner params.yaml `orchestration` names (threads, processes or a
Dask cluster); then each is evaluated in turn in the flow's own process, so latencies are
measured alike and unloaded. When every stage has succeeded, one `dvc commit` records the
run in dvc.lock, so `dvc status` is clean afterwards (see `bakeoff.orchestration.dvc` for why
not `dvc repro`).

    python flows/pipeline.py            # run once, against $PREFECT_API_URL or a temporary server
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

# Before Prefect is imported: its logging set-up reads this (stage modules log to `bakeoff`).
os.environ.setdefault("PREFECT_LOGGING_EXTRA_LOGGERS", "bakeoff")

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE
from prefect.futures import wait

from bakeoff import tracking
from bakeoff.config.layout import ProjectPaths, project_paths
from bakeoff.config.params import Params, load_params
from bakeoff.config.wiring import stage_kwargs
from bakeoff.console import set_tensorflow_env
from bakeoff.errors import BakeoffError
from bakeoff.lineage import data_version
from bakeoff.orchestration import dvc as pipeline_dvc
from bakeoff.orchestration import processes, runners

# Before TensorFlow starts (nothing above imports it; evaluate runs in this process): as the
# `bakeoff` CLI runs it.
set_tensorflow_env()

# DVC decides what is up to date, not Prefect's cache. Transient failures (a busy disk, an
# MLflow server restarting) are retried; training resumes from its last completed epoch.
_TASK = {
    "cache_policy": NO_CACHE,
    "retries": 2,
    "retry_delay_seconds": 10,
    "retry_condition_fn": runners.retry_if_transient,
}


@task(name="ingest", task_run_name="ingest", **_TASK)
def ingest_task(params: Params, paths: ProjectPaths) -> str:
    """Copy the source images into data/raw."""
    from bakeoff.data.ingest import ingest

    runners.route_logs_to_prefect()
    result = ingest(**stage_kwargs(paths, params=params)["ingest"])
    get_run_logger().info("%s", result)
    return str(result)


@task(name="validate", task_run_name="validate", **_TASK)
def validate_task(params: Params, paths: ProjectPaths) -> str:
    """Validate data/raw; on failure publish the validation summary as an artifact.

    Returns:
        The data version of the accepted images.
    """
    from bakeoff.data.validate import validate

    runners.route_logs_to_prefect()
    try:
        result = validate(**stage_kwargs(paths, params=params)["validate"])
    except BakeoffError as exc:
        summary = getattr(exc, "result", None)
        if summary is not None:
            create_markdown_artifact(
                key="validation-summary",
                markdown=summary.summary_markdown(),
                description=f"Validation failed: {exc}",
            )
        raise
    get_run_logger().info("%s", result)
    return data_version(paths.accepted_manifest)


@task(name="split", task_run_name="split", **_TASK)
def split_task(params: Params, paths: ProjectPaths) -> str:
    """Split the accepted images into train/val/test manifests."""
    from bakeoff.data.split import split

    runners.route_logs_to_prefect()
    result = split(**stage_kwargs(paths, params=params)["split"])
    get_run_logger().info("%s", result)
    return str(result)


@task(name="train", task_run_name="train-{backbone}", **_TASK)
def train_task(backbone: str, params: Params, paths: ProjectPaths) -> str:
    """Train one backbone (resumable: a retry continues from the last completed epoch).

    In a process of its own, as `dvc repro` trains it: the same metrics, bit for bit,
    whatever the task runner (see `processes.train_in_subprocess`).
    """
    runners.route_logs_to_prefect()
    result = processes.train_in_subprocess(backbone, paths.root)
    get_run_logger().info("%s", result)
    return result


@task(name="evaluate", task_run_name="evaluate-{backbone}", **_TASK)
def evaluate_task(backbone: str, params: Params, paths: ProjectPaths) -> str:
    """Measure one trained backbone: test accuracy, F1, size, latency."""
    from bakeoff.evaluate.stage import evaluate

    runners.route_logs_to_prefect()
    result = evaluate(backbone, **stage_kwargs(paths, backbone, params)["evaluate"])
    get_run_logger().info("%s", result)
    return str(result)


@task(name="register", task_run_name="register", **_TASK)
def register_task(params: Params, paths: ProjectPaths) -> str:
    """Register the best backbone; `champion` moves only when it beats the current one."""
    from bakeoff.register.stage import register

    runners.route_logs_to_prefect()
    decision = register(**stage_kwargs(paths, params=params)["register"])
    get_run_logger().info("%s", decision)
    return str(decision)


@task(name="export", task_run_name="export", **_TASK)
def export_task(params: Params, paths: ProjectPaths) -> str:
    """The champion as TFLite variants, each re-evaluated on the test split."""
    from bakeoff.export.stage import export

    runners.route_logs_to_prefect()
    result = export(backbone=None, **stage_kwargs(paths, params=params)["export"])
    get_run_logger().info("%s", result)
    return str(result)


@task(name="report", task_run_name="report", **_TASK)
def report_task(params: Params, paths: ProjectPaths) -> str:
    """Write the comparison report."""
    from bakeoff.report.stage import report

    runners.route_logs_to_prefect()
    out = report(**stage_kwargs(paths, params=params)["report"])
    get_run_logger().info("%s", out)
    return str(out)


@task(name="dvc-commit", task_run_name="dvc-commit", cache_policy=NO_CACHE)
def dvc_commit_task(root: Path, stages: list[str]) -> None:
    """Record the stages in dvc.lock as `dvc repro` would, and check `dvc status` is clean."""
    runners.route_logs_to_prefect()
    pipeline_dvc.record_in_dvc(root, stages)


@flow(name="bakeoff-pipeline", log_prints=True)
def bakeoff_pipeline(root: str | None = None, data_ready: bool = False) -> dict[str, Any]:
    """ingest -> validate -> split -> train + evaluate per backbone -> register -> export
    -> report.

    Args:
        root: The project directory (default: bakeoff's project root).
        data_ready: ingest and validate already ran (the retrain flow did them to compute
            the data version), so start at split.

    Returns:
        The data version and the stages recorded in dvc.lock.
    """
    paths = project_paths(root)
    params = load_params(paths.params_file)
    stages = pipeline_dvc.pipeline_stages(paths.root)
    if data_ready:
        version = data_version(paths.accepted_manifest)
    else:
        ingest_task(params, paths)
        version = validate_task(params, paths)
    print(f"data version {version}; backbones: {', '.join(params.backbones)}")
    split_task(params, paths)
    # The trainings start at once, each in a process of its own: two processes creating a
    # fresh sqlite store together race on its schema migration. Create it once, here.
    tracking.configure(params.tracking, paths.root)
    trainings = [train_task.submit(backbone, params, paths) for backbone in params.backbones]
    wait(trainings)  # let every backbone finish (or save its resumable state) before failing
    for future in trainings:
        future.result()  # raises the first failure: nothing is evaluated or registered
    # One at a time, in this process, once training is over: every backbone's latency is
    # measured on the same machine with no training competing for its cores.
    for backbone in params.backbones:
        evaluate_task(backbone, params, paths)
    register_task(params, paths)
    export_task(params, paths)
    report_task(params, paths)
    dvc_commit_task(paths.root, stages)
    return {"data_version": version, "stages": stages}


def run_pipeline(
    root: str | Path | None = None, data_ready: bool = False, return_state: bool = False
) -> Any:
    """Run the flow on the task runner params.yaml `orchestration` chooses.

    Args:
        root: The project directory (default: bakeoff's project root).
        data_ready: See `bakeoff_pipeline`.
        return_state: Return the flow run's final state instead of raising on failure.

    Returns:
        What the flow returns (or its state).
    """
    paths = project_paths(root)
    runner = runners.build_task_runner(load_params(paths.params_file).orchestration)
    return bakeoff_pipeline.with_options(task_runner=runner)(
        root=str(paths.root), data_ready=data_ready, return_state=return_state
    )


if __name__ == "__main__":
    from bakeoff.console import filtered_stderr

    with filtered_stderr():  # TensorFlow's unactionable C++ lines
        print(run_pipeline())
