"""bakeoff.orchestration without services: DVC bookkeeping, stage names, task runners, retries."""

from __future__ import annotations

import errno
import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from bakeoff.config.params import OrchestrationParams
from bakeoff.errors import BakeoffError, TransientError
from bakeoff.orchestration import dvc as pipeline_dvc
from bakeoff.orchestration import runners
from tests.conftest import REPO

# After a flow ran in this process, bakeoff's logger also has Prefect's API handler, which
# warns when it is used outside a flow run, as these tests do.
pytestmark = pytest.mark.filterwarnings("ignore:Logger 'bakeoff:UserWarning")


def _dvc(root: Path, *args: str) -> str:
    cmd = [sys.executable, "-m", "dvc", *args]
    return subprocess.run(cmd, cwd=root, capture_output=True, text=True, check=True).stdout


def test_pipeline_stages_are_the_stages_of_dvc_yaml(tmp_path, monkeypatch):
    """The names the flow commits are exactly the stages `dvc repro` would run, in order,
    whatever the flow's working directory."""
    from bakeoff.config.params import load_params

    listed = [line.split()[0] for line in _dvc(REPO, "stage", "list").splitlines() if line]
    monkeypatch.chdir(tmp_path)
    stages = pipeline_dvc.pipeline_stages(REPO)
    assert stages == listed
    backbones = load_params(REPO / "params.yaml").backbones
    assert stages[3 : 3 + len(backbones)] == [f"train@{b}" for b in backbones]
    assert stages.index("register") > max(stages.index(f"evaluate@{b}") for b in backbones)


@pytest.fixture
def toy_project(tmp_path):
    """A DVC project with two stages whose outputs were made without `dvc repro`."""
    root = tmp_path / "toy"
    root.mkdir()
    subprocess.run(["git", "init", "-q"], cwd=root, check=True)
    _dvc(root, "init", "-q")
    (root / "params.yaml").write_text("n: 3\n")
    (root / "in.txt").write_text("input\n")
    (root / "dvc.yaml").write_text(
        "stages:\n"
        "  a:\n    cmd: cp in.txt a.txt\n    deps: [in.txt]\n    params: [n]\n    outs: [a.txt]\n"
        "  b:\n    cmd: cp a.txt b.txt\n    deps: [a.txt]\n    outs: [b.txt]\n"
    )
    (root / "a.txt").write_text("input\n")
    (root / "b.txt").write_text("input\n")
    return root


def test_record_in_dvc_leaves_nothing_for_dvc_repro(toy_project):
    assert set(pipeline_dvc.dvc_status(toy_project)) == {"a", "b"}
    pipeline_dvc.record_in_dvc(toy_project, ["a", "b"])
    assert pipeline_dvc.dvc_status(toy_project) == {}
    assert "Stage 'a' didn't change" in _dvc(toy_project, "repro", "--dry")
    lock = (toy_project / "dvc.lock").read_text()
    assert "a.txt" in lock and "n: 3" in lock


def test_record_in_dvc_fails_when_stages_it_did_not_run_are_stale(toy_project):
    with pytest.raises(RuntimeError, match=r"dvc status.*still reports changes.*dvc repro"):
        pipeline_dvc.record_in_dvc(toy_project, ["a"])


def test_build_task_runner_follows_params():
    from prefect.task_runners import ProcessPoolTaskRunner, ThreadPoolTaskRunner
    from prefect_dask import DaskTaskRunner

    thread = runners.build_task_runner(OrchestrationParams(task_runner="thread"))
    assert isinstance(thread, ThreadPoolTaskRunner)
    process = runners.build_task_runner(OrchestrationParams(task_runner="process"))
    assert isinstance(process, ProcessPoolTaskRunner)
    address = "tcp://10.0.0.5:8786"
    dask = runners.build_task_runner(OrchestrationParams(task_runner="dask", dask_address=address))
    assert isinstance(dask, DaskTaskRunner) and dask.address == address


def test_local_dask_cluster_listens_on_loopback_only():
    """The LocalCluster the `dask` runner starts: scheduler and dashboard on 127.0.0.1."""
    from distributed import LocalCluster

    runner = runners.build_task_runner(OrchestrationParams(task_runner="dask"))
    kwargs = {**runner.cluster_kwargs, "n_workers": 0}  # the bindings, without the workers
    with LocalCluster(**kwargs) as cluster:
        assert cluster.scheduler.address.startswith("tcp://127.0.0.1:")
        bound = [s.getsockname()[0] for s in cluster.scheduler.http_server._sockets.values()]
        assert bound and set(bound) == {"127.0.0.1"}, bound


