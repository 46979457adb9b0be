"""Faults between bakeoff and its services, on real services on 127.0.0.1: PostgreSQL (the
stack's `Cluster`) and an MLflow server on it with proxied artifacts, as `make stack` runs
them. The stages run as the CLI runs them, in subprocesses that the tests kill.

- the MLflow server killed after epoch 2 and back 5 minutes later: the training does not
  stall, and its one run ends FINISHED with every epoch;
- the same beyond `tracking.outage_timeout`: the stage fails naming the server and the
  window; the rerun trains no epoch and completes the same run;
- PostgreSQL restarted during `register`: no promotion without the paired test;
- `kill -9` during `register` and `export`: the rerun completes, one version per run, one
  `champion`.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import yaml

from bakeoff.config.wiring import params_kwargs
from bakeoff.stack import procs
from bakeoff.stack.postgres import Cluster
from tests.conftest import REPO, MlflowServer, make_image_folder, write_split

pytestmark = [pytest.mark.services, pytest.mark.slow]

OUTAGE = 300.0  # seconds the MLflow server stays away in the long-outage test
EPOCHS = 40  # enough that the training outlives the kill by a wide margin
_FOREIGN = ("PREFECT_API_URL", "MLFLOW_TRACKING_URI", "BAKEOFF_ROOT", "PREFECT_HOME")


@pytest.fixture(scope="module")
def services():
    """PostgreSQL and an MLflow server on it, in a folder `postgres` can reach."""
    folder = Path(tempfile.mkdtemp(prefix="bakeoff-faults-"))
    folder.chmod(0o755)
    pg = Cluster(folder / "pg", procs.free_port())
    pg.init()
    pg.start()
    server = MlflowServer(folder, pg.url("mlflow"))
    try:
        pg.create_database("mlflow")
        server.start()
        yield pg, server
    finally:
        server.stop()
        pg.stop()
        shutil.rmtree(folder, ignore_errors=True)


def _project(root: Path, experiment: str, **train) -> Path:
    """A project with tiny images split, the real params shrunk (SimpleCNN from scratch)."""
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["backbones"] = ["SimpleCNN"]
    params["train"].update(
        weights="none", image_size=32, batch_size=8, augment=False, fine_tune_layers=0,
        seeds=[0], **train,
    )  # fmt: skip
    params["tracking"]["experiment"] = experiment
    params["evaluate"].update(latency_repeats=2, latency_warmup=1)
    params["export"].update(representative_images=8)
    params["bootstrap"] = 200
    root.mkdir(parents=True)
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    raw = make_image_folder(root / "data" / "raw", per_class=24)
    write_split(raw, root / "data" / "split")
    return root


def _env(server: MlflowServer) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _FOREIGN}
    env["PATH"] = f"{Path(sys.executable).parent}:{env['PATH']}"
    return {**env, "MLFLOW_TRACKING_URI": server.uri, "MLFLOW_DISABLE_TELEMETRY": "true"}


def _bakeoff(project: Path, server: MlflowServer, *args: str) -> subprocess.Popen:
    cmd = [str(Path(sys.executable).parent / "bakeoff"), *args]
    return subprocess.Popen(cmd, cwd=project, env=_env(server), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)  # fmt: skip


def _finish(proc: subprocess.Popen, timeout: float = 600) -> tuple[int, str]:
    out, _ = proc.communicate(timeout=timeout)
    return proc.returncode, out


def _epochs_journaled(project: Path) -> int:
    journal = project / ".bakeoff" / "train" / "SimpleCNN" / "journal.jsonl"
    if not journal.is_file():
        return 0
    return sum('"val_accuracy"' in line for line in journal.read_text().splitlines())


def _wait_for_epochs(project: Path, proc: subprocess.Popen, n: int) -> None:
    while _epochs_journaled(project) < n:
        assert proc.poll() is None, proc.communicate()[0][-3000:]
        time.sleep(0.2)


def _runs(server: MlflowServer, experiment: str) -> list:
    from mlflow import MlflowClient

    client = MlflowClient(server.uri)
    found = client.get_experiment_by_name(experiment)
    return client.search_runs([found.experiment_id]) if found else []


def _assert_every_epoch(server: MlflowServer, run_id: str, epochs: int) -> None:
    from mlflow import MlflowClient

    client = MlflowClient(server.uri)
    for key in ("loss", "val_accuracy", "learning_rate"):
        steps = sorted(m.step for m in client.get_metric_history(run_id, key))
        assert steps == list(range(epochs)), f"{key}: steps {steps}"


@pytest.mark.timeout(1200)
def test_training_goes_on_through_a_five_minute_outage(services, tmp_path):
    """The server is killed after epoch 2 and back 5 minutes later (same store): the
    training finishes while it is away, then the stage sends everything to its one run."""
    _, server = services
    project = _project(tmp_path / "p", "outage", epochs=EPOCHS, min_epochs=EPOCHS,
                       patience=EPOCHS)  # fmt: skip
    proc = _bakeoff(project, server, "train", "SimpleCNN")
    _wait_for_epochs(project, proc, 2)
    server.kill()
    killed = time.monotonic()
    trained_at = None
    while time.monotonic() - killed < OUTAGE:
        if trained_at is None and _epochs_journaled(project) >= EPOCHS:
            trained_at = time.monotonic() - killed
        assert proc.poll() is None, "the stage ended while the server was away"
        time.sleep(0.5)
    server.start()
    code, out = _finish(proc)
    assert code == 0, out[-3000:]
    print(f"trained {EPOCHS} epochs {trained_at:.0f} s after the kill; outage {OUTAGE:.0f} s")
    assert trained_at is not None and trained_at < OUTAGE / 2, "the training stalled"
    (run,) = _runs(server, "outage")
    assert run.info.status == "FINISHED"
    _assert_every_epoch(server, run.info.run_id, EPOCHS)
    train = json.loads((project / "models" / "SimpleCNN" / "train.json").read_text())
    assert train["run_id"] == run.info.run_id and train["epochs_run"] == EPOCHS


def test_beyond_the_window_the_rerun_uploads_without_training(services, tmp_path):
    """With tracking.outage_timeout shorter than the outage the stage fails on one line
    naming the server and the window; once the server is back, the rerun trains no epoch
    and completes the same run."""
    _, server = services
    epochs = 12
    project = _project(tmp_path / "p", "beyond", epochs=epochs, min_epochs=epochs,
                       patience=epochs)  # fmt: skip
    params = yaml.safe_load((project / "params.yaml").read_text())
    params["tracking"]["outage_timeout"] = 10
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    proc = _bakeoff(project, server, "train", "SimpleCNN")
    _wait_for_epochs(project, proc, 2)
    server.kill()
    try:
        code, out = _finish(proc)
    finally:
        server.start()
    assert code == 1, out[-3000:]
    errors = [line for line in out.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, out[-3000:]
    assert server.uri in errors[0] and "outage_timeout=10 s" in errors[0]
    assert _epochs_journaled(project) == epochs  # the training finished, kept on disk
    assert not (project / "models" / "SimpleCNN" / "train.json").exists()

    code, out = _finish(_bakeoff(project, server, "train", "SimpleCNN"))
    assert code == 0, out[-3000:]
    assert "no epoch trained again" in out
    (run,) = _runs(server, "beyond")
    assert run.info.status == "FINISHED"
    _assert_every_epoch(server, run.info.run_id, epochs)
    train = json.loads((project / "models" / "SimpleCNN" / "train.json").read_text())
    assert train["run_id"] == run.info.run_id and train["model_uri"].startswith("models:/")


@pytest.fixture(scope="module")
def trained(services, tmp_path_factory):
    """A project whose SimpleCNN learnt the stripes and whose MobileNet always answers class
    0 (tiny hand-made models, logged to the server), both evaluated."""
    from bakeoff.config.params import load_params
    from bakeoff.evaluate.stage import evaluate
    from tests.model.tiny_models import make_trained

    _, server = services
    project = _project(tmp_path_factory.mktemp("registry") / "p", "registry")
    raw, split = project / "data" / "raw", project / "data" / "split"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLFLOW_TRACKING_URI", server.uri)
        params = load_params(project / "params.yaml")
        for name, kind in (("SimpleCNN", "good"), ("MobileNet", "constant")):
            make_trained(name, params, raw, split, project / "models", kind)
            evaluate(name, split_dir=split, image_root=raw, model_dir=project / "models" / name,
                     metrics_path=project / "metrics" / f"{name}.json",
                     plots_dir=project / "plots" / name, cache_dir=project / ".bakeoff" / "cache",
                     root=project, **params_kwargs(params, name)["evaluate"])  # fmt: skip
    return project


def _use(project: Path, backbones: list[str], model_name: str) -> None:
    params = yaml.safe_load((project / "params.yaml").read_text())
    params["backbones"], params["register"]["model_name"] = backbones, model_name
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


def _registry(pg: Cluster, name: str) -> tuple[list[int], list[int]]:
    """(the versions of `name`, the versions its `champion` alias points at), from SQL."""
    import psycopg

    with psycopg.connect(pg.url("mlflow")) as conn, conn.cursor() as cur:
        cur.execute("SELECT version FROM model_versions WHERE name = %s", (name,))
        versions = sorted(v for (v,) in cur.fetchall())
        cur.execute("SELECT version FROM registered_model_aliases WHERE name = %s "
                    "AND alias = 'champion'", (name,))  # fmt: skip
        return versions, [v for (v,) in cur.fetchall()]


def _register_report(project: Path) -> dict:
    return json.loads((project / "reports" / "register.json").read_text())


def test_postgres_restarted_during_register_never_promotes_untested(services, trained):
    """The champion is the constant model; PostgreSQL goes down as `register` starts and
    comes back 8 s later. Either that run or its rerun decides, against the real champion,
    with the paired test."""
    pg, server = services
    name = "pg-restart"
    _use(trained, ["MobileNet"], name)
    code, out = _finish(_bakeoff(trained, server, "register"))
    assert code == 0 and _register_report(trained)["decision"] == "promoted", out[-3000:]
    _use(trained, ["SimpleCNN", "MobileNet"], name)
    (trained / "reports" / "register.json").unlink()
    pg.stop()
    log = trained / "register.log"
    with open(log, "w") as out_file:
        cmd = [str(Path(sys.executable).parent / "bakeoff"), "register"]
        proc = subprocess.Popen(cmd, cwd=trained, env=_env(server), stdout=out_file,
                                stderr=subprocess.STDOUT)  # fmt: skip
        try:  # PostgreSQL comes back once register has met its absence, and waits for it
            deadline = time.monotonic() + 300
            while "retrying in" not in log.read_text() and proc.poll() is None:
                assert time.monotonic() < deadline, log.read_text()[-3000:]
                time.sleep(0.2)
            time.sleep(3)
        finally:
            pg.start()
        code = proc.wait(timeout=600)
    out = log.read_text()
    print(f"register with PostgreSQL restarting: exit {code}\n{out[-1500:]}")
    assert "retrying in" in out, "register never met the restart"
    if code != 0:
        assert not (trained / "reports" / "register.json").exists()
        code, out = _finish(_bakeoff(trained, server, "register"))
        assert code == 0, out[-3000:]
    report = _register_report(trained)
    assert report["backbone"] == "SimpleCNN" and report["champion"]["version"] == "1"
    assert report["paired_test"] is not None and report["paired_test"]["n"] > 0
    assert report["decision"] in ("promoted", "challenger")
    versions, champion = _registry(pg, name)
    assert versions == [1, 2] and len(champion) == 1


def _kill_when(proc: subprocess.Popen, ready, timeout: float = 300) -> bool:
    """kill -9 `proc` as soon as `ready()` holds; False when it finished first."""
    deadline = time.monotonic() + timeout
    while proc.poll() is None and time.monotonic() < deadline:
        if ready():
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            return True
        time.sleep(0.01)
    return False


def test_kill_9_during_register_and_export_leaves_one_version_and_one_champion(services,
                                                                              trained):  # fmt: skip
    """`register` is killed the moment its version is in the registry (before or while it
    moves the alias), `export` while it converts: each rerun completes, the run's model is
    one version, and `champion` points at exactly one."""
    pg, server = services
    name = "killed"
    _use(trained, ["SimpleCNN"], name)
    proc = _bakeoff(trained, server, "register")
    killed = _kill_when(proc, lambda: bool(_registry(pg, name)[0]))
    print(f"register killed mid-way: {killed}, registry then: {_registry(pg, name)}")
    assert killed, "register finished before its version was seen: nothing was killed"
    code, out = _finish(_bakeoff(trained, server, "register"))
    assert code == 0, out[-3000:]
    versions, champion = _registry(pg, name)
    assert versions == [1] and champion == [1]

    proc = _bakeoff(trained, server, "export")
    killed = _kill_when(proc, lambda: (trained / "exports").exists())
    print(f"export killed mid-way: {killed}")
    assert killed, "export finished before it wrote anything: nothing was killed"
    code, out = _finish(_bakeoff(trained, server, "export"))
    assert code == 0, out[-3000:]
    assert json.loads((trained / "reports" / "export.json").read_text())["variants"]
    assert _registry(pg, name) == ([1], [1])


@pytest.mark.filterwarnings("ignore:The specified dataset source can be interpreted")
def test_runs_logging_the_same_split_at_once_all_get_it_on_postgresql(services, tmp_path,
                                                                      monkeypatch):  # fmt: skip
    """As tests/code/test_tracking.py's sqlite check, on the PostgreSQL store, whose refusal
    is worded differently (`duplicate key value violates unique constraint "dataset_pk"`)."""
    from tests.conftest import assert_concurrent_splits_logged

    _, server = services
    monkeypatch.setenv("MLFLOW_TRACKING_URI", server.uri)
    assert_concurrent_splits_logged(server.uri, tmp_path)
