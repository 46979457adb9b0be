"""Where MLflow lives: the tracking URI, the client, the experiment, flat params."""

from __future__ import annotations

import dataclasses
import logging
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from bakeoff.errors import BakeoffError, is_transient

if TYPE_CHECKING:
    from mlflow import MlflowClient

    from bakeoff.config import TrackingParams

log = logging.getLogger(__name__)
_ENV = "MLFLOW_TRACKING_URI"
T = TypeVar("T")
_RETRY_DELAYS = (1.0, 3.0, 10.0)  # seconds before each new attempt at a transient failure
_SQLITE = "sqlite:///"
# MLflow 3's UI opens an experiment by its kind: without this tag it guesses, and a store
# with no traces yet opens on the GenAI overview instead of the runs table.
EXPERIMENT_KIND = {"mlflow.experimentKind": "custom_model_development"}
# What `configure` last set up (URI and project root), for the functions that take a run id
# or model name only: they talk to the store the stage configured.
_configured: dict[str, Any] = {}


def _resolve(uri: str, root: Path | None) -> str:
    """A relative `sqlite:///x.db` is relative to the project root, not the working directory."""
    if not uri.startswith(_SQLITE) or uri[len(_SQLITE) :].startswith("/"):
        return uri
    root = root if root is not None else _configured.get("root")
    if root is None:
        raise BakeoffError(
            f"tracking URI {uri} is relative but no project root is known: make it absolute"
        )
    return _SQLITE + str(Path(root) / uri[len(_SQLITE) :])


def tracking_uri(params: TrackingParams | None = None, root: Path | None = None) -> str:
    """The tracking URI in force: `MLFLOW_TRACKING_URI`, else params, else the configured one.

    Args:
        params: The tracking section of params.yaml.
        root: The project root a relative sqlite URI resolves against (default: the root
            `configure` was given).
    """
    if os.environ.get(_ENV):
        return _resolve(os.environ[_ENV], root)
    if params is not None:
        return _resolve(params.tracking_uri, root)
    if "uri" in _configured:
        return _configured["uri"]
    raise BakeoffError("MLflow is not configured: call tracking.configure(params, root) first")


def ui_url() -> str | None:
    """The MLflow UI of the configured store: the server itself when the tracking URI is
    http(s), None for a database or file store (which `make ui` serves)."""
    uri = tracking_uri()
    return uri.rstrip("/") if uri.startswith(("http://", "https://")) else None


def _artifact_location(uri: str) -> str | None:
    """Artifacts next to a sqlite store; on a server the server decides."""
    if uri.startswith(_SQLITE):
        return (Path(uri[len(_SQLITE) :]).parent / "artifacts").as_uri()
    return None


def _client() -> MlflowClient:
    import mlflow

    uri = tracking_uri()
    mlflow.set_tracking_uri(uri)  # the fluent API (start_run, register_model) reads the global
    return mlflow.MlflowClient(tracking_uri=uri, registry_uri=uri)


def configure(params: TrackingParams, root: Path) -> str:
    """Point MLflow at the project's store and make sure the experiment exists.

    Args:
        params: The tracking section of params.yaml.
        root: The project root (a relative sqlite URI lives under it).

    Returns:
        The experiment id.
    """
    from mlflow.exceptions import MlflowException

    uri = tracking_uri(params, root)
    _configured.update(uri=uri, root=Path(root))
    if uri.startswith(_SQLITE):
        Path(uri[len(_SQLITE) :]).parent.mkdir(parents=True, exist_ok=True)
    client = _client()
    experiment = client.get_experiment_by_name(params.experiment)
    if experiment is None:
        location = _artifact_location(uri)
        try:
            return client.create_experiment(
                params.experiment, artifact_location=location, tags=EXPERIMENT_KIND
            )
        except MlflowException:  # another process or thread created it first
            experiment = client.get_experiment_by_name(params.experiment)
            if experiment is None:
                raise
    for key, value in EXPERIMENT_KIND.items():  # an experiment made before the tag existed
        if experiment.tags.get(key) != value:
            client.set_experiment_tag(experiment.experiment_id, key, value)
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


def retrying(call: Callable[[], T], what: str) -> T:
    """`call()`, tried again after a transient failure (`errors.is_transient`): a dropped
    connection to the tracking server, a locked sqlite store. Any other failure, or the
    last transient one, is raised: tracking data is never silently lost."""
    for delay in _RETRY_DELAYS:
        try:
            return call()
        except Exception as exc:
            if not is_transient(exc):
                raise
            log.warning("could not %s (%s); retrying in %.0f s", what, exc, delay)
            time.sleep(delay)
    return call()
