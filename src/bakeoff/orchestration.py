"""What the Prefect flows need besides the stage functions: task runners, retries, logs, DVC.

Why the flows record their work with `dvc commit` instead of running `dvc repro`:
`dvc repro` takes a lock on the whole repository (treeverse/dvc#9805), so Prefect tasks
cannot each run `dvc repro <stage>` at the same time, and one `dvc repro` for everything
would leave Prefect nothing to schedule. So the tasks call the stage functions directly (the
backbones train concurrently, on threads, processes or a Dask cluster), and when all of them
have succeeded the flow runs one `dvc commit --force <the stages it ran>`. That hashes the
same deps, params and outs that `dvc repro` would have hashed and writes the same dvc.lock,
so afterwards `dvc status` finds nothing to do, which `record_in_dvc` checks.

Prefect is imported inside the functions: importing this module does nothing.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from bakeoff.config import OrchestrationParams
from bakeoff.errors import BakeoffError, TransientError, is_transient

log = logging.getLogger(__name__)

# The global concurrency limit that keeps two retrain runs from overlapping.
RETRAIN_LIMIT = "bakeoff-retrain"


def pipeline_stages(backbones: Iterable[str]) -> list[str]:
    """The dvc.yaml stage names of a full pipeline run, in order (matrix stages as `name@item`).

    Args:
        backbones: The backbones of the run (params.yaml `backbones`).

    Returns:
        The stage names `dvc commit` takes.
    """
    backbones = list(backbones)
    return [
        "ingest",
        "validate",
        "split",
        *(f"train@{b}" for b in backbones),
        *(f"evaluate@{b}" for b in backbones),
        "register",
        "export",
        "report",
    ]


def _dvc(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    # The CLI in a subprocess rather than dvc.repo.Repo in-process: DVC keeps repo state and
    # locks per process, and a flow process lives long and may run several projects.
    return subprocess.run(
        [sys.executable, "-m", "dvc", *args], cwd=root, capture_output=True, text=True
    )


def dvc_status(root: Path) -> dict[str, Any]:
    """`dvc status --json` of the project: empty when `dvc repro` has nothing to do.

    Args:
        root: The project directory (with dvc.yaml).

    Returns:
        The changed stages and what changed in them.
    """
    done = _dvc(root, "status", "--json")
    if done.returncode != 0:
        raise RuntimeError(f"dvc status failed in {root}: {done.stderr.strip()}")
    return json.loads(done.stdout or "{}")


def record_in_dvc(root: Path, stages: list[str]) -> None:
    """Record stages the flow ran in dvc.lock (`dvc commit --force`), then check `dvc status`.

    Args:
        root: The project directory (with dvc.yaml and .dvc/).
        stages: The stages whose functions have just run successfully.

    Raises:
        RuntimeError: dvc commit failed, or `dvc status` still reports work for `dvc repro`
            (e.g. a dependency changed while the flow ran).
    """
    root = Path(root)
    if not (root / ".dvc").is_dir():
        log.warning("%s is not a DVC project (no .dvc/): the run is not recorded in dvc.lock", root)
        return
    done = _dvc(root, "commit", "--force", *stages)
    if done.returncode != 0:
        raise RuntimeError(f"dvc commit failed in {root}: {done.stderr.strip()}")
    status = dvc_status(root)
    if status:
        raise RuntimeError(
            f"after dvc commit, `dvc status` still reports changes in {root}: "
            f"{json.dumps(status)}; run `dvc repro` to bring the pipeline up to date"
        )
    log.info("dvc.lock records %d stages; dvc status: up to date", len(stages))


def train_in_subprocess(backbone: str, root: Path) -> str:
    """Train one backbone in a fresh Python process, as `dvc repro` runs `bakeoff train`.

    TensorFlow's seeds and op determinism are process-wide: two backbones trained on threads
    of one process draw from one random state in an order the scheduler decides, so their
    metrics would differ from `dvc repro`'s. One process per training, whatever the task
    runner (threads, processes, Dask workers, which are daemonic and cannot start
    multiprocessing children), gives the same numbers bit for bit on one machine.

    Args:
        backbone: The backbone to train.
        root: The project directory (params.yaml, data/, models/).

    Returns:
        The training's result line.

    Raises:
        BakeoffError: The training failed for a reason the user must fix (its message).
        TransientError: It was killed by a signal (retried by the flow's tasks).
        RuntimeError: It crashed otherwise (the last lines of its output say how).
    """
    env = {**os.environ, "BAKEOFF_ROOT": str(root)}
    cmd = [sys.executable, "-m", "bakeoff.cli", "train", backbone]
    done = subprocess.run(cmd, cwd=root, env=env, capture_output=True, text=True)
    if done.returncode == 0:
        return (done.stdout.strip().splitlines() or [""])[-1]
    errors = [line for line in done.stderr.splitlines() if line.startswith("error: ")]
    if done.returncode == 1 and errors:
        raise BakeoffError(errors[-1].removeprefix("error: "))
    tail = "\n".join((done.stderr or done.stdout).strip().splitlines()[-20:])
    message = f"`bakeoff train {backbone}` exited with {done.returncode}:\n{tail}"
    if done.returncode < 0:  # killed by a signal (OOM killer, preemption): a retry resumes it
        raise TransientError(message)
    raise RuntimeError(message)


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
