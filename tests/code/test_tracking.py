"""tracking.py against a real sqlite MLflow store in tmp_path."""

from __future__ import annotations

import contextlib
import json
import math
import time
from pathlib import Path

import numpy as np
import pytest

from bakeoff import tracking
from tests.conftest import run_sections


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    """One project (and sqlite store) for the module: creating the schema takes seconds."""
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("MLFLOW_TRACKING_URI", raising=False)
        yield tmp_path_factory.mktemp("project")


@pytest.fixture(scope="module")
def tracking_uri(root):
    """Where params.yaml's relative `sqlite:///mlruns/mlflow.db` resolves for `root`."""
    return f"sqlite:///{root / 'mlruns' / 'mlflow.db'}"


def _keras_model(n_classes: int = 3):
    import keras

    model = keras.Sequential(
        [keras.Input((8, 8, 3)), keras.layers.Flatten(), keras.layers.Dense(n_classes, "softmax")]
    )
    model.compile(optimizer=keras.optimizers.Adamax(0.01), loss="sparse_categorical_crossentropy")
    return model


def test_configure_puts_artifacts_next_to_the_env_store(params, tmp_path, monkeypatch):
    from mlflow import MlflowClient

    uri = f"sqlite:///{tmp_path / 'elsewhere' / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    experiment_id = tracking.configure(params.tracking, tmp_path / "project")
    experiment = MlflowClient(uri).get_experiment(experiment_id)
    assert experiment.name == params.tracking.experiment
    assert experiment.artifact_location == (tmp_path / "elsewhere" / "artifacts").as_uri()
    # A model-training experiment (the tag MLflow 3 defines; 3.17's UI goes by its own switch,
    # which the description names).
    assert experiment.tags["mlflow.experimentKind"] == "custom_model_development"
    assert "viewStateShareKey=bakeoff" in experiment.tags["mlflow.note.content"]
    MlflowClient(uri).set_experiment_tag(
        experiment_id, "mlflow.experimentKind", "genai_development"
    )
    assert tracking.configure(params.tracking, tmp_path / "project") == experiment_id  # idempotent
    tags = MlflowClient(uri).get_experiment(experiment_id).tags
    assert tags["mlflow.experimentKind"] == "custom_model_development"
    # The saved runs view the docs' and the retrain artifact's links open.
    envelope = json.loads(tags["mlflow.sharedViewState.bakeoff"])  # a named view (Views menu)
    assert envelope["name"] == "Backbone comparison"
    view = json.loads(envelope["state"])
    assert view["orderByKey"] == "metrics.`test_accuracy`" and not view["orderByAsc"]
    assert {"metrics.`test_macro_f1`", "metrics.`latency_ms_b1`", "metrics.`size_mb`"} <= set(
        view["selectedColumns"]
    )
    # Its chart view opens on the charts that decide between backbones.
    charts = view["compareRunCharts"][:4]
    shown = [c.get("metricKey") or c["yaxis"]["key"] for c in charts]
    assert shown == ["test_accuracy", "latency_ms_b1", "size_mb", "test_accuracy"]
    assert [c["type"] for c in charts] == ["BAR", "BAR", "BAR", "SCATTER"]
    assert tracking.runs_page("http://h:5000/", experiment_id).endswith(
        f"/#/experiments/{experiment_id}/runs?workflowType=machine_learning&viewStateShareKey=bakeoff"
    )
    assert not (tmp_path / "project").exists()


def test_default_store_is_under_the_given_project_root(params, tmp_path, monkeypatch):
    from mlflow import MlflowClient

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.chdir(tmp_path)  # not the root: the store must not follow the cwd
    root = tmp_path / "project"
    assert params.tracking.tracking_uri == "sqlite:///mlruns/mlflow.db"
    experiment_id = tracking.configure(params.tracking, root)
    uri = f"sqlite:///{root / 'mlruns' / 'mlflow.db'}"
    assert tracking.tracking_uri() == uri and (root / "mlruns" / "mlflow.db").is_file()
    assert not (tmp_path / "mlruns").exists()
    experiment = MlflowClient(uri).get_experiment(experiment_id)
    assert experiment.artifact_location == (root / "mlruns" / "artifacts").as_uri()
    # a tracking server keeps its own artifacts
    assert tracking.store._artifact_location("http://127.0.0.1:5000") is None


