"""The data a run trained on, as MLflow datasets: the runs list's Dataset column shows the
split and its data version, and the run's page links each manifest."""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

from bakeoff.errors import BakeoffError
from bakeoff.tracking import outage
from bakeoff.tracking.store import mlflow_client

log = logging.getLogger(__name__)

# The split's manifests, and the context MLflow shows each under.
_CONTEXTS = {"train": "training", "val": "validation", "test": "testing"}
# MLflow's store looks up which of the datasets already exist in the experiment, then
# inserts the others. Two runs logging the same split at once (backbones trained in parallel
# on Dask) can both find none and both insert: the second insert breaks the datasets table's
# key (sqlite and PostgreSQL say so in these words), its transaction is rolled back, and
# asking again finds the first one's rows. Nothing else gets this retry.
_CLASH = ("UNIQUE constraint failed: datasets.", 'unique constraint "dataset_pk"')
_CLASH_ATTEMPTS = 5


def log_split(run_id: str, split_dir: Path, data_version: str) -> None:
    """Log data/split's train, val and test manifests as datasets of a run.

    Each is a `PandasDataset` of the manifest (path, label, sha256 per image: MLflow
    stores its schema and row count, not the images) whose digest is the data version, so
    two runs on the same data show the same digest.

    Args:
        run_id: The run.
        split_dir: data/split.
        data_version: The data version (`lineage.data_version` of the accepted manifest).
    """
    import mlflow
    import pandas as pd
    from mlflow.entities import DatasetInput, InputTag
    from mlflow.utils.mlflow_tags import MLFLOW_DATASET_CONTEXT

    inputs = []
    for split, context in _CONTEXTS.items():
        manifest = Path(split_dir) / f"{split}.csv"
        if not manifest.is_file():
            raise BakeoffError(f"{manifest} does not exist: run `bakeoff split` first")
        frame = pd.read_csv(manifest, dtype=str)
        with warnings.catch_warnings():
            # MLflow registers its local-file source twice, then warns that a path is
            # ambiguous between the two (identical) readings.
            warnings.filterwarnings("ignore", "The specified dataset source can be interpreted")
            dataset = mlflow.data.from_pandas(
                frame, source=manifest.resolve().as_uri(), targets="label", name=split,
                digest=data_version,
            )  # fmt: skip
        # What `mlflow.log_inputs` sends, without needing the run active in this thread.
        context_tag = InputTag(key=MLFLOW_DATASET_CONTEXT, value=context)
        inputs.append(DatasetInput(dataset._to_mlflow_entity(), tags=[context_tag]))
    client = mlflow_client()
    what = f"log the split as datasets of run {run_id}"
    for attempt in range(1, _CLASH_ATTEMPTS + 1):
        try:
            outage.call(lambda: client.log_inputs(run_id, datasets=inputs), what)
            return
        except Exception as exc:
            if attempt == _CLASH_ATTEMPTS or not _is_clash(exc):
                raise
            log.info("%s: a concurrent run logged the same split first; asking again", what)


def _is_clash(exc: BaseException) -> bool:
    """Whether `exc` is the store refusing a dataset that a concurrent run inserted first."""
    return any(text in str(exc) for text in _CLASH)
