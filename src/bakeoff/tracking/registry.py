"""The MLflow model registry: versions, aliases, tags, and loading registered models.

Reads return None only when MLflow says the thing does not exist; any other failure is an
outage (waited for, `tracking.outage`) or an error, never "absent": a champion that could
not be read must not count as "no champion yet".
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from bakeoff.errors import BakeoffError
from bakeoff.tracking import outage
from bakeoff.tracking.store import mlflow_client, tracking_uri

if TYPE_CHECKING:
    from mlflow.entities.model_registry import ModelVersion


def load_keras_model(model_uri: str) -> Any:
    """Load a logged or registered Keras model (`models:/name@alias`, `models:/m-...`)."""
    import mlflow
    from mlflow.exceptions import MlflowException

    from bakeoff.model.loading import LEGACY_OBJECTS

    mlflow_client()
    try:
        return outage.call(
            lambda: mlflow.keras.load_model(model_uri, custom_objects=LEGACY_OBJECTS),
            f"load {model_uri}",
        )
    except (MlflowException, OSError) as exc:
        raise BakeoffError(f"cannot load model {model_uri} from {tracking_uri()}: {exc}") from None


def model_classes(model_uri: str) -> list[str] | None:
    """The class names stored with a model: the registered version's tag, else its metadata.

    Returns:
        The names, or None when the model was logged without them.

    Raises:
        BakeoffError: The model is not in the store (or the server stayed away).
    """
    import mlflow

    version = version_for_uri(model_uri)
    if version is not None and "classes" in version.tags:
        return json.loads(version.tags["classes"])
    mlflow_client()
    info = outage.read(
        lambda: mlflow.models.get_model_info(model_uri), f"read the class names of {model_uri}"
    )
    if info is None:
        raise BakeoffError(f"model {model_uri} is not in {tracking_uri()}")
    return (info.metadata or {}).get("classes")


def version_for_uri(model_uri: str) -> ModelVersion | None:
    """The registry version a `models:/name@alias` or `models:/name/3` URI points at.

    None for a URI that names no version (`models:/m-...`, a path) or a version that does
    not exist; a failed read is an outage or an error (`tracking.outage`).
    """
    if not model_uri.startswith("models:/"):
        return None
    ref = model_uri[len("models:/") :]
    client = mlflow_client()
    if "@" in ref:
        name, alias = ref.split("@", 1)
        return get_version_by_alias(name, alias)
    if "/" in ref:
        name, number = ref.split("/", 1)
        return outage.read(lambda: client.get_model_version(name, number), f"read {model_uri}")
    return None


def register_version(
    model_uri: str, name: str, tags: dict[str, str], description: str | None = None
) -> str:
    """Register a logged model as a version of `name` (created if new), once.

    A version already registered from the same logged model (a rerun after a crash between
    registering and moving the alias) is reused, its tags and description updated: one
    logged model never becomes two versions.

    Returns:
        The version number.
    """
    import mlflow

    client = mlflow_client()
    tags = {k: str(v) for k, v in tags.items()}

    def find_or_register() -> str:
        found = _version_of(client, name, model_uri, tags.get("run_id"))
        if found is None:
            return str(mlflow.register_model(model_uri, name, tags=tags).version)
        for key, value in tags.items():
            client.set_model_version_tag(name, found, key, value)
        return found

    # Each attempt looks first: a registration whose answer was lost is not made twice.
    version = outage.call(find_or_register, f"register {model_uri} as {name}")
    if description:
        outage.call(
            lambda: client.update_model_version(name, version, description=description),
            f"describe {name} version {version}",
        )
    return version


def _version_of(client: Any, name: str, model_uri: str, run_id: str | None) -> str | None:
    """The version of `name` registered from `model_uri`, if any."""
    from mlflow.exceptions import MlflowException

    query = f"name = '{name}'" + (f" AND run_id = '{run_id}'" if run_id else "")
    try:
        versions = client.search_model_versions(query)
    except MlflowException as exc:
        if outage.is_absent(exc):
            return None
        raise
    model_id = model_uri.removeprefix("models:/") if model_uri.startswith("models:/m-") else None
    same = [v for v in versions if v.source == model_uri or (model_id and v.model_id == model_id)]
    return str(min(int(v.version) for v in same)) if same else None


def get_version_by_alias(name: str, alias: str) -> ModelVersion | None:
    """The version holding `alias`, or None when MLflow says there is no such model or alias.

    Raises:
        TrackingUnavailable: The server stayed away longer than `tracking.outage_timeout`.
    """
    client = mlflow_client()
    return outage.read(
        lambda: client.get_model_version_by_alias(name, alias),
        f"read {name}@{alias}",
        # A missing alias (of an existing model) is INVALID_PARAMETER_VALUE in MLflow 3.
        absent_text=f"Registered model alias {alias} not found",
    )


def set_alias(name: str, alias: str, version: str) -> None:
    """Point `alias` of registered model `name` at `version` (moving it if set elsewhere)."""
    client = mlflow_client()
    outage.call(
        lambda: client.set_registered_model_alias(name, alias, str(version)),
        f"set {name}@{alias} to version {version}",
    )


def delete_alias(name: str, alias: str) -> None:
    """Remove `alias` from registered model `name` (no error when it is not set)."""
    if get_version_by_alias(name, alias) is not None:
        client = mlflow_client()
        outage.call(
            lambda: client.delete_registered_model_alias(name, alias), f"delete {name}@{alias}"
        )


def set_version_tags(name: str, version: str, tags: dict[str, str]) -> None:
    """Tag a model version (decision, reason, ...)."""
    client = mlflow_client()
    for key, value in tags.items():
        outage.call(
            lambda k=key, v=value: client.set_model_version_tag(name, str(version), k, str(v)),
            f"tag {name} version {version}",
        )