def test_training_run_logs_flattened_params_and_finishes(params, root, tracking_uri):
    with tracking.training_run(
        run_sections(params), "SimpleCNN", None, {"data_version": "abc"}, root
    ) as run_id:
        tracking.log_metrics({"val_accuracy": 0.5}, run_id, step=0)
    info = tracking.run_info(run_id)
    assert info["status"] == "FINISHED"
    assert info["params"]["train.epochs"] == str(params.train.epochs)
    assert info["params"]["tracking.experiment"] == params.tracking.experiment
    assert info["tags"]["backbone"] == "SimpleCNN"
    assert info["tags"]["data_version"] == "abc"
    assert info["metrics"]["val_accuracy"] == 0.5


def test_search_runs_orders_best_first(params, root, tracking_uri):
    ids = []
    for value in (0.2, 0.9, 0.5):
        with tracking.training_run(run_sections(params), "SimpleCNN", None, {}, root) as run_id:
            tracking.log_metrics({"search_score": value}, run_id)
        ids.append(run_id)
    runs = tracking.search_runs(
        params.tracking, root, ["metrics.search_score DESC"], "metrics.search_score > 0"
    )
    assert list(runs["run_id"]) == [ids[1], ids[2], ids[0]]


def test_exception_marks_run_failed_and_propagates(params, root, tracking_uri):
    with (
        pytest.raises(RuntimeError, match="boom"),
        tracking.training_run(run_sections(params), "SimpleCNN", None, {}, root) as run_id,
    ):
        raise RuntimeError("boom")
    assert tracking.run_info(run_id)["status"] == "FAILED"


def test_failure_while_logging_params_ends_the_run_so_a_retry_can_start(
    params, root, tracking_uri, monkeypatch
):
    """A dropped connection while logging the params is waited for; a refusal ends the new
    run FAILED (not left RUNNING), and the next attempt starts a run of its own."""
    from mlflow import MlflowClient

    from bakeoff.tracking import outage

    real = MlflowClient.log_batch
    errors = [ConnectionError("tracking server restarting")]

    def flaky(self, *args, **kwargs):
        error = errors.pop(0) if errors else None
        if error is not None:
            raise error
        return real(self, *args, **kwargs)

    monkeypatch.setattr(outage, "BACKOFF", (0.01,))
    monkeypatch.setattr(MlflowClient, "log_batch", flaky)
    with tracking.training_run(run_sections(params), "SimpleCNN", None, {}, root) as first:
        pass  # the connection error was retried
    assert tracking.run_info(first)["params"]["train.epochs"] == str(params.train.epochs)
    failed = tracking.search_runs(params.tracking, root, filter_string="")
    before = set(failed["run_id"])
    errors.append(_refused())
    with (
        pytest.raises(Exception, match="bad metric"),
        tracking.training_run(run_sections(params), "SimpleCNN", None, {}, root),
    ):
        pass
    (refused,) = set(tracking.search_runs(params.tracking, root)["run_id"]) - before
    assert tracking.run_info(refused)["status"] == "FAILED"
    with tracking.training_run(run_sections(params), "SimpleCNN", None, {}, root) as run_id:
        pass
    assert tracking.run_info(run_id)["status"] == "FINISHED"


def test_resume_keeps_the_run_id(params, root, tracking_uri):
    with (
        pytest.raises(KeyboardInterrupt),
        tracking.training_run(run_sections(params), "SimpleCNN", None, {}, root) as first,
    ):
        tracking.log_metrics({"loss": 2.0}, first, step=0)
        raise KeyboardInterrupt
    with tracking.training_run(run_sections(params), "SimpleCNN", first, {}, root) as second:
        tracking.log_metrics({"loss": 1.0}, second, step=1)
    assert second == first
    info = tracking.run_info(first)
    assert info["status"] == "FINISHED"
    assert info["metrics"]["loss"] == 1.0
    # a run id the store does not know (e.g. the db was deleted) starts a new run
    with tracking.training_run(run_sections(params), "SimpleCNN", "0" * 32, {}, root) as third:
        pass
    assert third != "0" * 32


