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

from bakeoff.backbone.features import cached_head
from bakeoff.config.params import TrainParams
from bakeoff.train.history import read_history

PHASE1_DONE = "phase1.weights.h5"  # the model phase 1 ended with: a crash in phase 2 keeps it


def fingerprint(backbone: str, recipe: TrainParams, trials: int, version: str) -> str:
    """What a resumed run must share with the crashed one (else it starts afresh)."""
    text = json.dumps(
        [backbone, dataclasses.asdict(recipe), trials, version], sort_keys=True, default=str
    )
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def resume_state(state_dir: Path, fingerprint: str) -> str | None:
    """The run id of a crashed run with the same inputs; stale state is removed."""
    saved = _saved_run(state_dir)
    if saved.get("fingerprint") == fingerprint:
        return saved.get("run_id")
    shutil.rmtree(state_dir, ignore_errors=True)
    return None


def save_run_state(state_dir: Path, run_id: str, fingerprint: str) -> None:
    """Record the run a crash would resume (state_dir/run.json), as soon as it exists."""
    (state_dir / "run.json").write_text(json.dumps({"run_id": run_id, "fingerprint": fingerprint}))


def backup_dir(state_dir: Path, phase: int) -> Path:
    """Where Keras's BackupAndRestore keeps a phase's last finished epoch."""
    return Path(state_dir) / "backup" / f"phase{phase}"


def start_point(state_dir: Path, fingerprint: str, recipe: TrainParams) -> str:
    """How a training with these inputs starts, read without changing the state: "fresh
    start", or the epoch a crashed run's checkpoint holds, of the epochs planned in all.

    Args:
        state_dir: The seed's state folder.
        fingerprint: The new attempt's `fingerprint` (another one discards the state).
        recipe: The seed's train params (how many epochs each phase plans).
    """
    state_dir = Path(state_dir)
    if _saved_run(state_dir).get("fingerprint") != fingerprint:
        return "fresh start"
    fine_tune = recipe.fine_tune_epochs if _fine_tunes(recipe) else 0
    phase1 = recipe.epochs if not cached_head(recipe) else recipe.head_epochs
    if (done := _backed_up_epoch(state_dir, 2)) is not None:
        epochs, checkpoint = done, backup_dir(state_dir, 2)
        phase1 = sum(row["phase"] == 1 for row in read_history(state_dir))
    elif (state_dir / PHASE1_DONE).is_file():
        checkpoint = state_dir / PHASE1_DONE
        epochs = phase1 = sum(row["phase"] == 1 for row in read_history(state_dir))
    elif (done := _backed_up_epoch(state_dir, 1)) is not None:
        epochs, checkpoint = done, backup_dir(state_dir, 1)
    else:  # killed before the first checkpoint (a head on cached features keeps none)
        total = phase1 + fine_tune
        return f"resumed from epoch 0 of {total} (no checkpoint: only its MLflow run continues)"
    return f"resumed from epoch {epochs} of {phase1 + fine_tune} (checkpoint {checkpoint})"


def _fine_tunes(recipe: TrainParams) -> bool:
    return recipe.weights != "none" and recipe.fine_tune_layers > 0


def _saved_run(state_dir: Path) -> dict:
    run_file = Path(state_dir) / "run.json"
    return json.loads(run_file.read_text()) if run_file.is_file() else {}


def _backed_up_epoch(state_dir: Path, phase: int) -> int | None:
    """The epochs (of the whole training) a phase's backup holds, or None without one."""
    meta = backup_dir(state_dir, phase) / "training_metadata.json"
    try:
        text = meta.read_text()
    except FileNotFoundError:
        return None
    return int(json.loads(text)["epoch"])  # an unreadable backup fails Keras's restore too
