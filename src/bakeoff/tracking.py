"""Everything bakeoff tells MLflow, and everything it asks MLflow: the only module importing it.

mlflow is imported inside the functions: it takes about a second to import, and
`bakeoff --help` must stay fast. Every function resolves the tracking URI itself (the
`MLFLOW_TRACKING_URI` environment variable wins over params.yaml), so callers never need a
global MLflow state and concurrent training threads each log to their own run.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bakeoff.errors import BakeoffError
from bakeoff.paths import MLRUNS_DIR, PROJ_ROOT

if TYPE_CHECKING:
    from mlflow import MlflowClient
    from mlflow.entities.model_registry import ModelVersion

    from bakeoff.config import Params, TrackingParams

_ENV = "MLFLOW_TRACKING_URI"
_configured: dict[str, str] = {}  # the last params-derived URI, for functions without params


def _resolve(uri: str) -> str:
    """A relative `sqlite:///x.db` is relative to the project root, not the working directory."""
    prefix = "sqlite:///"
    if uri.startswith(prefix) and not uri[len(prefix) :].startswith("/"):
        return prefix + str(PROJ_ROOT / uri[len(prefix) :])
    return uri


def tracking_uri(params: TrackingParams | None = None) -> str:
    """The tracking URI in force: `MLFLOW_TRACKING_URI`, else params, else the default."""
    if os.environ.get(_ENV):
        return _resolve(os.environ[_ENV])
    if params is not None:
        return _resolve(params.tracking_uri)
    if "uri" in _configured:
        return _configured["uri"]
    from bakeoff.config import TrackingParams

    return _resolve(TrackingParams().tracking_uri)


def _artifact_location(uri: str, from_env: bool) -> str | None:
    """Artifacts next to the sqlite store; on a server the server decides."""
    if uri.startswith(("http://", "https://", "databricks")):
        return None
    if uri.startswith("sqlite:///") and from_env:
        return (Path(uri[len("sqlite:///") :]).parent / "artifacts").as_uri()
    if from_env:
        return None
    return (MLRUNS_DIR / "artifacts").as_uri()


def _client() -> MlflowClient:
    import mlflow

    uri = tracking_uri()
    mlflow.set_tracking_uri(uri)  # the fluent API (start_run, register_model) reads the global
    return mlflow.MlflowClient(tracking_uri=uri, registry_uri=uri)


def configure(params: TrackingParams) -> str:
    """Point MLflow at the project's store and make sure the experiment exists.

    Args:
        params: The tracking section of params.yaml.

    Returns:
        The experiment id.
    """
    from mlflow.exceptions import MlflowException

    uri = tracking_uri(params)
    if not os.environ.get(_ENV):
        _configured["uri"] = uri
    if uri.startswith("sqlite:///"):
        Path(uri[len("sqlite:///") :]).parent.mkdir(parents=True, exist_ok=True)
    client = _client()
    experiment = client.get_experiment_by_name(params.experiment)
    if experiment is not None:
        return experiment.experiment_id
    location = _artifact_location(uri, from_env=bool(os.environ.get(_ENV)))
    try:
        return client.create_experiment(params.experiment, artifact_location=location)
    except MlflowException:  # another process or thread created it first
        experiment = client.get_experiment_by_name(params.experiment)
        if experiment is None:
            raise
        return experiment.experiment_id


def flatten(tree: Any, prefix: str = "") -> dict[str, str]:
    """Nested params as flat `section.key` strings, the shape MLflow params take."""
    if dataclasses.is_dataclass(tree):
        tree = dataclasses.asdict(tree)
    if isinstance(tree, dict):
        flat: dict[str, str] = {}
        for key, value in tree.items():
            flat.update(flatten(value, f"{prefix}{key}."))
        return flat
    return {prefix.rstrip("."): str(tree)}


def _run_exists(client: MlflowClient, run_id: str | None) -> bool:
    from mlflow.exceptions import MlflowException

    if not run_id:
        return False
    try:
        return client.get_run(run_id).info.lifecycle_stage == "active"
    except MlflowException:
        return False


def run_exists(run_id: str | None) -> bool:
    """Whether the store holds this (not deleted) run."""
    return _run_exists(_client(), run_id)


@contextmanager
def training_run(
    params: Params, backbone: str, run_id: str | None, tags: dict[str, str]
) -> Iterator[str]:
    """Start a run for one backbone (or resume `run_id`), ended FINISHED or FAILED.

    Args:
        params: All params; logged flattened (`train.epochs`, ...) when the run is new, with
            the train section as it applies to `backbone`.
        backbone: The backbone name (run name and tag).
        run_id: A run to resume (a crashed training); ignored when the store lacks it.
        tags: Extra run tags (data_version, ...).

    Yields:
        The run id.
    """
    import mlflow
    from mlflow.entities import Param

    from bakeoff.lineage import git_commit

    experiment_id = configure(params.tracking)
    client = _client()
    all_tags = {"backbone": backbone, "git_commit": git_commit(), **tags}
    if _run_exists(client, run_id):
        run = mlflow.start_run(run_id=run_id, tags=all_tags)
    else:
        run = mlflow.start_run(experiment_id=experiment_id, run_name=backbone, tags=all_tags)
        flat = flatten(dataclasses.replace(params, train=params.for_backbone(backbone)))
        items = [Param(k, v) for k, v in flat.items()]
        for start in range(0, len(items), 100):  # log_batch takes at most 100 params
            client.log_batch(run.info.run_id, params=items[start : start + 100])
    try:
        yield run.info.run_id
    except BaseException:
        mlflow.end_run(status="FAILED")
        raise
    mlflow.end_run(status="FINISHED")


def epoch_callback() -> Any:
    """A Keras callback logging every epoch's metrics, learning_rate included, step = epoch.

    It logs to the run active when training begins (inside `training_run`). Being MLflow's
    callback class, a logging failure is a warning, never a crashed training.
    """
    import keras
    import mlflow

    class EpochLogger(mlflow.keras.MlflowCallback):
        """MLflow's Keras callback, synchronous, pinned to one run, with the learning rate."""

        def on_train_begin(self, logs=None):
            # Not super(): it logs optimizer params, which clash with the params logged once
            # when phase 2 changes the learning rate.
            run = mlflow.active_run()
            if run is None:
                raise BakeoffError("epoch_callback() needs an active run: use training_run()")
            self.run_id = run.info.run_id

        def on_epoch_end(self, epoch, logs=None):
            metrics = {k: v for k, v in (logs or {}).items() if _is_number(v)}
            if "learning_rate" not in metrics:
                lr = self.model.optimizer.learning_rate
                metrics["learning_rate"] = float(keras.ops.convert_to_numpy(lr))
            log_metrics(metrics, self.run_id, step=epoch)

    return EpochLogger()


