"""A training in a fresh Python process, its failure carried back as data.

The child is the `bakeoff` CLI itself. When `BAKEOFF_ERROR_FILE` names a file, the CLI's
error handler writes what went wrong there as JSON (`record_error`): which kind of failure,
the exception's type and message, and for a crash its traceback. The parent reads that file
and the exit code (`train_in_subprocess`); it never parses the child's stderr, which also
carries TensorFlow's and Keras's own output.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import traceback
from pathlib import Path
from typing import Literal

from bakeoff.errors import BakeoffError, TransientError, is_transient

ERROR_FILE_ENV = "BAKEOFF_ERROR_FILE"
Kind = Literal["user", "transient", "crash"]


def record_error(exc: BaseException) -> None:
    """Write `exc` to the file `BAKEOFF_ERROR_FILE` names (nothing when it names none).

    Args:
        exc: The exception that ends the command.
    """
    target = os.environ.get(ERROR_FILE_ENV)
    if not target:
        return
    kind: Kind = (
        "user" if isinstance(exc, BakeoffError) else "transient" if is_transient(exc) else "crash"
    )
    record = {
        "kind": kind,
        "type": type(exc).__name__,
        "message": str(exc),
        "traceback": "" if kind == "user" else "".join(traceback.format_exception(exc)),
    }
    Path(target).write_text(json.dumps(record))


def _read_error(path: Path) -> dict | None:
    """The child's error record; None only when it wrote none (the file does not exist)."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        return None
    return json.loads(text) if text else None


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
        TransientError: It was killed by a signal, or failed in a way that may pass (a
            dropped connection...): the flow's tasks retry it, and a retry resumes it.
        RuntimeError: It crashed otherwise (its exception and traceback say how).
    """
    cmd = [sys.executable, "-m", "bakeoff.cli", "train", backbone]
    with tempfile.TemporaryDirectory(prefix="bakeoff-train-") as tmp:
        error_file = Path(tmp) / "error.json"
        env = {**os.environ, "BAKEOFF_ROOT": str(root), ERROR_FILE_ENV: str(error_file)}
        done = subprocess.run(cmd, cwd=root, env=env, capture_output=True, text=True)
        record = _read_error(error_file)
    if done.returncode == 0:
        return (done.stdout.strip().splitlines() or [""])[-1]
    what = f"`bakeoff train {backbone}` exited with {done.returncode}"
    if done.returncode < 0:  # killed by a signal (OOM killer, preemption): a retry resumes it
        raise TransientError(f"{what} (killed by signal {-done.returncode})")
    if record is None:  # it died before its error handler ran (e.g. in interpreter start-up)
        tail = "\n".join((done.stderr or done.stdout).strip().splitlines()[-20:])
        raise RuntimeError(f"{what} and recorded no error; its output ends:\n{tail}")
    if record["kind"] == "user":
        raise BakeoffError(record["message"])
    message = f"{what}: {record['type']}: {record['message']}\n{record['traceback']}"
    if record["kind"] == "transient":
        raise TransientError(message)
    raise RuntimeError(message)
