"""Training behaviour: outputs and tracking, determinism, crash resume, NaN, fine-tuning."""

from __future__ import annotations

import csv
import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from mlflow import MlflowClient

from bakeoff.errors import BakeoffError
from bakeoff.train.stage import train

REPO = Path(__file__).resolve().parents[2]


def _train(params, tiny_data, tmp_path, tag="a", backbone="SimpleCNN", **changes):
    raw, split = tiny_data
    params = dataclasses.replace(params, train=dataclasses.replace(params.train, **changes))
    root = tmp_path / tag
    result = train(
        backbone, params.train, split, raw, root / "models" / backbone, root / "state" / backbone,
        plots_dir=root / "plots" / backbone, tune=params.tune, tracking_params=params.tracking,
        cache_dir=root / "cache", root=tmp_path,
    )  # fmt: skip
    return result, root


def _history(root: Path, backbone: str = "SimpleCNN") -> list[dict]:
    with open(root / "plots" / backbone / "history.csv", newline="") as fh:
        return list(csv.DictReader(fh))


def test_train_writes_outputs_tracks_every_epoch_and_is_deterministic(
    params, tiny_data, tmp_path, tracking_uri, capsys
):
    first, root = _train(params, tiny_data, tmp_path, "a", epochs=2)
    # Not a terminal (a log file under `dvc repro`, a Prefect task): one line per epoch,
    # no progress bar redrawn at every step; the first line says how it trains.
    out = capsys.readouterr().out
    assert "━" not in out and "\r" not in out
    epoch_lines = [line for line in out.splitlines() if "val_accuracy" in line]
    assert len(epoch_lines) == 2, out
    mode = "SimpleCNN: from scratch at 32 px: the whole network trains, augmented; fresh start"
    assert out.splitlines()[0] == mode
    second, root_b = _train(params, tiny_data, tmp_path, "b", epochs=2)

    model_dir = root / "models" / "SimpleCNN"
    assert (model_dir / "model.keras").is_file()
    assert (root / "plots" / "SimpleCNN" / "curves.png").is_file()
    summary = json.loads((model_dir / "train.json").read_text())
    assert summary["run_id"] == first.run_id and summary["status"] == "FINISHED"
    assert summary["epochs_run"] == 2 and summary["image_size"] == 32
    assert summary["classes"] == ["dots", "horizontal", "vertical"]
    assert summary["weights_sha256"] == "none" and summary["model_uri"].startswith("models:/")
    history = _history(root)
    assert [row["epoch"] for row in history] == ["1", "2"]
    assert set(history[0]) == {
        "epoch", "phase", "loss", "accuracy", "val_loss", "val_accuracy", "learning_rate",
    }  # fmt: skip
    assert not (root / "state" / "SimpleCNN").exists(), "state is cleared after success"

    client = MlflowClient(tracking_uri)
    run = client.get_run(first.run_id)
    assert run.info.status == "FINISHED"
    assert run.data.params["train.epochs"] == "2"
    assert run.data.tags["dvc_stage"] == "train@SimpleCNN"
    assert len(run.data.tags["data_version"]) == 16
    steps = client.get_metric_history(first.run_id, "val_accuracy")
    assert sorted(m.step for m in steps) == [0, 1]
    assert client.get_metric_history(first.run_id, "learning_rate")
    # The split as datasets: the runs list's Dataset column shows the data version.
    inputs = {d.dataset.name: d for d in run.inputs.dataset_inputs}
    assert sorted(inputs) == ["test", "train", "val"]
    assert {d.dataset.digest for d in inputs.values()} == {run.data.tags["data_version"]}
    assert [t.value for t in inputs["train"].tags if t.key == "mlflow.data.context"] == ["training"]

    assert first.run_id != second.run_id
    assert _history(root) == _history(root_b), "same data and params give the same metrics"


def test_nan_run_fails_and_writes_no_model(params, tiny_data, tmp_path, tracking_uri):
    with pytest.raises(BakeoffError, match=r"diverged.*lower the learning rate"):
        _train(params, tiny_data, tmp_path, epochs=2, learning_rate=1e30)
    assert not (tmp_path / "a" / "models" / "SimpleCNN" / "model.keras").exists()
    runs = MlflowClient(tracking_uri).search_runs(
        [e.experiment_id for e in MlflowClient(tracking_uri).search_experiments()]
    )
    assert [r.info.status for r in runs] == ["FAILED"]


