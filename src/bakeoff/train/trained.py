"""A finished training kept on disk until MLflow holds it: what a tracking outage cannot lose.

`train_seed` saves it in the run's state folder as soon as the last epoch ends, before
anything is uploaded. When the upload fails (the tracking server stayed away longer than
`tracking.outage_timeout`), the rerun finds it and uploads it to the same run instead of
training again.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import keras

from bakeoff import tracking


@dataclass(frozen=True)
class Trained:
    """The model at its best epoch, the history of every epoch, tuning and wall time."""

    model: keras.Model
    history: list[dict]
    tuning: dict
    seconds: float

    @classmethod
    def of(cls, model: keras.Model, history: list[dict], tuning: dict, seconds: float) -> Trained:
        """A plain functional copy of `model` (no optimizer state: the inference model)."""
        inference = keras.Model(model.inputs, model.outputs, name=model.name)
        return cls(inference, history, tuning, seconds)

    def save(self, state_dir: Path) -> None:
        """trained.keras, then trained.json: the marker is written last."""
        self.model.save(Path(state_dir) / "trained.keras")
        summary = {"history": self.history, "tuning": self.tuning, "seconds": self.seconds}
        (Path(state_dir) / "trained.json").write_text(json.dumps(summary, default=str))

    @classmethod
    def load(cls, state_dir: Path, run_id: str) -> Trained | None:
        """The training an outage kept from uploading, else None (nothing trained yet)."""
        marker = Path(state_dir) / "trained.json"
        if not marker.is_file():
            return None
        saved = json.loads(marker.read_text())
        print(
            f"training finished before (run {run_id}, {len(saved['history'])} epochs): "
            "uploading it, no epoch trained again"
        )
        model = keras.models.load_model(Path(state_dir) / "trained.keras", compile=False)
        return cls(model, saved["history"], saved["tuning"], saved["seconds"])


def train_once(
    state_dir: Path, run_id: str, train: Callable[[], tuple[keras.Model, list[dict], dict]]
) -> Trained:
    """The training an earlier attempt kept in `state_dir`, else `train()`, timed and kept.

    Kept before anything is uploaded, so an outage after the last epoch loses no training.
    """
    trained = Trained.load(state_dir, run_id)
    if trained is None:
        start = time.perf_counter()
        model, history, tuning = train()
        trained = Trained.of(model, history, tuning, time.perf_counter() - start)
        trained.save(state_dir)
    return trained


def kept_for_rerun(
    exc: tracking.TrackingUnavailable, state_dir: Path, backbone: str
) -> tracking.TrackingUnavailable:
    """The outage error, saying where the training waits and how to upload it."""
    # Trained (or training) while the server stayed away: everything stays in state_dir
    # (journal, model, history), and the rerun uploads it to the same run, untrained.
    return tracking.TrackingUnavailable(
        f"{exc}; the training is kept in {state_dir}: rerun `bakeoff train {backbone}` "
        "once the server answers, to upload it to the same run without training again"
    )
