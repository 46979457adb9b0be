"""The flows' DVC bookkeeping: stage names, `dvc status`, and `dvc commit` of a flow's work.

Why the flows record their work with `dvc commit` instead of running `dvc repro`:
`dvc repro` takes a lock on the whole repository (treeverse/dvc#9805), so Prefect tasks
cannot each run `dvc repro <stage>` at the same time, and one `dvc repro` for everything
would leave Prefect nothing to schedule. So the tasks call the stage functions directly (the
backbones train concurrently, on threads, processes or a Dask cluster), and when all of them
have succeeded the flow runs one `dvc commit --force <the stages it ran>`. That hashes the
same deps, params and outs that `dvc repro` would have hashed and writes the same dvc.lock,
so afterwards `dvc status` finds nothing to do, which `record_in_dvc` checks.
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


def pipeline_stages(root: Path) -> list[str]:
    """The stages of a full pipeline run, as dvc.yaml orders them (read by DVC's own API).

    dvc.yaml is the one place the stage order is written: matrix stages come expanded
    (`train@<backbone>`, one per entry of params.yaml `backbones`), as `dvc commit` takes them.

    Args:
        root: The project directory (with dvc.yaml and params.yaml).

    Returns:
        The stage names, in dvc.yaml's order.
    """
    from dvc.repo import Repo

    with Repo(str(root)) as repo:
        return [stage.name for stage in repo.index.stages]


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
