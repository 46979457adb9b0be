"""Prefect's side of the flows: task runners, the retry condition, log routing, the
retrain concurrency limit.

Prefect is imported inside the functions: importing this module does nothing.
"""

from __future__ import annotations

import contextlib
import logging
from typing import Any

from bakeoff.config.params import OrchestrationParams
from bakeoff.errors import is_transient

# The global concurrency limit that keeps two retrain runs from overlapping.
RETRAIN_LIMIT = "bakeoff-retrain"


def build_task_runner(params: OrchestrationParams) -> Any:
    """The Prefect task runner params.yaml `orchestration` asks for.

    `thread` trains the backbones on threads of the flow process, `process` in a pool of
    worker processes (Prefect's ProcessPoolTaskRunner), `dask` on a Dask cluster: the one at
    `dask_address` (several machines), else a LocalCluster with `max_workers` processes.

    Args:
        params: The orchestration section of params.yaml.

    Returns:
        A task runner for `flow.with_options(task_runner=...)`.
    """
    from prefect.task_runners import ProcessPoolTaskRunner, ThreadPoolTaskRunner

    if params.task_runner == "thread":
        return ThreadPoolTaskRunner(max_workers=params.max_workers)
    if params.task_runner == "process":
        return ProcessPoolTaskRunner(max_workers=params.max_workers)
    from prefect_dask import DaskTaskRunner

    if params.dask_address:
        return DaskTaskRunner(address=params.dask_address)
    return DaskTaskRunner(cluster_kwargs=local_cluster_kwargs(params))


def local_cluster_kwargs(params: OrchestrationParams) -> dict[str, Any]:
    """A Dask LocalCluster on loopback only: Dask's dashboard binds every interface by
    default (0.0.0.0:8787), and neither it nor plain `tcp://` has any authentication."""
    return {
        "n_workers": params.max_workers,
        "threads_per_worker": 1,
        "host": "127.0.0.1",
        "dashboard_address": "127.0.0.1:8787",  # another free port if that one is taken
    }


def retry_if_transient(task: Any, task_run: Any, state: Any) -> bool:
    """Prefect `retry_condition_fn`: retry only what may pass the next time.

    A dropped connection, a locked database or a busy file may (`errors.is_transient`). A
    BakeoffError (bad params, bad images, missing weights) or a programming error fails the
    same way every time: retrying it only delays the message the user needs.
    """
    try:
        state.result()
    except Exception as exc:
        return is_transient(exc)
    return False


def route_logs_to_prefect(logger_name: str = "bakeoff") -> None:
    """Send the stage modules' `logging` records to the Prefect run logs (the UI).

    Does what PREFECT_LOGGING_EXTRA_LOGGERS=bakeoff does at Prefect's start-up, also when
    Prefect was imported before that variable was set (and in Dask or process workers).
    """
    target = logging.getLogger(logger_name)
    for handler in logging.getLogger("prefect.extra").handlers:
        if handler not in target.handlers:
            target.addHandler(handler)
    if target.level == logging.NOTSET:
        target.setLevel(logging.INFO)


def ensure_concurrency_limit(name: str = RETRAIN_LIMIT, limit: int = 1) -> None:
    """Create the Prefect global concurrency limit `name` when the server does not have it.

    `concurrency()` without a limit on the server does not limit anything, so the flow
    creates it first (an existing limit, maybe changed by an operator, is left as it is).
    """
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate
    from prefect.exceptions import ObjectAlreadyExists, ObjectNotFound

    with get_client(sync_client=True) as client:
        try:
            client.read_global_concurrency_limit_by_name(name)
        except ObjectNotFound:
            # Another run may create it in between.
            with contextlib.suppress(ObjectAlreadyExists):
                client.create_global_concurrency_limit(
                    GlobalConcurrencyLimitCreate(name=name, limit=limit)
                )
