"""Where MLflow lives: the tracking URI, the client, the experiment, flat params."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bakeoff.paths import MLRUNS_DIR, PROJ_ROOT

if TYPE_CHECKING:
    from mlflow import MlflowClient

    from bakeoff.config import TrackingParams

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
