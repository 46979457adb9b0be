"""Resuming a crashed training: the run it continues, when its inputs are the same.

State that must survive `kill -9` (the MLflow run id, Keras's BackupAndRestore backups, the
per-epoch history, the best checkpoint) lives in the seed's state_dir. A new attempt resumes
it only when the fingerprint of its inputs matches; otherwise that state is stale and removed.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import shutil
from pathlib import Path

from bakeoff.config.params import TrainParams


def fingerprint(backbone: str, recipe: TrainParams, trials: int, version: str) -> str:
    """What a resumed run must share with the crashed one (else it starts afresh)."""
    text = json.dumps(
        [backbone, dataclasses.asdict(recipe), trials, version], sort_keys=True, default=str
    )
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def resume_state(state_dir: Path, fingerprint: str) -> str | None:
    """The run id of a crashed run with the same inputs; stale state is removed."""
    run_file = state_dir / "run.json"
    if run_file.is_file():
        saved = json.loads(run_file.read_text())
        if saved.get("fingerprint") == fingerprint:
            return saved.get("run_id")
    shutil.rmtree(state_dir, ignore_errors=True)
    return None


def save_run_state(state_dir: Path, run_id: str, fingerprint: str) -> None:
    """Record the run a crash would resume (state_dir/run.json), as soon as it exists."""
    (state_dir / "run.json").write_text(json.dumps({"run_id": run_id, "fingerprint": fingerprint}))
