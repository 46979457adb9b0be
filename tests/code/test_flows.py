"""The Prefect flows against real services on 127.0.0.1: a Prefect server (the test
harness), an MLflow server, a Dask LocalCluster; on tiny projects in tmp (32 px, 1 epoch)."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from bakeoff.orchestration import dvc as pipeline_dvc
from bakeoff.orchestration import runners
from bakeoff.stack import procs
from tests.code.flow_projects import BACKBONES, CONCURRENT, make_project
from tests.conftest import REPO, make_image_folder

pytestmark = [pytest.mark.services, pytest.mark.slow]  # CI: `make test-slow`

FLOWS = REPO / "flows"
sys.path.insert(0, str(FLOWS))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_for(check, what: str, timeout: float = 90.0, proc=None):
    start = time.monotonic()
    while time.monotonic() < start + timeout:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{what}: the process exited with {proc.returncode}")
        with contextlib.suppress(Exception):
            if result := check():
                print(f"{what}: up after {time.monotonic() - start:.0f} s")
                return result
        time.sleep(0.5)
    raise TimeoutError(f"{what} did not come up within {timeout} s")


@pytest.fixture(scope="module")
def source(tmp_path_factory) -> Path:
    return make_image_folder(tmp_path_factory.mktemp("images") / "source", per_class=12)


@pytest.fixture(scope="module")
def mlflow_server(tmp_path_factory):
    """Start a real `mlflow server` (sqlite backend); yields (process, uri) without waiting,
    so that it boots while the Prefect server does."""
    store = tmp_path_factory.mktemp("mlflow")
    port = _free_port()
    cmd = [str(Path(sys.executable).parent / "mlflow"), "server", "--host", "127.0.0.1"]
    cmd += ["--port", str(port), "--workers", "1"]
    cmd += ["--backend-store-uri", f"sqlite:///{store / 'mlflow.db'}"]
    cmd += ["--artifacts-destination", str(store / "artifacts")]
    with open(store / "server.log", "w") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
    try:
        yield proc, f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=30)


@pytest.fixture(scope="module")
def prefect_api(mlflow_server):
    """A real temporary Prefect server (prefect_test_harness); yields its API URL."""
    from prefect.settings import PREFECT_API_URL
    from prefect.testing.utilities import prefect_test_harness

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PREFECT_SERVER_ANALYTICS_ENABLED", "false")  # offline: no telemetry
        with prefect_test_harness(server_startup_timeout=120):
            yield PREFECT_API_URL.value()


@pytest.fixture(scope="module")
def mlflow_uri(mlflow_server, prefect_api):
    """The MLflow server once /health answers, as MLFLOW_TRACKING_URI for the module."""
    proc, uri = mlflow_server
    _wait_for(
        lambda: procs.http_ok(f"{uri}/health"),
        "mlflow server",
        proc=proc,
    )
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLFLOW_TRACKING_URI", uri)
        yield uri


@pytest.fixture(scope="module")
def dask_cluster(mlflow_uri):
    """A Dask LocalCluster on 127.0.0.1: one worker process with 2 threads (the backbones)."""
    from distributed import LocalCluster

    with LocalCluster(
        n_workers=1, threads_per_worker=2, host="127.0.0.1", dashboard_address=None
    ) as cluster:
        yield cluster


def _artifact_markdown(key: str) -> str:
    from prefect.artifacts import Artifact

    artifact = Artifact.get(key)
    assert artifact is not None, f"no artifact {key!r}"
    return artifact.data


def _logs_of(logger: str) -> list:
    """The records of a Python logger that reached the Prefect server."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import LogFilter, LogFilterName

    with get_client(sync_client=True) as client:
        return client.read_logs(log_filter=LogFilter(name=LogFilterName(any_=[logger])))


@pytest.fixture
def served(prefect_api, mlflow_uri, dask_cluster, source, tmp_path):
    """`python flows/retrain.py` serving `retrain/scheduled-retrain` for a tmp project whose
    backbones train on the Dask cluster."""
    from prefect.client.orchestration import get_client

    address = dask_cluster.scheduler_address
    project = make_project(tmp_path / "project", source, task_runner="dask", dask_address=address)
    env = dict(os.environ, PREFECT_API_URL=prefect_api, BAKEOFF_ROOT=str(project))
    env["PREFECT_HOME"] = str(tmp_path / "prefect-home")
    log = open(tmp_path / "serve.log", "w")  # noqa: SIM115
    proc = subprocess.Popen(
        [sys.executable, str(FLOWS / "retrain.py")],
        cwd=project,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )

    def deployment():
        with get_client(sync_client=True) as client:
            return client.read_deployment_by_name("retrain/scheduled-retrain")

    try:
        yield project, _wait_for(deployment, "the served deployment", proc=proc)
    finally:
        proc.terminate()
        proc.wait(timeout=60)
        log.close()
        print((tmp_path / "serve.log").read_text()[-5000:])