def test_stage_kwargs_put_every_stage_under_the_given_root(tmp_path):
    """The one place the CLI and the flow get their stage paths from: every path is under
    the project root passed in (never the checkout's), laid out as dvc.yaml expects."""
    from bakeoff.config.layout import ProjectPaths
    from bakeoff.config.wiring import stage_kwargs

    root = tmp_path / "project"
    kwargs = stage_kwargs(ProjectPaths(root), "MobileNet")
    assert kwargs["ingest"] == {"out_dir": root / "data/raw", "root": root}
    assert kwargs["validate"] == {
        "raw_dir": root / "data/raw",
        "out_dir": root / "data/validated",
        "reports_dir": root / "reports",
        "root": root,  # validate.exclude is relative to it
    }
    assert kwargs["split"] == {
        "accepted": root / "data/validated/accepted.csv",
        "out_dir": root / "data/split",
    }
    assert kwargs["train"] == {
        "split_dir": root / "data/split",
        "image_root": root / "data/raw",
        "out_dir": root / "models/MobileNet",
        "state_dir": root / ".bakeoff/train/MobileNet",
        "plots_dir": root / "plots/MobileNet",
        "cache_dir": root / ".bakeoff/cache",
        "root": root,
    }
    assert kwargs["evaluate"] == {
        "split_dir": root / "data/split",
        "image_root": root / "data/raw",
        "model_dir": root / "models/MobileNet",
        "metrics_path": root / "metrics/MobileNet.json",
        "plots_dir": root / "plots/MobileNet",
        "cache_dir": root / ".bakeoff/cache",
        "root": root,
    }
    assert kwargs["register"] == {
        "models_dir": root / "models",
        "metrics_dir": root / "metrics",
        "split_dir": root / "data/split",
        "image_root": root / "data/raw",
        "out_path": root / "reports/register.json",
        "cache_dir": root / ".bakeoff/cache",
        "root": root,
    }
    assert kwargs["report"] == {
        "metrics_dir": root / "metrics",
        "models_dir": root / "models",
        "out_dir": root / "reports",
        "plots_dir": root / "plots",
        "image_root": root / "data/raw",
        "root": root,
    }
    assert kwargs["export"] == {
        "split_dir": root / "data/split",
        "image_root": root / "data/raw",
        "models_dir": root / "models",
        "exports_dir": root / "exports",
        "out_path": root / "reports/export.json",
        "cache_dir": root / ".bakeoff/cache",
        "root": root,
    }
    assert set(stage_kwargs(ProjectPaths(root))) == {
        "ingest", "validate", "split", "register", "export", "report",
    }  # fmt: skip


@pytest.mark.parametrize("name", ["../x", "MobileNet/../../etc", "mobilenet"])
def test_stage_kwargs_refuse_a_backbone_name_not_in_the_registry(tmp_path, name):
    from bakeoff.config.layout import ProjectPaths
    from bakeoff.config.wiring import stage_kwargs
    from bakeoff.errors import BakeoffError

    with pytest.raises(BakeoffError, match="unknown backbone"):
        stage_kwargs(ProjectPaths(tmp_path), name)


def test_stage_kwargs_match_the_stage_functions_signatures(tmp_path):
    """Each stage function accepts exactly its keyword arguments (plus the backbone): its
    params sections and its paths, as the CLI and the flow pass them."""
    import inspect

    from bakeoff.config.layout import ProjectPaths
    from bakeoff.config.wiring import stage_kwargs
    from bakeoff.data.ingest import ingest
    from bakeoff.data.split import split
    from bakeoff.data.validate import validate
    from bakeoff.evaluate.stage import evaluate
    from bakeoff.export.stage import export
    from bakeoff.register.stage import register
    from bakeoff.report.stage import report
    from bakeoff.train.stage import train

    functions = {"ingest": ingest, "validate": validate, "split": split, "train": train,
                 "evaluate": evaluate, "register": register, "export": export,
                 "report": report}  # fmt: skip
    from bakeoff.config.params import load_params

    params = load_params(REPO / "params.yaml")
    leading = {"backbone"}
    for stage, kwargs in stage_kwargs(ProjectPaths(tmp_path), "SimpleCNN", params).items():
        parameters = inspect.signature(functions[stage]).parameters
        required = {
            name for name, p in parameters.items()
            if p.default is inspect.Parameter.empty and name not in leading
        }  # fmt: skip
        assert required <= set(kwargs) <= set(parameters), stage


