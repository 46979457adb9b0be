"""Creating a child run (a tuning trial) exactly once: directly, or from a training run's
journal (`tracking.journal`), which may send the same entry again after an interruption."""

from __future__ import annotations

import time
from typing import Any

from bakeoff.tracking.store import mlflow_client


def create_child_run(
    parent_run_id: str,
    name: str,
    params: dict[str, Any],
    metrics: dict[str, float],
    tags: dict[str, str],
) -> str:
    """Create the child run `name` of `parent_run_id`, FINISHED, unless it exists already
    (a journal sent again after an interruption): each child once.

    MLflow's errors propagate: the journal's thread retries an outage, and `log_child_run`
    waits within the outage window; either may call again, hence the look-up first.

    Returns:
        The child run's id.
    """
    from mlflow.entities import Metric, Param
    from mlflow.utils.mlflow_tags import MLFLOW_PARENT_RUN_ID

    client = mlflow_client()
    parent = client.get_run(parent_run_id)
    experiment_id = parent.info.experiment_id
    found = client.search_runs(
        [experiment_id],
        f"tags.`{MLFLOW_PARENT_RUN_ID}` = '{parent_run_id}' and attributes.run_name = '{name}'",
    )
    if found and found[0].info.status == "FINISHED":
        return found[0].info.run_id
    if found:  # created, then the sending was cut short: log what it lacks, then end it
        run, logged = found[0], found[0].data
    else:
        all_tags = {**parent_tags(parent), **tags, MLFLOW_PARENT_RUN_ID: parent_run_id}
        run = client.create_run(experiment_id, run_name=name, tags=all_tags)
        logged = run.data
    run_id = run.info.run_id
    now = int(time.time() * 1000)
    items = [Metric(k, v, now, 0) for k, v in metrics.items() if k not in logged.metrics]
    flat = [Param(k, str(v)) for k, v in params.items() if k not in logged.params]
    if items or flat:
        client.log_batch(run_id, metrics=items, params=flat)
    client.set_terminated(run_id, "FINISHED")
    return run_id


def parent_tags(parent: Any) -> dict[str, str]:
    """The lineage tags a child run inherits from its parent run."""
    keep = ("backbone", "data_version", "git_commit", "git_dirty_files", "seed")
    return {k: v for k, v in parent.data.tags.items() if k in keep}
