"""Scale-out on real engines, on 127.0.0.1: `make stack` (PostgreSQL, MLflow and Prefect on
it, a Prefect work pool and worker, a Dask scheduler and two Dask workers), the pipeline on
the external Dask cluster, a DVC remote and a fresh clone, the retrain deployment run by
pool workers, `make stack-down`. Tiny projects in tmp (32 px, 1 epoch)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import yaml

from bakeoff.stack import procs
from tests.code.flow_projects import make_project
from tests.conftest import REPO, make_image_folder

pytestmark = pytest.mark.services

BACKBONES = ["SimpleCNN", "MobileNet"]
POOL_MODEL = "image-classifier-pool"
MAKE = ["make", "-C", str(REPO), "-o", "setup"]  # the tests run in the set-up venv already
GIT = ["git", "-c", "user.name=bakeoff-test", "-c", "user.email=test@localhost"]
# Variables of other tests' services that must not leak into the stack's processes.
_FOREIGN = ("PREFECT_API_URL", "MLFLOW_TRACKING_URI", "BAKEOFF_ROOT", "PREFECT_HOME")


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _FOREIGN}
    env["PATH"] = f"{Path(sys.executable).parent}:{env['PATH']}"
    return {**env, **extra}


def _run(cmd: list, cwd: Path, env: dict, timeout: float = 300) -> str:
    done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, f"{cmd} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done.stdout + done.stderr


def _sql(url: str, query: str, *args) -> list[tuple]:
    import psycopg

    conn = psycopg.connect(url.rsplit("/", 1)[0] + "/mlflow")
    try:
        with conn.cursor() as cur:
            cur.execute(query, args)
            return cur.fetchall()
    finally:
        conn.close()


@pytest.fixture(scope="module")
def stack():
    """`make stack` in a tmp state folder (free ports); `make stack-down` at the end, which
    must leave no server running."""
    # Not pytest's tmp: PostgreSQL runs as `postgres`, which must reach its cluster.
    folder = Path(tempfile.mkdtemp(prefix="bakeoff-stack-"))
    folder.chmod(0o755)
    state_dir = folder / ".stack"
    # Workers poll every second, and a run refused a deployment slot retries after 2 s.
    env = _env(
        PREFECT_WORKER_QUERY_SECONDS="1",
        PREFECT_SERVER_DEPLOYMENTS_CONCURRENCY_SLOT_WAIT_SECONDS="2",
    )
    start = time.monotonic()
    out = _run([*MAKE, "stack", f"STACK_DIR={state_dir}", "STACK_ARGS=--free-ports"], REPO, env)
    print(f"make stack: {time.monotonic() - start:.0f} s\n{out}")
    state = json.loads((state_dir / "stack.json").read_text())
    try:
        yield state_dir, state
    finally:
        start = time.monotonic()
        _run([*MAKE, "stack-down", f"STACK_DIR={state_dir}"], REPO, env)
        print(f"make stack-down: {time.monotonic() - start:.0f} s")
        still = [n for n, pid in state["pids"].items() if procs.alive(pid, state["cmds"][n])]
        postmaster = (state_dir / "pg" / "data" / "postmaster.pid").exists()
        shutil.rmtree(folder, ignore_errors=True)
        assert not still and not postmaster, f"make stack-down left {still} running"


def _project(root: Path, source: Path, backbones: list[str], **orchestration) -> Path:
    """The flow tests' tiny project, with these backbones and a quick TFLite export."""
    project = make_project(root, source, **orchestration)
    params = yaml.safe_load((project / "params.yaml").read_text())
    params["backbones"] = backbones
    params["export"].update(representative_images=8)
    params["evaluate"].update(latency_repeats=2, latency_warmup=1)
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    return project


@pytest.fixture(scope="module")
def source(tmp_path_factory) -> Path:
    return make_image_folder(tmp_path_factory.mktemp("images") / "source", per_class=12)


def _clients(state_dir: Path, home: Path) -> dict[str, str]:
    """What a user's shell has after `set -a; . .stack/env; set +a`."""
    lines = (state_dir / "env").read_text().splitlines()
    return _env(**dict(line.split("=", 1) for line in lines), PREFECT_HOME=str(home))


