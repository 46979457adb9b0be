"""Everything bakeoff tells MLflow, and everything it asks MLflow: the only module importing it.

mlflow is imported inside the functions: it takes about a second to import, and
`bakeoff --help` must stay fast. Every function resolves the tracking URI itself (the
`MLFLOW_TRACKING_URI` environment variable wins over params.yaml), so callers never need a
global MLflow state and concurrent training threads each log to their own run.

The package is split by what it talks to: `store` (URI, client, experiment, with `charts`,
the saved view's chart view), `runs` (training runs, with `journal`, their metrics on disk
first, and `epochs`, the per-epoch numbers), `children` (report and trial runs), `datasets`
(the split a run trained on), `view` (how runs read in the UI: short names, rounding,
colours, tables), `models` (logged models that serve without bakeoff, with `served`, the
serving code they carry) and `registry` (model versions and aliases). `outage` decides, for
every call, absent (MLflow's RESOURCE_DOES_NOT_EXIST), refused, or away (waited for within
`tracking.outage_timeout`).
Callers use `bakeoff.tracking.<function>` and never import mlflow themselves.
"""

from bakeoff.tracking.datasets import log_split
from bakeoff.tracking.epochs import epoch_callback, log_history
from bakeoff.tracking.models import log_keras_model, png_base64
from bakeoff.tracking.outage import TrackingUnavailable
from bakeoff.tracking.registry import (
    delete_alias,
    get_version_by_alias,
    load_keras_model,
    model_classes,
    register_version,
    set_alias,
    set_version_tags,
    version_for_uri,
)
from bakeoff.tracking.runs import (
    log_artifacts,
    log_metrics,
    run_exists,
    run_info,
    search_runs,
    set_tags,
    training_run,
)
from bakeoff.tracking.store import configure, flatten, runs_page, tracking_uri, ui_url
from bakeoff.tracking.view import interval_metrics, log_table, rounded, run_color
from bakeoff.tracking.whole_runs import log_child_run, log_report

__all__ = [
    "TrackingUnavailable",
    "configure",
    "delete_alias",
    "epoch_callback",
    "flatten",
    "get_version_by_alias",
    "interval_metrics",
    "load_keras_model",
    "log_artifacts",
    "log_child_run",
    "log_history",
    "log_keras_model",
    "log_metrics",
    "log_report",
    "log_split",
    "log_table",
    "model_classes",
    "png_base64",
    "register_version",
    "rounded",
    "run_color",
    "run_exists",
    "run_info",
    "runs_page",
    "search_runs",
    "set_alias",
    "set_tags",
    "set_version_tags",
    "tracking_uri",
    "training_run",
    "ui_url",
    "version_for_uri",
]
