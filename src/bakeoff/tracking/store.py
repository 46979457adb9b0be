"""Where MLflow lives: the tracking URI, the client, the experiment, flat params."""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bakeoff.errors import BakeoffError
from bakeoff.tracking import outage
from bakeoff.tracking.charts import CHARTS_VIEW

if TYPE_CHECKING:
    from mlflow import MlflowClient

    from bakeoff.config.params import TrackingParams

_ENV = "MLFLOW_TRACKING_URI"
_SQLITE = "sqlite:///"
# MLflow 3 marks an experiment's kind with this tag. Its open-source UI (3.17, 3.18) ignores it
# and goes by a per-browser GenAI / Model training switch instead (local storage
# `mlflow.workflowType_v1`, default GenAI: the traces overview), which a
# `workflowType=machine_learning` URL parameter overrides: see `runs_page`.
EXPERIMENT_KIND = {"mlflow.experimentKind": "custom_model_development"}
# A saved view of the runs table (the UI's "share" feature: the experiment tag
# `mlflow.sharedViewState.<key>` holds it as JSON, the URL names the key): best test
# accuracy first, the columns that decide between backbones placed right after the run
# name (`columnOrder`, by the grid's column ids; `runDateAndNestInfo` is Created), so
# they show without scrolling; its chart view opens on the deciding charts (`charts`).
VIEW_KEY = "bakeoff"
VIEW_NAME = "Backbone comparison"
_VIEW_TIME = 1767225600000  # 2026-01-01, ms
_DECIDING = ["test_accuracy", "test_acc_lo", "test_acc_hi", "latency_ms_b1", "size_mb"]
_DETAIL = ["cv_accuracy", "cv_acc_lo", "cv_acc_hi", "test_macro_f1", "param_count",
           "train_seconds"]  # fmt: skip
_FIRST = [
    *(f"metrics.`{name}`" for name in _DECIDING),
    "attributes.`Models`",
    *(f"metrics.`{name}`" for name in _DETAIL),
]
RUNS_VIEW = {
    # Backbone runs only: the report's run has no metrics and would take a legend entry.
    "searchFilter": "tags.backbone LIKE '%'",
    "orderByKey": "metrics.`test_accuracy`",
    "orderByAsc": False,
    "startTime": "ALL",
    "lifecycleFilter": "Active",
    "datasetsFilter": [],
    "modelVersionFilter": "All Runs",
    "selectedColumns": [*_FIRST, "attributes.`Dataset`", "tags.`seed`"],
    "columnOrder": ["attributes.`Run Name`", *_FIRST, "runDateAndNestInfo"],
    # Narrower than the grid's default: the metric names are short, the values 4 digits.
    "columnWidths": {"attributes.`Run Name`": 150} | {column: 100 for column in _FIRST},
} | CHARTS_VIEW
# The experiment's description (Markdown): the experiment's page shows it at its top, in
# either view, so a user who lands on the GenAI view has the comparison one click away. The
# link is relative (`#/...`), so it works whatever host and port serve the UI.
DESCRIPTION = "mlflow.note.content"
_DESCRIBED_BY_BAKEOFF = ("Backbone runs: [", "Model training view: bakeoff")


def described(experiment_id: str) -> str:
    """The experiment's description: a link to its runs in bakeoff's saved comparison view."""
    # One line at 1024 px: a longer description is folded behind an expand button.
    return (
        f"Backbone runs: [open the comparison]({_runs_route(experiment_id)}) "
        "(MLflow opens experiments in its GenAI view)"
    )


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


def mlflow_client() -> MlflowClient:
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
    outage.set_timeout(params.outage_timeout)
    outage.set_server(tracking_uri)
    outage.limit_http_retries()
    client = mlflow_client()
    what = f"read experiment {params.experiment}"
    experiment = outage.call(lambda: client.get_experiment_by_name(params.experiment), what)
    if experiment is None:
        location = _artifact_location(uri)
        try:
            experiment_id = outage.call(
                lambda: client.create_experiment(params.experiment, location, _tags()),
                f"create experiment {params.experiment}",
            )
            _tag_experiment(client, experiment_id, {})
            return experiment_id
        except MlflowException as exc:
            if outage.error_code(exc) != "RESOURCE_ALREADY_EXISTS":
                raise
            # another process or thread created it first
            experiment = outage.call(lambda: client.get_experiment_by_name(params.experiment), what)
            if experiment is None:
                raise
    _tag_experiment(client, experiment.experiment_id, experiment.tags)
    return experiment.experiment_id


def _tags() -> dict[str, str]:
    # The saved-view envelope (name, times, state) also lists the view in the runs page's
    # Views menu; a fixed time keeps the tag's value the same from run to run.
    view = {"name": VIEW_NAME, "createdAt": _VIEW_TIME, "updatedAt": _VIEW_TIME,
            "state": json.dumps(RUNS_VIEW)}  # fmt: skip
    return EXPERIMENT_KIND | {f"mlflow.sharedViewState.{VIEW_KEY}": json.dumps(view)}


def _tag_experiment(client: MlflowClient, experiment_id: str, tags: dict[str, str]) -> None:
    """The kind and the saved view on an experiment made before bakeoff set them, and the
    description when it has none or one bakeoff wrote (a user's own is kept)."""
    mine = tags.get(DESCRIPTION, "").startswith(_DESCRIBED_BY_BAKEOFF) or not tags.get(DESCRIPTION)
    wanted = _tags() | ({DESCRIPTION: described(experiment_id)} if mine else {})
    for key, value in wanted.items():
        if tags.get(key) != value:
            outage.call(
                lambda k=key, v=value: client.set_experiment_tag(experiment_id, k, v),
                f"tag experiment {experiment_id}",
            )


def runs_page(ui: str, experiment_id: str) -> str:
    """The URL of the experiment's runs table in the MLflow UI at `ui`, in its model-training
    view, with bakeoff's saved columns (test accuracy and its interval, macro-F1, latency,
    size) and the best test accuracy first."""
    return f"{ui.rstrip('/')}/{_runs_route(experiment_id)}"


def _runs_route(experiment_id: str) -> str:
    """The UI's route (after the host) to the runs table in the saved view, model-training
    view forced: the URL parameter overrides the browser's GenAI / Model training switch."""
    query = f"workflowType=machine_learning&viewStateShareKey={VIEW_KEY}"
    return f"#/experiments/{experiment_id}/runs?{query}"


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