@pytest.mark.timeout(1500)  # three retrains: ~5 min on 2 idle cores, far more under load
def test_scheduled_retrain_trains_on_dask_registers_then_finds_no_new_data(served, dask_cluster):
    """The deployment, run by `run_deployment`, trains both backbones on the Dask cluster,
    logs to the MLflow server and registers a champion; a rerun on the same data does not."""
    from prefect.deployments import run_deployment

    from bakeoff import tracking

    project, deployment = served
    assert [s.schedule.cron for s in deployment.schedules] == ["0 3 * * 1"]

    first = run_deployment("retrain/scheduled-retrain", timeout=900)
    assert first.state.is_completed(), first.state.message
    # The runs list tells what happened: a named state, a matching tag, a dated name.
    assert first.state.name == "Promoted" and "promoted" in _flow_run(first.id).tags
    assert first.name.startswith("retrain-") and not first.name.endswith("-forced")
    assert _task_run_names(first.id) >= {"ingest", "validate", "register", "dvc-commit"}
    assert "train_task" in dask_cluster.scheduler.task_prefixes, "no training ran on Dask"
    champion = tracking.get_version_by_alias("image-classifier", "champion")
    assert champion is not None, "no champion version in the MLflow server's registry"
    for backbone in BACKBONES:
        assert (project / "metrics" / f"{backbone}.json").is_file()
    summary = _artifact_markdown("retrain-summary")
    assert summary.startswith(f"# First champion: v{champion.version} ")
    assert champion.tags["data_version"] in summary
    rows = [line for line in summary.splitlines() if line.startswith("| ")]
    for backbone in BACKBONES:  # the chosen one in bold
        assert any(r.startswith((f"| {backbone} |", f"| **{backbone}** |")) for r in rows), rows
    assert pipeline_dvc.dvc_status(project) == {}, "dvc repro would have work left"
    bakeoff_logs = [entry.message for entry in _logs_of("bakeoff.orchestration.dvc")]
    assert any("dvc status: up to date" in m for m in bakeoff_logs), "no bakeoff logs in Prefect"

    second = run_deployment("retrain/scheduled-retrain", timeout=600)
    assert second.state.is_completed(), second.state.message
    assert "no new data" in second.state.message
    assert second.state.name == "NoNewData" and "no-new-data" in _flow_run(second.id).tags
    assert "no new data" in _artifact_markdown("retrain-summary")
    assert tracking.get_version_by_alias("image-classifier", "champion").version == champion.version

    # Forced on the same data: the same recipe gives no shown gain, the champion stays.
    third = run_deployment("retrain/scheduled-retrain", parameters={"force": True}, timeout=900)
    assert third.state.name == "ChampionKept", third.state.message
    assert {"champion-kept", "forced"} <= set(_flow_run(third.id).tags)
    assert third.name.endswith("-forced")
    assert _artifact_markdown("retrain-summary").startswith(
        f"# Champion kept: v{champion.version} "
    )
    assert tracking.get_version_by_alias("image-classifier", "champion").version == champion.version


def _flow_run(flow_run_id):
    """The flow run as the server has it now (tags set while it ran included)."""
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        return client.read_flow_run(flow_run_id)