def test_stack_serves_on_loopback_only(stack):
    """Every server of `make stack` runs and answers, and none listens beyond 127.0.0.1."""
    state_dir, state = stack
    status = _run([sys.executable, "-m", "bakeoff.stack", "status", "--dir", str(state_dir)],
                  REPO, _env())  # fmt: skip
    assert status.count("running") == 1 + len(state["pids"]) and "STOPPED" not in status
    assert procs.http_ok(state["urls"]["MLFLOW_TRACKING_URI"] + "/health")
    assert procs.http_ok(state["urls"]["PREFECT_API_URL"] + "/health")
    postmaster = int((state_dir / "pg" / "data" / "postmaster.pid").read_text().split()[0])
    groups = {"postgres": os.getpgid(postmaster), **state["pids"]}
    for name, pgid in groups.items():
        listens = procs.group_listens(pgid)
        if name != "prefect-worker":  # a worker only calls out
            assert listens, f"{name} listens on nothing"
        assert {ip for ip, _ in listens} <= {"127.0.0.1"}, f"{name} listens on {listens}"
    assert (state_dir / "env").stat().st_mode & 0o077 == 0, "the password file is readable"


@pytest.fixture(scope="module")
def dask_run(stack, source, tmp_path_factory):
    """`python flows/pipeline.py` on a project whose backbones train on the stack's Dask."""
    state_dir, state = stack
    tmp = tmp_path_factory.mktemp("dask-run")
    address = state["urls"]["BAKEOFF_DASK_ADDRESS"]
    project = _project(tmp / "project", source, BACKBONES, task_runner="dask", dask_address=address)
    shutil.copy(REPO / ".gitignore", project / ".gitignore")
    env = _clients(state_dir, tmp / "prefect-home")
    start = time.monotonic()
    _run([sys.executable, str(REPO / "flows" / "pipeline.py")], project, env, timeout=600)
    print(f"pipeline on the external Dask cluster: {time.monotonic() - start:.0f} s")
    return project, env


def test_pipeline_trains_on_both_dask_workers_and_tracks_in_postgres(stack, dask_run):
    """Each backbone trains on its own Dask worker process; runs, the registered version and
    the `champion` alias are rows in the MLflow server's PostgreSQL database, the artifacts
    are in the server's artifacts folder, the metrics in the project."""
    state_dir, state = stack
    project, _ = dask_run
    logs = {i: (state_dir / "logs" / f"dask-worker-{i}.log").read_text() for i in (1, 2)}
    trained = {i: [b for b in BACKBONES if f"train-{b}" in log] for i, log in logs.items()}
    assert all(trained.values()), f"a Dask worker trained nothing: {trained}"
    assert sorted(trained[1] + trained[2]) == sorted(BACKBONES)
    assert not any("evaluate-" in log for log in logs.values()), "evaluation ran on Dask"
    for backbone in BACKBONES:
        assert (project / "metrics" / f"{backbone}.json").is_file()

    pg = state["urls"]["BAKEOFF_POSTGRES_URL"]
    runs = _sql(
        pg,
        "SELECT t.value, r.status FROM runs r JOIN tags t ON t.run_uuid = r.run_uuid "
        "WHERE t.key = 'backbone'",
    )
    assert sorted(runs) == sorted((b, "FINISHED") for b in BACKBONES)
    decision = json.loads((project / "reports" / "register.json").read_text())
    versions = _sql(pg, "SELECT version FROM model_versions WHERE name = 'image-classifier'")
    assert versions == [(int(decision["version"]),)]
    alias = "SELECT version FROM registered_model_aliases WHERE name = %s AND alias = 'champion'"
    assert _sql(pg, alias, "image-classifier") == versions
    assert list((state_dir / "artifacts").rglob("MLmodel")), "no model in the artifacts folder"


def test_dvc_remote_fresh_clone_pulls_and_reproduces_nothing(dask_run, tmp_path):
    """`dvc remote add` + `dvc push` after the run; a fresh clone's `make pull` fetches the
    data and models, and then `dvc repro` has nothing to do."""
    project, env = dask_run
    remote = tmp_path / "dvc-remote"
    _run(["dvc", "remote", "add", "-d", "storage", str(remote)], project, env)
    _run([*GIT, "add", "-A"], project, env)
    _run([*GIT, "commit", "-q", "-m", "a pipeline run"], project, env)
    _run(["dvc", "push"], project, env)
    assert any(remote.rglob("*")), "dvc push stored nothing"

    clone = tmp_path / "clone"
    _run(["git", "clone", "-q", str(project), str(clone)], tmp_path, env)
    assert not (clone / "models").exists()
    pulled = _run(["make", "-C", str(clone), "-f", str(REPO / "Makefile"), "-o", "setup",
                   "pull"], clone, env)  # fmt: skip
    assert "Data and pipelines are up to date" in pulled
    for backbone in BACKBONES:
        assert (clone / "models" / backbone).is_dir()
    repro = _run(["dvc", "repro"], clone, env)
    assert "Running stage" not in repro and "up to date" in repro, repro


