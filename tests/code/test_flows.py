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
import urllib.request
from pathlib import Path

import pytest
import yaml

from bakeoff import orchestration
from tests.conftest import REPO, make_image_folder

pytestmark = pytest.mark.services

FLOWS = REPO / "flows"
sys.path.insert(0, str(FLOWS))
BACKBONES = ["SimpleCNN", "MobileNetV3Small"]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_for(check, what: str, timeout: float = 90.0, proc=None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{what}: the process exited with {proc.returncode}")
        with contextlib.suppress(Exception):
            if result := check():
                return result
        time.sleep(0.5)
    raise TimeoutError(f"{what} did not come up within {timeout} s")


def make_project(root: Path, source: Path, **orchestration_params) -> Path:
    """A bakeoff project in `root`: the real params.yaml shrunk, dvc.yaml, the stage sources
    dvc.yaml depends on, and `git init` + `dvc init`."""
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["backbones"] = BACKBONES
    params["data"]["source"] = str(source)
    params["validate"]["workers"] = 1
    params["train"].update(
        image_size=32, epochs=1, min_epochs=0, batch_size=8, fine_tune_layers=0, patience=1
    )
    params["evaluate"].update(latency_repeats=2, latency_warmup=1)
    params["report"]["bootstrap"] = 20
    params["orchestration"].update(orchestration_params)
    root.mkdir(parents=True)
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    shutil.copy(REPO / "dvc.yaml", root / "dvc.yaml")
    shutil.copytree(REPO / "src" / "bakeoff", root / "src" / "bakeoff")
    subprocess.run(["git", "init", "-q"], cwd=root, check=True)
    subprocess.run([sys.executable, "-m", "dvc", "init", "-q"], cwd=root, check=True)
    return root


@pytest.fixture(scope="module")
def source(tmp_path_factory) -> Path:
    return make_image_folder(tmp_path_factory.mktemp("images") / "source", per_class=12)


@pytest.fixture(scope="module")
def mlflow_uri(tmp_path_factory):
    """A real `mlflow server` with a sqlite backend, as MLFLOW_TRACKING_URI for the module."""
    store = tmp_path_factory.mktemp("mlflow")
    port = _free_port()
    cmd = [str(Path(sys.executable).parent / "mlflow"), "server", "--host", "127.0.0.1"]
    cmd += ["--port", str(port), "--workers", "1"]
    cmd += ["--backend-store-uri", f"sqlite:///{store / 'mlflow.db'}"]
    cmd += ["--artifacts-destination", str(store / "artifacts")]
    log = open(store / "server.log", "w")  # noqa: SIM115
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
    uri = f"http://127.0.0.1:{port}"
    try:
        _wait_for(
            lambda: urllib.request.urlopen(f"{uri}/health", timeout=2).status == 200,
            "mlflow server",
            proc=proc,
        )
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv("MLFLOW_TRACKING_URI", uri)
            yield uri
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        log.close()


@pytest.fixture(scope="module")
def prefect_api(tmp_path_factory):
    """A real temporary Prefect server (prefect_test_harness); yields its API URL."""
    from prefect.settings import PREFECT_API_URL
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield PREFECT_API_URL.value()


def _artifact_markdown(key: str) -> str:
    from prefect.artifacts import Artifact

    artifact = Artifact.get(key)
    assert artifact is not None, f"no artifact {key!r}"
    return artifact.data


def _flow_run_logs(flow_run_id) -> list:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId

    with get_client(sync_client=True) as client:
        flt = LogFilter(flow_run_id=LogFilterFlowRunId(any_=[flow_run_id]))
        return client.read_logs(log_filter=flt)


@pytest.fixture
def served(prefect_api, mlflow_uri, source, tmp_path):
    """`python flows/retrain.py` serving `retrain/scheduled-retrain` for a tmp project."""
    from prefect.client.orchestration import get_client

    project = make_project(tmp_path / "project", source)
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


def test_scheduled_retrain_registers_a_model_then_finds_no_new_data(served):
    """The deployment, run by `run_deployment`, trains and registers; a rerun does nothing."""
    from prefect.deployments import run_deployment

    from bakeoff import tracking

    project, deployment = served
    assert [s.schedule.cron for s in deployment.schedules] == ["0 3 * * 1"]

    first = run_deployment("retrain/scheduled-retrain", timeout=600)
    assert first.state.is_completed(), first.state.message
    champion = tracking.get_version_by_alias("image-classifier", "champion")
    assert champion is not None, "no champion version in the MLflow registry"
    summary = _artifact_markdown("retrain-summary")
    data_version = champion.tags["data_version"]
    assert data_version in summary
    assert all(backbone in summary for backbone in BACKBONES)
    assert orchestration.dvc_status(project) == {}, "dvc repro would have work left"
    log_sources = {entry.name for entry in _flow_run_logs(first.id)}
    assert "bakeoff.orchestration" in log_sources, "bakeoff's logging does not reach Prefect"

    second = run_deployment("retrain/scheduled-retrain", timeout=300)
    assert second.state.is_completed(), second.state.message
    assert "no new data" in second.state.message
    assert "no new data" in _artifact_markdown("retrain-summary")
    assert tracking.get_version_by_alias("image-classifier", "champion").version == champion.version


def test_pipeline_trains_backbones_on_a_dask_cluster(prefect_api, mlflow_uri, source, tmp_path):
    """With task_runner dask + dask_address, train/evaluate run on the given cluster."""
    from distributed import LocalCluster
    from pipeline import run_pipeline

    with LocalCluster(n_workers=1, threads_per_worker=2, processes=False) as cluster:
        project = make_project(
            tmp_path / "project", source, task_runner="dask", dask_address=cluster.scheduler_address
        )
        result = run_pipeline(project)
        prefixes = set(cluster.scheduler.task_prefixes)
    assert {"train_task", "evaluate_task"} <= prefixes, prefixes
    for backbone in BACKBONES:
        assert (project / "metrics" / f"{backbone}.json").is_file()
    assert (project / "reports" / "register.json").is_file()
    assert result["stages"] == orchestration.pipeline_stages(BACKBONES)
    assert orchestration.dvc_status(project) == {}


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
    orchestration.ensure_concurrency_limit()
    with concurrency(orchestration.RETRAIN_LIMIT, occupy=1):
        state = retrain(root=str(project), wait_seconds=3, return_state=True)
    assert state.is_failed()
    assert "TimeoutError" in state.message or "timeout" in state.message.lower()
    assert not (project / "data" / "raw").exists(), "the blocked run ingested anyway"