def test_epoch_callback_logs_every_epoch_with_learning_rate(params, root, tracking_uri):
    from mlflow import MlflowClient

    model = _keras_model()
    x = np.random.default_rng(0).uniform(0, 255, (8, 8, 8, 3)).astype("float32")
    y = np.arange(8) % 3
    with tracking.training_run(run_sections(params), "SimpleCNN", None, {}, root) as run_id:
        model.fit(x, y, epochs=3, verbose=0, callbacks=[tracking.epoch_callback()])
    client = MlflowClient(tracking_uri)
    loss = client.get_metric_history(run_id, "loss")
    lr = client.get_metric_history(run_id, "learning_rate")
    assert sorted(m.step for m in loss) == [0, 1, 2]
    assert all(math.isclose(m.value, 0.01, rel_tol=1e-5) for m in lr)


def test_keras_model_registry_and_aliases(params, root, tracking_uri, tmp_path):
    model = _keras_model()
    x = np.zeros((2, 8, 8, 3), dtype="float32")
    with tracking.training_run(run_sections(params), "SimpleCNN", None, {}, root) as run_id:
        uri = tracking.log_keras_model(model, x, run_id, classes=["a", "b", "c"])
    assert uri.startswith("models:/")
    artifact = tmp_path / "extra.txt"
    artifact.write_text("hello")
    tracking.log_artifacts([artifact], run_id, "extras")  # to a FINISHED run
    assert tracking.run_info(run_id)["status"] == "FINISHED"

    name = params.register.model_name
    assert tracking.get_version_by_alias(name, "champion") is None
    v1 = tracking.register_version(uri, name, {"backbone": "SimpleCNN"})
    v2 = tracking.register_version(uri, name, {"backbone": "SimpleCNN"})
    tracking.set_alias(name, "champion", v1)
    tracking.set_alias(name, "challenger", v2)
    assert str(tracking.get_version_by_alias(name, "champion").version) == v1
    tracking.set_alias(name, "champion", v2)  # moves
    assert str(tracking.get_version_by_alias(name, "champion").version) == v2
    tracking.delete_alias(name, "challenger")
    tracking.delete_alias(name, "challenger")  # absent: no error
    assert tracking.get_version_by_alias(name, "challenger") is None
    tracking.set_version_tags(name, v2, {"decision": "promoted"})
    assert tracking.get_version_by_alias(name, "champion").tags["decision"] == "promoted"

    assert tracking.model_classes(uri) == ["a", "b", "c"]
    loaded = tracking.load_keras_model(f"models:/{name}@champion")
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0))
    assert Path(tracking.tracking_uri().removeprefix("sqlite:///")).is_file()


class _FlakyClient:
    """The real MLflow client, whose `log_batch` first fails with the given errors."""

    def __init__(self, client, errors: list[Exception]):
        self.mlflow_client, self._errors = client, list(errors)

    def log_batch(self, *args, **kwargs):
        if self._errors:
            raise self._errors.pop(0)
        return self.mlflow_client.log_batch(*args, **kwargs)

    def __getattr__(self, name):
        return getattr(self.mlflow_client, name)


def _refused():
    from mlflow.exceptions import MlflowException
    from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE

    return MlflowException("bad metric", error_code=INVALID_PARAMETER_VALUE)


def _server_error():
    from mlflow.exceptions import MlflowException
    from mlflow.protos.databricks_pb2 import TEMPORARILY_UNAVAILABLE

    return MlflowException("API request failed: 503", error_code=TEMPORARILY_UNAVAILABLE)