def test_flow_tasks_reach_workers_that_only_have_bakeoff_installed(tmp_path):
    """Dask workers on other machines have bakeoff installed but not flows/pipeline.py: the
    tasks must travel by value (cloudpickle does so for a decorated function, whose module
    attribute is the Task), so a fresh interpreter without flows/ can unpickle them."""
    import cloudpickle

    sys.path.insert(0, str(REPO / "flows"))
    try:
        import pipeline
    finally:
        sys.path.remove(str(REPO / "flows"))
    payload = cloudpickle.dumps([pipeline.train_task, pipeline.evaluate_task])
    code = (
        "import sys, cloudpickle; print("
        "[t.name for t in cloudpickle.loads(sys.stdin.buffer.read())])"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], input=payload, cwd=tmp_path, capture_output=True
    )
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    assert done.stdout.decode().strip() == "['train', 'evaluate']"


def _raised_from(cause: BaseException, wrapper: type[Exception] = RuntimeError) -> Exception:
    """`wrapper` raised while handling `cause`, as MLflow wraps a dropped HTTP connection."""
    try:
        try:
            raise cause
        except BaseException:
            raise wrapper("API request failed")  # noqa: B904 (implicit context, as MLflow)
    except Exception as exc:
        return exc


@pytest.mark.parametrize(
    ("error", "retried"),
    [
        (ConnectionRefusedError(errno.ECONNREFUSED, "refused"), True),
        (TimeoutError("read timed out"), True),
        (OSError(errno.EAGAIN, "Resource temporarily unavailable"), True),
        (OSError(errno.EBUSY, "Device or resource busy"), True),
        (sqlite3.OperationalError("database is locked"), True),
        (_raised_from(ConnectionResetError(errno.ECONNRESET, "reset")), True),
        (TransientError("`bakeoff train VGG16` exited with -9"), True),
        (OSError(errno.ENOENT, "No such file or directory"), False),
        (OSError(errno.ENOSPC, "No space left on device"), False),
        (OSError("disk busy"), False),  # no errno: nothing says it will pass
        (BakeoffError("data.source does not exist"), False),
        (TypeError("train() got an unexpected keyword argument"), False),
        (KeyError("val_accuracy"), False),
        (_raised_from(KeyError("x")), False),
    ],
)
def test_retries_are_for_transient_failures_only(error, retried):
    from prefect.states import Failed

    assert runners.retry_if_transient(None, None, Failed(data=error)) is retried


def test_a_training_process_reports_a_user_error_as_data(tmp_path):
    """The child's BakeoffError reaches the flow as a BakeoffError with its own message,
    read from the JSON file the CLI writes, whatever else the child printed."""
    from bakeoff.orchestration import processes

    (tmp_path / "params.yaml").write_text("backbones: [SimpleCNN]\n")
    with pytest.raises(BakeoffError, match=r"^unknown backbone 'NoSuchNet': choose from "):
        processes.train_in_subprocess("NoSuchNet", tmp_path)


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        (BakeoffError("lower the learning rate"), "user"),
        (ConnectionRefusedError(errno.ECONNREFUSED, "refused"), "transient"),
        (KeyError("val_accuracy"), "crash"),
    ],
)
def test_the_error_record_says_which_kind_of_failure(tmp_path, monkeypatch, error, kind):
    from bakeoff.orchestration import processes

    target = tmp_path / "error.json"
    monkeypatch.setenv(processes.ERROR_FILE_ENV, str(target))
    try:
        raise error
    except Exception as exc:
        processes.record_error(exc)
    record = json.loads(target.read_text())
    assert (record["kind"], record["type"]) == (kind, type(error).__name__)
    assert ("Traceback" in record["traceback"]) is (kind != "user")


def test_each_stage_gets_its_own_params_section_and_the_shared_values_from_one_place(tmp_path):
    from bakeoff.config.layout import ProjectPaths
    from bakeoff.config.params import load_params
    from bakeoff.config.wiring import stage_kwargs

    params = load_params(REPO / "params.yaml")
    kwargs = stage_kwargs(ProjectPaths(tmp_path), "SimpleCNN", params)
    assert kwargs["ingest"]["params"] is params.data
    assert kwargs["evaluate"]["params"] is params.evaluate
    assert kwargs["evaluate"]["train"] is params.train  # the recipe its CV heads follow
    assert kwargs["export"]["model_name"] == params.register.model_name
    assert {k for k, v in kwargs.items() if v.get("tracking_params") is params.tracking} == {
        "train", "evaluate", "register", "export", "report",
    }  # fmt: skip
    # Shared settings: the top-level objects themselves, no copies.
    assert all(v["seed"] == params.seed for k, v in kwargs.items() if "seed" in v)
    assert kwargs["register"]["budgets"] is kwargs["report"]["budgets"] is params.budgets