def _is_number(value: Any) -> bool:
    try:
        float(value)
    except (TypeError, ValueError):
        return False
    return True


def log_metrics(
    metrics: dict[str, float], run_id: str, step: int | None = None, model_uri: str | None = None
) -> None:
    """Log metrics to a run, active or finished (its status is left alone).

    Args:
        metrics: Name -> value.
        run_id: The run.
        step: The step (epoch); 0 when None.
        model_uri: A logged model (`models:/m-...`) the numbers also describe: MLflow 3
            shows them on that model's page too.
    """
    from mlflow.entities import Metric

    now = int(time.time() * 1000)
    model_id = None
    if model_uri and model_uri.startswith("models:/m-"):
        model_id = model_uri.removeprefix("models:/")
    items = [Metric(k, float(v), now, step or 0, model_id=model_id) for k, v in metrics.items()]
    _client().log_batch(run_id, metrics=items)


def log_artifacts(paths: list[Path], run_id: str, artifact_path: str | None = None) -> None:
    """Upload files (and folders, by name) to a run, active or finished."""
    client = _client()
    for path in map(Path, paths):
        if path.is_dir():
            sub = f"{artifact_path}/{path.name}" if artifact_path else path.name
            client.log_artifacts(run_id, str(path), sub)
        else:
            client.log_artifact(run_id, str(path), artifact_path)


def log_keras_model(
    model: Any,
    input_example: Any,
    run_id: str,
    name: str = "model",
    classes: list[str] | None = None,
) -> str:
    """Log a Keras model (MLflow's Keras flavour) with its signature to a run.

    Args:
        model: The keras.Model.
        input_example: A batch of model inputs (float32, (n, size, size, 3)).
        run_id: The run the model belongs to.
        name: The model's name in the run.
        classes: Class names, stored in the model metadata (predict reads them).

    Returns:
        The model URI (`models:/m-...`).
    """
    import keras
    import mlflow
    from mlflow.models import Model, infer_signature

    _client()
    if getattr(model, "optimizer", None) is not None:
        # An inference copy: the optimizer's slots would double or triple the artifact.
        model = keras.Model(model.inputs, model.outputs, name=model.name)
    signature = infer_signature(input_example, model.predict(input_example, verbose=0))
    info = Model.log(
        artifact_path=None,
        name=name,
        flavor=mlflow.keras,
        model=model,
        run_id=run_id,
        signature=signature,
        # No input_example: the Keras flavour writes it before creating the model folder
        # (mlflow/mlflow#16183), so the signature alone carries the input shape.
        metadata={"classes": list(classes)} if classes else None,
        # Pinned here: inferring them reloads the model in a subprocess (seconds per model).
        pip_requirements=_pip_requirements(),
    )
    return info.model_uri


def _pip_requirements() -> list[str]:
    from importlib import metadata

    reqs = []
    for dist in ("keras", "tensorflow-cpu", "tensorflow"):
        try:
            reqs.append(f"{dist}=={metadata.version(dist)}")
        except metadata.PackageNotFoundError:
            continue
        if dist.startswith("tensorflow"):
            break
    return reqs


def load_keras_model(model_uri: str) -> Any:
    """Load a logged or registered Keras model (`models:/name@alias`, `models:/m-...`)."""
    import mlflow
    from mlflow.exceptions import MlflowException

    import bakeoff.backbones  # noqa: F401  registers the serializable preprocessing layers

    _client()
    try:
        return mlflow.keras.load_model(model_uri)
    except (MlflowException, OSError) as exc:
        raise BakeoffError(f"cannot load model {model_uri} from {tracking_uri()}: {exc}") from None


