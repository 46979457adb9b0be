"""Shared fixtures: the real params shrunk, and a tiny labelled image set with its split."""

from __future__ import annotations

import csv
import dataclasses
import json
import os
import signal
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from bakeoff.stack import procs

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# MLflow's telemetry thread edits os.environ while other threads read it (a KeyError was
# seen once in a Dask worker); the tests run offline, where it has nothing to send anyway.
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")

REPO = Path(__file__).resolve().parents[1]
CLASSES = ["dots", "horizontal", "vertical"]


def _pattern(label: str, size: int, rng: np.random.Generator) -> np.ndarray:
    img = rng.integers(0, 60, size=(size, size, 3), dtype=np.uint8)
    if label == "horizontal":
        img[::4] = 230
    elif label == "vertical":
        img[:, ::4] = 230
    else:
        img[::6, ::6] = 255
    return img


def make_image_folder(root: Path, per_class: int = 12, size: int = 32, seed: int = 0) -> Path:
    """Write a folder of distinguishable PNGs, one sub-folder per class."""
    rng = np.random.default_rng(seed)
    for label in CLASSES:
        (root / label).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            Image.fromarray(_pattern(label, size, rng)).save(root / label / f"{label}_{i:03d}.png")
    return root


def write_split(raw: Path, out: Path, fractions=(0.5, 0.25, 0.25)) -> Path:
    """Split manifests in bakeoff's format (path,label,sha256 + classes.json), per class."""
    from bakeoff.lineage import file_sha256

    out.mkdir(parents=True, exist_ok=True)
    rows = {"train": [], "val": [], "test": []}
    for label in CLASSES:
        files = sorted((raw / label).iterdir())
        n_train = int(len(files) * fractions[0])
        n_val = int(len(files) * fractions[1])
        for i, f in enumerate(files):
            name = "train" if i < n_train else "val" if i < n_train + n_val else "test"
            sha = file_sha256(f)
            rows[name].append({"path": f"{label}/{f.name}", "label": label, "sha256": sha})
    for name, items in rows.items():
        with open(out / f"{name}.csv", "w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=["path", "label", "sha256"])
            writer.writeheader()
            writer.writerows(items)
    (out / "classes.json").write_text(json.dumps(CLASSES))
    return out


def benchmark_module(name: str):
    """`benchmarks/<name>.py` as a module: the tests reuse the benchmarks' helpers."""
    import importlib.util

    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, REPO / "benchmarks" / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module  # dataclasses, and the scripts' own `import _support`
        spec.loader.exec_module(module)
    return sys.modules[name]


# A scratch DVC project, and a Python that cannot import bakeoff: what the benchmarks use.
init_project = benchmark_module("_support").dvc_project
no_bakeoff_env = benchmark_module("_support").no_bakeoff_env


@pytest.fixture
def params():
    """The project's real params.yaml, shrunk: tiny images, one epoch, tracking in tmp."""
    from bakeoff.config.params import load_params

    real = load_params(REPO / "params.yaml")
    train = dataclasses.replace(
        real.train, image_size=32, epochs=1, min_epochs=0, batch_size=8, fine_tune_epochs=1
    )
    evaluate = dataclasses.replace(real.evaluate, latency_repeats=3, latency_warmup=1)
    return dataclasses.replace(real, train=train, evaluate=evaluate)


@pytest.fixture
def tiny_data(tmp_path):
    """A tiny labelled image folder and its split: (raw_dir, split_dir)."""
    raw = make_image_folder(tmp_path / "raw")
    return raw, write_split(raw, tmp_path / "split")


@pytest.fixture
def tracking_uri(tmp_path, monkeypatch):
    """The MLflow store of a project rooted at tmp_path: where params.yaml's relative
    `sqlite:///mlruns/mlflow.db` resolves when the stages get `root=tmp_path`.

    A user's MLFLOW_TRACKING_URI is cleared: it would win, and receive the test runs.
    """
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    return f"sqlite:///{tmp_path / 'mlruns' / 'mlflow.db'}"


def run_sections(params) -> dict:
    """The params sections a training run reads and logs (as `train.run.train_seed` passes
    them to `tracking.training_run`)."""
    return {"train": params.train, "tune": params.tune, "tracking": params.tracking}


class MlflowServer:
    """A real `mlflow server` on 127.0.0.1 over `backend` (a sqlite or PostgreSQL URI),
    artifacts and log in `folder`; it can be killed and restarted on the same store."""

    def __init__(self, folder: Path, backend: str) -> None:
        self.folder, self.port = folder, procs.free_port()
        self.uri = f"http://127.0.0.1:{self.port}"
        self.cmd = [
            str(Path(sys.executable).parent / "mlflow"), "server", "--host", "127.0.0.1",
            "--port", str(self.port), "--workers", "1", "--backend-store-uri", backend,
            "--artifacts-destination", str(folder / "artifacts"),
        ]  # fmt: skip
        self.pid: int | None = None

    def start(self) -> None:
        env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
        log = self.folder / "mlflow.log"
        self.pid = procs.spawn(self.cmd, log, env)
        procs.wait_until(lambda: procs.http_ok(f"{self.uri}/health"), "mlflow server", log,
                         self.pid, self.cmd, timeout=180)  # fmt: skip

    def kill(self) -> None:
        """kill -9 of the server and its workers; returns once the port is closed."""
        assert procs.alive(self.pid, self.cmd), "the server to kill is not running"
        os.killpg(self.pid, signal.SIGKILL)
        while procs.port_in_use(self.port):
            time.sleep(0.1)

    def stop(self) -> None:
        if self.pid is not None:
            procs.stop([(self.pid, self.cmd)])


def assert_concurrent_splits_logged(uri: str, folder: Path, rounds: int = 30, at_once: int = 4):
    """Runs that log the same split at the same moment all get it, each dataset stored once.

    MLflow's store checks which datasets exist, then inserts, so two runs can both insert
    and one is refused by the table's key (about one round in seven against a sqlite server
    on 2 cores before `log_split` asked again). Each round releases `at_once` threads
    together, on a new data version (new datasets to insert). MLFLOW_TRACKING_URI must
    name `uri`. `log_split` silences an MLflow warning with `warnings.catch_warnings`, which
    is process-wide and not thread-safe: callers filter that warning.
    """
    import mlflow

    split = write_split(make_image_folder(folder / "images", per_class=2), folder / "split")
    client = mlflow.MlflowClient(uri)
    experiment = client.create_experiment(f"concurrent-splits-{folder.name}")
    runs = []
    for version in range(rounds):
        batch = [client.create_run(experiment).info.run_id for _ in range(at_once)]
        errors = _log_split_at_once(split, batch, f"v{version:04d}")
        assert not errors, f"round {version}: {errors[0]}"
        runs += [(run_id, f"v{version:04d}") for run_id in batch]
    for run_id, version in runs:
        inputs = client.get_run(run_id).inputs.dataset_inputs
        assert sorted((i.dataset.name, i.dataset.digest) for i in inputs) == [
            ("test", version), ("train", version), ("val", version)
        ]  # fmt: skip


def _log_split_at_once(split: Path, run_ids: list[str], version: str) -> list[Exception]:
    """`tracking.log_split` for every run, from one thread each, released together."""
    import threading

    from bakeoff import tracking

    start, errors = threading.Barrier(len(run_ids)), []

    def log(run_id: str) -> None:
        start.wait()
        try:
            tracking.log_split(run_id, split, version)
        except Exception as exc:  # collected, so that every thread finishes
            errors.append(exc)

    threads = [threading.Thread(target=log, args=(run_id,)) for run_id in run_ids]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return errors
