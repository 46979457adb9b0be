"""The MLflow model registry: versions, aliases, tags, and loading registered models."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from bakeoff.errors import BakeoffError
from bakeoff.tracking.store import _client, tracking_uri

if TYPE_CHECKING:
    from mlflow.entities.model_registry import ModelVersion


def load_keras_model(model_uri: str) -> Any:
    """Load a logged or registered Keras model (`models:/name@alias`, `models:/m-...`)."""
    import mlflow
    from mlflow.exceptions import MlflowException

    from bakeoff.saved_models import LEGACY_OBJECTS

    _client()
    try:
        return mlflow.keras.load_model(model_uri, custom_objects=LEGACY_OBJECTS)
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