def _task_run_names(flow_run_id) -> set[str]:
    """The task runs' names of a flow run and of its subflows (the pipeline)."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        FlowRunFilter,
        FlowRunFilterId,
        FlowRunFilterParentFlowRunId,
    )

    with get_client(sync_client=True) as client:
        children = client.read_flow_runs(
            flow_run_filter=FlowRunFilter(
                parent_flow_run_id=FlowRunFilterParentFlowRunId(any_=[flow_run_id])
            )
        )
        ids = [flow_run_id, *(c.id for c in children)]
        runs = client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=ids)))
    return {run.name for run in runs}


def test_validation_failure_stops_the_flow_and_publishes_the_summary(prefect_api, source, tmp_path):
    """Broken images over the threshold: the flow fails before split, without retrying, and
    the validation summary is a Prefect artifact."""
    from pipeline import run_pipeline
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    bad = tmp_path / "bad"
    shutil.copytree(source, bad)
    for i in range(6):
        (bad / "dots" / f"empty_{i}.png").write_bytes(b"")
    project = make_project(tmp_path / "project", bad)

    state = run_pipeline(project, return_state=True)
    assert state.is_failed()
    assert not (project / "data" / "split").exists()
    summary = _artifact_markdown("validation-summary")
    assert "Data validation **failed**" in summary
    assert "`dots/empty_0.png`: `zero_bytes`" in summary
    with get_client(sync_client=True) as client:
        runs = client.read_task_runs(
            flow_run_filter=FlowRunFilter(
                id=FlowRunFilterId(any_=[state.state_details.flow_run_id])
            )
        )
    validate_run = next(r for r in runs if r.name.startswith("validate"))
    assert validate_run.run_count == 1, "a user error (BakeoffError) was retried"


def test_retrain_never_overlaps_a_running_retrain(prefect_api, source, tmp_path):
    """While another run holds `bakeoff-retrain`, a retrain waits; past its wait it fails
    without touching the project."""
    from prefect.concurrency.sync import concurrency
    from retrain import retrain

    project = make_project(tmp_path / "project", source)
    runners.ensure_concurrency_limit()
    with concurrency(runners.RETRAIN_LIMIT, occupy=1):
        state = retrain(root=str(project), wait_seconds=3, return_state=True)
    assert state.is_failed()
    assert "another retrain run still holds the 'bakeoff-retrain'" in state.message
    assert not (project / "data" / "raw").exists(), "the blocked run ingested anyway"


def _outcomes(project: Path) -> dict:
    """What must not depend on how the pipeline ran: per-epoch history, the selected epoch
    and every accuracy (timings, run ids and latencies may differ)."""
    import json

    keys = ("test_accuracy", "test_macro_f1", "val_accuracy", "val_macro_f1", "per_class",
            "params", "n_test", "test_accuracy_mean")  # fmt: skip
    out = {}
    for b in CONCURRENT:
        metrics = json.loads((project / "metrics" / f"{b}.json").read_text())
        train = json.loads((project / "models" / b / "train.json").read_text())
        out[b] = {
            "history": (project / "plots" / b / "history.csv").read_text(),
            "metrics": {k: metrics[k] for k in keys},
            "train": {k: train[k] for k in ("val_accuracy", "val_loss", "best_epoch", "tuning")},
        }
    register = json.loads((project / "reports" / "register.json").read_text())
    out["register"] = {k: register[k] for k in ("decision", "backbone", "candidate")}
    out["register"]["candidate"].pop("run_id"), out["register"]["candidate"].pop("model_uri")
    out["register"]["candidate"].pop("latency_ms_b1")
    return out


@pytest.mark.slow  # two whole pipelines: 4.5 min on 2 cores under a load of 10
@pytest.mark.timeout(1500)
def test_the_flow_gives_dvc_repros_metrics_bit_for_bit(prefect_api, source, tmp_path, monkeypatch):
    """The flow trains both backbones at once on threads of one process (its default runner);
    `dvc repro` trains them one after the other, each in its own `bakeoff train` process.
    Same data and params: the same numbers, bit for bit. (Trained on threads of the flow's
    own process instead, both backbones' histories differ from dvc repro's.)"""
    from pipeline import run_pipeline

    outcomes = {}
    for how in ("dvc", "flow"):
        project = make_project(tmp_path / how, source, task_runner="thread", max_workers=2)
        params = yaml.safe_load((project / "params.yaml").read_text())
        (project / "params.yaml").write_text(yaml.safe_dump(params | {"backbones": CONCURRENT}))
        monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / how / 'mlflow.db'}")
        monkeypatch.setenv("BAKEOFF_ROOT", str(project))
        if how == "dvc":
            env = dict(os.environ, PATH=f"{Path(sys.executable).parent}:{os.environ['PATH']}")
            cmd = [sys.executable, "-m", "dvc", "repro", "--quiet"]
            done = subprocess.run(cmd, cwd=project, env=env, capture_output=True, text=True)
            assert done.returncode == 0, done.stderr[-3000:]
        else:
            state = run_pipeline(project, return_state=True)
            assert state.is_completed(), state.message
        outcomes[how] = _outcomes(project)
    assert outcomes["flow"] == outcomes["dvc"]