# The feature cache (used, keyed, bit-equal on rerun): tests/model/test_caches.py.


DRIVER = """
import sys, time
from pathlib import Path
import keras
# Slow every epoch down a little, so that the kill reliably lands mid-way.
_end = keras.callbacks.CSVLogger.on_epoch_end
def _slow_end(self, epoch, logs=None):
    time.sleep(0.3)
    _end(self, epoch, logs)
keras.callbacks.CSVLogger.on_epoch_end = _slow_end
sys.path.insert(0, sys.argv[3])
from test_train import resume_params
from bakeoff.train.stage import train
root = Path(sys.argv[1])
p = resume_params(int(sys.argv[2]))
train("SimpleCNN", p.train, root / "split", root / "raw", root / "models" / "SimpleCNN",
      root / "state", root / "plots" / "SimpleCNN", tune=p.tune, tracking_params=p.tracking,
      cache_dir=root / "cache", root=root)
"""


def _size(path: Path) -> int:
    return path.stat().st_size if path.is_file() else 0


def resume_params(epochs: int):
    """The real params, tiny and without early stopping (the driver and the test share it)."""
    from bakeoff.config.params import load_params

    real = load_params(REPO / "params.yaml")
    recipe = dataclasses.replace(
        real.train, image_size=32, batch_size=8, epochs=epochs, min_epochs=epochs,
        patience=epochs,
    )  # fmt: skip
    return dataclasses.replace(real, train=recipe)


def test_training_killed_mid_way_resumes_the_same_run(tiny_data, tmp_path, tracking_uri, capsys):
    raw, split = tiny_data
    here = str(Path(__file__).parent)
    cmd = [sys.executable, "-c", DRIVER, str(tmp_path), "8", here]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    meta = tmp_path / "state" / "backup" / "phase1" / "training_metadata.json"
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 240
    # Non-empty: Keras creates the file, then writes it; a kill in between leaves it empty.
    while not _size(meta) and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    saved_epoch = json.loads(meta.read_text())["epoch"]
    run_id = json.loads((tmp_path / "state" / "run.json").read_text())["run_id"]
    assert 1 <= saved_epoch < 8, "killed mid-way"

    # Started again (here, in-process: TensorFlow is already imported) with the same params.
    p = resume_params(8)
    result = train(
        "SimpleCNN", p.train, split, raw, tmp_path / "models" / "SimpleCNN",
        tmp_path / "state", tmp_path / "plots" / "SimpleCNN", tune=p.tune,
        tracking_params=p.tracking, cache_dir=tmp_path / "cache", root=tmp_path,
    )  # fmt: skip
    out = capsys.readouterr().out
    assert out.splitlines()[0] == (
        "SimpleCNN: from scratch at 32 px: the whole network trains, augmented; resumed from "
        f"epoch {saved_epoch} of 8 (checkpoint {tmp_path / 'state' / 'backup' / 'phase1'})"
    )
    assert f"Epoch {saved_epoch + 1}/8" in out
    assert "Epoch 1/8" not in out, "resumed, not restarted"
    assert result.run_id == run_id and result.epochs_run == 8
    client = MlflowClient(tracking_uri)
    assert client.get_run(run_id).info.status == "FINISHED"
    assert len(client.search_runs([client.get_run(run_id).info.experiment_id])) == 1