def model_classes(model_uri: str) -> list[str] | None:
    """The class names stored with a model: the registered version's tag, else its metadata."""
    import mlflow
    from mlflow.exceptions import MlflowException

    version = version_for_uri(model_uri)
    if version is not None and "classes" in version.tags:
        return json.loads(version.tags["classes"])
    try:
        info = mlflow.models.get_model_info(model_uri)
    except MlflowException:
        return None
    return (info.metadata or {}).get("classes")


def version_for_uri(model_uri: str) -> ModelVersion | None:
    """The registry version a `models:/name@alias` or `models:/name/3` URI points at."""
    from mlflow.exceptions import MlflowException

    if not model_uri.startswith("models:/"):
        return None
    ref = model_uri[len("models:/") :]
    try:
        if "@" in ref:
            name, alias = ref.split("@", 1)
            return _client().get_model_version_by_alias(name, alias)
        if "/" in ref:
            name, number = ref.split("/", 1)
            return _client().get_model_version(name, number)
    except MlflowException:
        return None
    return None


def register_version(
    model_uri: str, name: str, tags: dict[str, str], description: str | None = None
) -> str:
    """Register a logged model as a new version of `name` (created if new).

    Returns:
        The new version number.
    """
    import mlflow

    client = _client()
    tags = {k: str(v) for k, v in tags.items()}
    version = mlflow.register_model(model_uri, name, tags=tags)
    if description:
        client.update_model_version(name, version.version, description=description)
    return str(version.version)


def get_version_by_alias(name: str, alias: str) -> ModelVersion | None:
    """The version holding `alias`, or None (no such model or alias)."""
    from mlflow.exceptions import MlflowException

    try:
        return _client().get_model_version_by_alias(name, alias)
    except MlflowException:
        return None


def set_alias(name: str, alias: str, version: str) -> None:
    """Point `alias` of registered model `name` at `version` (moving it if set elsewhere)."""
    _client().set_registered_model_alias(name, alias, str(version))


def delete_alias(name: str, alias: str) -> None:
    """Remove `alias` from registered model `name` (no error when it is not set)."""
    if get_version_by_alias(name, alias) is not None:
        _client().delete_registered_model_alias(name, alias)


def set_version_tags(name: str, version: str, tags: dict[str, str]) -> None:
    """Tag a model version (decision, reason, ...)."""
    client = _client()
    for key, value in tags.items():
        client.set_model_version_tag(name, str(version), key, str(value))


def run_info(run_id: str) -> dict[str, Any]:
    """A run's status, params, metrics and tags, as plain dicts."""
    from mlflow.exceptions import MlflowException

    try:
        run = _client().get_run(run_id)
    except MlflowException as exc:
        raise BakeoffError(f"MLflow run {run_id} not found in {tracking_uri()}: {exc}") from None
    return {
        "run_id": run.info.run_id,
        "status": run.info.status,
        "params": dict(run.data.params),
        "metrics": dict(run.data.metrics),
        "tags": dict(run.data.tags),
    }


def search_runs(params: TrackingParams, order_by: list[str] | None = None, filter_string: str = ""):
    """The experiment's runs as a DataFrame, best first per `order_by`.

    Args:
        params: The tracking section (experiment name).
        order_by: e.g. `["metrics.test_accuracy DESC"]`.
        filter_string: An MLflow filter, e.g. `"attributes.status = 'FINISHED'"`.

    Returns:
        A pandas DataFrame (`run_id`, `status`, `params.*`, `metrics.*`, `tags.*`).
    """
    import mlflow

    experiment_id = configure(params)
    return mlflow.search_runs(
        experiment_ids=[experiment_id], filter_string=filter_string, order_by=order_by
    )


def log_report(params: Params, paths: list[Path], metrics: dict[str, float]) -> str:
    """Log the comparison report to a run of its own, named `report` (tag stage=report).

    Args:
        params: All params (the tracking section picks the store; the report section is
            logged as the run's params).
        paths: The report files and figures, logged under the `report/` artifact folder.
        metrics: Numbers the report adds to the evaluate runs (e.g. accuracy intervals).

    Returns:
        The run id.
    """
    from mlflow.entities import Metric, Param

    from bakeoff.lineage import git_commit

    experiment_id = configure(params.tracking)
    client = _client()
    run = client.create_run(
        experiment_id, run_name="report", tags={"stage": "report", "git_commit": git_commit()}
    )
    run_id = run.info.run_id
    try:
        now = int(time.time() * 1000)
        client.log_batch(
            run_id,
            metrics=[Metric(k, float(v), now, 0) for k, v in metrics.items()],
            params=[Param(k, v) for k, v in flatten(params.report, "report.").items()],
        )
        log_artifacts(paths, run_id, "report")
    except BaseException:
        client.set_terminated(run_id, status="FAILED")
        raise
    client.set_terminated(run_id, status="FINISHED")
    return run_id