@pytest.mark.parametrize(
    ("errors", "logged"),
    [
        ([ConnectionResetError(104, "reset"), _server_error()], True),  # an outage: sent later
        ([_refused()], False),  # MLflow refused the numbers: the training fails
    ],
)
def test_epoch_logging_failures_fail_the_training(params, root, monkeypatch, errors, logged):
    """MLflow's own Keras callback turns a logging failure into a warning and the epoch's
    numbers are lost; bakeoff's journals them, sends them again after an outage, and fails
    the training when MLflow refuses them."""
    from bakeoff.tracking import outage, store

    monkeypatch.setattr(outage, "BACKOFF", (0.05,))
    tracking.configure(params.tracking, root)  # the client below needs the store
    model = _keras_model()
    x = np.random.default_rng(0).uniform(0, 255, (8, 8, 8, 3)).astype("float32")
    y = np.arange(8) % 3
    flaky = _FlakyClient(store.mlflow_client(), errors)
    real = store.mlflow_client
    with (
        contextlib.nullcontext() if logged else pytest.raises(Exception, match="bad metric"),
        tracking.training_run(run_sections(params), "SimpleCNN", None, {}, root) as run_id,
    ):
        monkeypatch.setattr(store, "mlflow_client", lambda: flaky)
        model.fit(x, y, epochs=1, verbose=0, callbacks=[tracking.epoch_callback()])
    monkeypatch.setattr(store, "mlflow_client", real)
    info = tracking.run_info(run_id)
    assert ("loss" in info["metrics"]) is logged
    assert info["status"] == ("FINISHED" if logged else "FAILED")


def _short_window(params, seconds: float = 0.5):
    import dataclasses

    return dataclasses.replace(
        params, tracking=dataclasses.replace(params.tracking, outage_timeout=seconds)
    )


def test_a_failed_run_read_on_resume_starts_no_second_run(params, root, monkeypatch):
    """Resuming a crashed run while the store fails to answer (a 503) waits, then fails
    naming the server: it never counts the run as gone and starts another."""
    from mlflow import MlflowClient

    from bakeoff.tracking import outage

    with (
        pytest.raises(KeyboardInterrupt),
        tracking.training_run(run_sections(params), "SimpleCNN", None, {}, root) as crashed,
    ):
        raise KeyboardInterrupt
    before = len(tracking.search_runs(params.tracking, root))

    def unavailable(self, run_id):
        raise _server_error()

    monkeypatch.setattr(outage, "BACKOFF", (0.05,))
    monkeypatch.setattr(MlflowClient, "get_run", unavailable)
    with (
        pytest.raises(tracking.TrackingUnavailable, match=r"MLflow tracking server sqlite:///"),
        tracking.training_run(run_sections(_short_window(params)), "SimpleCNN", crashed, {}, root),
    ):
        pytest.fail("the training started without knowing whether its run exists")
    monkeypatch.undo()
    assert len(tracking.search_runs(params.tracking, root)) == before
    # MLflow saying the run does not exist is what starts a new one
    assert not tracking.run_exists("f" * 32)


def test_journaled_metrics_outlive_an_outage_beyond_the_window(params, root, tmp_path,
                                                               monkeypatch):  # fmt: skip
    """The server stays away longer than tracking.outage_timeout: the run ends with a
    one-line error naming the server and the window, its metrics stay in the journal, and
    the rerun sends them to the same run, which ends FINISHED with every step."""
    from bakeoff.tracking import outage, store

    monkeypatch.setattr(outage, "BACKOFF", (0.05,))
    tracking.configure(params.tracking, root)  # the client below needs the store
    book = tmp_path / "journal.jsonl"
    real = store.mlflow_client
    down = _FlakyClient(real(), [ConnectionRefusedError(111, "refused")] * 10_000)
    with (
        pytest.raises(tracking.TrackingUnavailable, match=r"outage_timeout=0\.5 s") as failed,
        tracking.training_run(
            run_sections(_short_window(params)), "SimpleCNN", None, {}, root, book
        ) as run,
    ):
        monkeypatch.setattr(store, "mlflow_client", lambda: down)
        for step in range(3):
            tracking.log_metrics({"journaled_loss": 3.0 - step}, run, step=step)
    assert "\n" not in str(failed.value) and tracking.tracking_uri() in str(failed.value)
    monkeypatch.setattr(store, "mlflow_client", real)
    assert tracking.run_info(run)["status"] == "RUNNING"
    assert len(book.read_text().splitlines()) == 3
    with tracking.training_run(run_sections(params), "SimpleCNN", run, {}, root, book) as again:
        pass
    assert again == run and tracking.run_info(run)["status"] == "FINISHED"
    history = real().get_metric_history(run, "journaled_loss")
    assert sorted((m.step, m.value) for m in history) == [(0, 3.0), (1, 2.0), (2, 1.0)]