def test_the_start_line_names_the_phase_and_epoch_a_crash_left(params, tmp_path):
    """Each phase's checkpoint, read from the state a crash leaves (no training here)."""
    from bakeoff.train.resume import fingerprint, save_run_state, start_point

    recipe = dataclasses.replace(
        params.train, weights="imagenet", cache_features=False, epochs=5, fine_tune_layers=2,
        fine_tune_epochs=3,
    )  # fmt: skip
    state, key = tmp_path / "state", fingerprint("SimpleCNN", recipe, 0, "v1")
    state.mkdir()
    assert start_point(state, key, recipe) == "fresh start"
    save_run_state(state, "run-1", key)
    assert start_point(state, key, recipe) == (
        "resumed from epoch 0 of 8 (no checkpoint: only its MLflow run continues)"
    )
    backup = state / "backup" / "phase1"
    backup.mkdir(parents=True)
    (backup / "training_metadata.json").write_text('{"epoch": 2, "batch": 0}')
    assert start_point(state, key, recipe) == f"resumed from epoch 2 of 8 (checkpoint {backup})"
    # Phase 1 stopped early after 4 epochs; phase 2 plans 3 more and crashed after its first.
    rows = "epoch,loss,accuracy,val_loss,val_accuracy,learning_rate\n" + "".join(
        f"{e},1,0.5,1,0.5,0.01\n" for e in range(4)
    )
    (state / "history_phase1.csv").write_text(rows)
    (state / "phase1.weights.h5").write_bytes(b"")
    assert start_point(state, key, recipe) == (
        f"resumed from epoch 4 of 7 (checkpoint {state / 'phase1.weights.h5'})"
    )
    (state / "backup" / "phase2").mkdir()
    (state / "backup" / "phase2" / "training_metadata.json").write_text('{"epoch": 5}')
    assert start_point(state, key, recipe) == (
        f"resumed from epoch 5 of 7 (checkpoint {state / 'backup' / 'phase2'})"
    )
    other = fingerprint("SimpleCNN", recipe, 0, "v2")  # new data: the state is stale
    assert start_point(state, other, recipe) == "fresh start"


def test_fine_tune_phase_continues_the_history(params, tiny_data, tmp_path, tracking_uri, capsys):
    from bakeoff.backbone.build import build_base

    weights = tmp_path / "pretrained.weights.h5"
    build_base("SimpleCNN", 32).save_weights(weights)
    result, root = _train(
        params, tiny_data, tmp_path, epochs=1, weights=str(weights),
        cache_features=False,  # phase 1 through Keras's fit too: one history, two phases
        fine_tune_layers=3, fine_tune_epochs=1, fine_tune_learning_rate=1e-4,
    )  # fmt: skip
    assert capsys.readouterr().out.splitlines()[0] == (
        "SimpleCNN: frozen pretrained (pretrained.weights.h5) base at 32 px, no feature cache "
        "(augmented): the base runs every epoch, no tuning, then its top 3 layers fine-tune "
        "for 1 epochs; fresh start"
    )
    history = _history(root)
    assert [(r["epoch"], r["phase"]) for r in history] == [("1", "1"), ("2", "2")]
    assert float(history[1]["learning_rate"]) == pytest.approx(1e-4)
    assert result.epochs_run == 2


def test_fine_tuning_trains_only_the_unfrozen_top_of_the_base(
    params, tiny_data, tmp_path, tracking_uri, monkeypatch
):
    """Phase 1 leaves the pretrained base alone; phase 2 changes the weights of its top
    layers (SimpleCNN's top 5: avg_pool, block2_pool, ReLU, block2_bn1, block2_conv1) and
    nothing below them; BatchNorm stays frozen, its statistics included."""
    import numpy as np

    from bakeoff.backbone.build import base_layer, build_base
    from bakeoff.train import run

    def snapshot(model) -> dict[str, list[np.ndarray]]:
        return {lyr.name: [w.copy() for w in lyr.get_weights()] for lyr in base_layer(model).layers}

    seen = {}
    real_fit_phase = run.fit_phase

    def recording_fit_phase(model, phase, *args, **kwargs):
        before = snapshot(model)
        real_fit_phase(model, phase, *args, **kwargs)
        seen[phase.number] = (before, snapshot(model))

    monkeypatch.setattr(run, "fit_phase", recording_fit_phase)
    weights = tmp_path / "pretrained.weights.h5"
    build_base("SimpleCNN", 32).save_weights(weights)
    _train(
        params, tiny_data, tmp_path, epochs=1, weights=str(weights), learning_rate=0.05,
        cache_features=False,  # both phases through Keras's fit, where the weights are seen
        fine_tune_layers=5, fine_tune_epochs=2, fine_tune_learning_rate=0.05,
    )  # fmt: skip

    def changed(phase: int) -> set[str]:
        before, after = seen[phase]
        return {
            name for name, ws in before.items()
            if any(not np.array_equal(a, b) for a, b in zip(ws, after[name], strict=True))
        }  # fmt: skip

    assert set(seen) == {1, 2}
    assert changed(1) == set(), "phase 1 trains the head only"
    assert changed(2) == {"block2_conv1"}, "phase 2: the top conv, no BatchNorm, nothing lower"