@pytest.fixture
def second_worker(stack, tmp_path):
    """Another machine joins the pool: `prefect worker start --pool bakeoff`."""
    state_dir, _ = stack
    env = _clients(state_dir, tmp_path / "prefect-home") | {"PREFECT_WORKER_QUERY_SECONDS": "1"}
    cmd = [str(Path(sys.executable).parent / "prefect"), "worker", "start", "--pool", "bakeoff"]
    log = tmp_path / "second-worker.log"
    pid = procs.spawn([*cmd, "--name", "second"], log, env)
    try:
        yield log
    finally:
        start = time.monotonic()
        procs.stop([(pid, [*cmd, "--name", "second"])])
        print(f"second worker stopped in {time.monotonic() - start:.0f} s")


def test_deployment_runs_on_pool_workers_one_retrain_at_a_time(stack, source, second_worker,
                                                               tmp_path):  # fmt: skip
    """`python flows/retrain.py --deploy`, two runs at once (`prefect deployment run`,
    `run_deployment`) with two workers on the pool:
    the workers run them one after the other; the first registers a version, the second
    finds no new data."""
    from prefect.client.orchestration import get_client
    from prefect.deployments import run_deployment
    from prefect.settings import PREFECT_API_URL, temporary_settings

    state_dir, state = stack
    project = _project(tmp_path / "project", source, ["SimpleCNN"])
    params = yaml.safe_load((project / "params.yaml").read_text())
    params["register"]["model_name"] = POOL_MODEL
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    shutil.copytree(REPO / "flows", project / "flows")
    env = _clients(state_dir, tmp_path / "prefect-home")
    _run([sys.executable, "flows/retrain.py", "--deploy"], project, env)

    api = {PREFECT_API_URL: state["urls"]["PREFECT_API_URL"]}
    with temporary_settings(api), get_client(sync_client=True) as client:
        deadline = time.monotonic() + 60
        while len(client.read_workers_for_work_pool("bakeoff")) < 2:
            assert time.monotonic() < deadline, "the second worker did not join the pool"
            time.sleep(0.5)
        # One run as docs/scale-out.md triggers it, one with `run_deployment`, back to back.
        out = _run(["prefect", "deployment", "run", "retrain/scheduled-retrain"], project, env)
        by_cli = re.search(r"UUID: ([0-9a-f-]{36})", out)
        assert by_cli, out
        started = [by_cli[1], run_deployment("retrain/scheduled-retrain", timeout=0).id]
        deadline = time.monotonic() + 420
        while True:
            runs = [client.read_flow_run(run_id) for run_id in started]
            if all(run.state.is_final() for run in runs):
                break
            assert time.monotonic() < deadline, [run.state for run in runs]
            time.sleep(1)
    assert all(run.state.is_completed() for run in runs), [run.state for run in runs]
    first, second = sorted(runs, key=lambda run: run.start_time)
    assert first.end_time <= second.start_time, "two retrains ran at the same time"
    assert "no new data" not in first.state.message
    assert "no new data" in second.state.message
    worker_logs = (state_dir / "logs" / "prefect-worker.log").read_text()
    worker_logs += second_worker.read_text()
    assert all(str(run.id) in worker_logs for run in runs), "a run was not a worker's"

    pg = state["urls"]["BAKEOFF_POSTGRES_URL"]
    versions = _sql(pg, "SELECT version FROM model_versions WHERE name = %s", POOL_MODEL)
    assert len(versions) == 1
    alias = "SELECT version FROM registered_model_aliases WHERE name = %s AND alias = 'champion'"
    assert _sql(pg, alias, POOL_MODEL) == versions
    print(f"runs: {[(r.start_time, r.end_time, r.state.message) for r in runs]}")