def test_tuning_trials_never_wait_for_the_server_and_arrive_once(params, root, tmp_path,
                                                                  monkeypatch):  # fmt: skip
    """A training run's child runs (its tuning trials) are journaled like its metrics:
    logging one while the server is away returns at once, and when the server answers
    again each arrives once, with its numbers, also after a send cut short between
    creating the child and logging to it."""
    from bakeoff.tracking import outage, store

    monkeypatch.setattr(outage, "BACKOFF", (0.05,))
    tracking.configure(params.tracking, root)  # the client below needs the store
    real = store.mlflow_client
    # Every log_batch fails 3 times: trial-0 is created, then its numbers fail to arrive.
    flaky = _FlakyClient(real(), [ConnectionResetError(104, "reset")] * 3)
    book = tmp_path / "journal.jsonl"
    with tracking.training_run(run_sections(params), "SimpleCNN", None, {}, root, book) as run:
        monkeypatch.setattr(store, "mlflow_client", lambda: flaky)
        start = time.monotonic()
        for i in range(3):
            tracking.log_child_run(
                run, f"trial-{i}", {"learning_rate": 0.01 * (i + 1)},
                {"val_accuracy": 0.5 + i / 10}, {"tuning_trial": str(i)},
            )  # fmt: skip
        assert time.monotonic() - start < 1.0, "the trials waited for the server"
    monkeypatch.setattr(store, "mlflow_client", real)
    experiment = real().get_run(run).info.experiment_id
    children = real().search_runs([experiment], f"tags.`mlflow.parentRunId` = '{run}'")
    assert sorted(c.info.run_name for c in children) == ["trial-0", "trial-1", "trial-2"]
    for child in children:
        i = int(child.data.tags["tuning_trial"])
        assert child.info.status == "FINISHED"
        assert child.data.metrics == {"val_accuracy": pytest.approx(0.5 + i / 10)}
        assert child.data.params == {"learning_rate": str(0.01 * (i + 1))}
    assert '"child"' in book.read_text()


@pytest.fixture()
def mlflow_server(tmp_path, monkeypatch):
    """A real `mlflow server` on a sqlite store, as MLFLOW_TRACKING_URI."""
    from tests.conftest import MlflowServer

    server = MlflowServer(tmp_path, f"sqlite:///{tmp_path / 'mlflow.db'}")
    try:
        server.start()
        monkeypatch.setenv("MLFLOW_TRACKING_URI", server.uri)
        yield server.uri
    finally:
        server.stop()


@pytest.mark.filterwarnings("ignore:The specified dataset source can be interpreted")
def test_runs_logging_the_same_split_at_once_all_get_it(mlflow_server, tmp_path):
    """Backbones trained in parallel log the same split at the same moment: each run gets
    it (on a sqlite store; tests/code/test_faults.py does it on PostgreSQL)."""
    from tests.conftest import assert_concurrent_splits_logged

    assert_concurrent_splits_logged(mlflow_server, tmp_path)


def test_logged_model_is_filed_under_its_run_and_experiment(params, root, mlflow_server):
    """On a server, the model is in the bakeoff experiment (not Default), named after the
    backbone, and its run lists it (the run page's Logged models, the table's Models)."""
    from mlflow import MlflowClient

    x = np.zeros((2, 8, 8, 3), dtype="float32")
    with tracking.training_run(run_sections(params), "SimpleCNN", None, {}, root) as run_id:
        uri = tracking.log_keras_model(_keras_model(), x, run_id, ["a", "b", "c"], "SimpleCNN")
    client = MlflowClient(mlflow_server)
    experiment = client.get_experiment_by_name(params.tracking.experiment)
    model = client.get_logged_model(uri.removeprefix("models:/"))
    assert (model.experiment_id, model.name, model.source_run_id) == (
        experiment.experiment_id, "SimpleCNN", run_id
    )  # fmt: skip
    found = client.search_logged_models(
        experiment_ids=[experiment.experiment_id], filter_string=f"source_run_id = '{run_id}'"
    )
    assert [m.model_id for m in found] == [model.model_id]
    outputs = client.get_run(run_id).outputs.model_outputs
    assert [o.model_id for o in outputs] == [model.model_id]
