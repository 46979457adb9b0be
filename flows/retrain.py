"""Prefect flow `retrain` and its deployment `scheduled-retrain` (cron from params.yaml).

Each run re-ingests `data.source`, validates it and computes the data version. When that is
the champion's data version (and `force` is false) it stops there: "no new data". Otherwise
it runs the `bakeoff-pipeline` flow as a subflow, whose `register` step promotes a
challenger only after every backbone trained and evaluated, so a crashed run leaves the
champion untouched. Two runs never overlap: the deployment has a concurrency limit of 1 and
the flow holds the global concurrency limit `bakeoff-retrain`, also when called directly.

    make prefect-server   # a Prefect server on 127.0.0.1:4200, state in .prefect/
    make retrain          # python flows/retrain.py: serve the deployment on its schedule
    prefect deployment run retrain/scheduled-retrain   # a run now

On several machines (`make stack`, docs/scale-out.md) the deployment goes to the
`process` work pool `bakeoff` instead, and `prefect worker start --pool bakeoff` runs it:

    python flows/retrain.py --deploy   # create or update the deployment on the pool
"""

from __future__ import annotations

import contextlib
import datetime
import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path

os.environ.setdefault("PREFECT_LOGGING_EXTRA_LOGGERS", "bakeoff")

from prefect import flow
from prefect.artifacts import create_markdown_artifact
from prefect.concurrency.sync import concurrency
from prefect.states import Completed, State

sys.path.insert(0, str(Path(__file__).resolve().parent))  # flows/ itself, for `pipeline`
from pipeline import ingest_task, run_pipeline, validate_task

from bakeoff.config.layout import project_paths
from bakeoff.config.params import Params, load_params
from bakeoff.orchestration import runners
from bakeoff.retrain_summary import (
    NO_NEW_DATA,
    MlflowLinks,
    outcome,
    retrain_summary_markdown,
    run_name,
)

DEPLOYMENT = "scheduled-retrain"
POOL = "bakeoff"
ARTIFACT = "retrain-summary"


def champion_data_version(params: Params, root: Path) -> str | None:
    """The `data_version` tag of the registered model's `champion` version, if any."""
    from bakeoff import tracking

    tracking.configure(params.tracking, root)
    champion = tracking.get_version_by_alias(params.register.model_name, "champion")
    return None if champion is None else champion.tags.get("data_version")


@contextlib.contextmanager
def _exclusive(wait_seconds: float | None) -> Iterator[None]:
    """Hold the `bakeoff-retrain` global concurrency slot (created with limit 1 if missing)."""
    runners.ensure_concurrency_limit(runners.RETRAIN_LIMIT, limit=1)
    with contextlib.ExitStack() as stack:
        try:
            stack.enter_context(
                concurrency(runners.RETRAIN_LIMIT, occupy=1, timeout_seconds=wait_seconds)
            )
        except TimeoutError:
            raise RuntimeError(
                f"another retrain run still holds the '{runners.RETRAIN_LIMIT}' "
                f"concurrency limit after {wait_seconds} s: this run did nothing"
            ) from None
        yield


def _flow_run_name() -> str:
    """`retrain-<scheduled start, UTC>`, `-forced` when it retrains whatever the data."""
    from prefect.runtime import flow_run

    parameters = flow_run.parameters
    force = parameters.get("force")
    if force is None:
        paths = project_paths(parameters.get("root"))
        force = load_params(paths.params_file).retrain.force
    start = flow_run.scheduled_start_time.astimezone(datetime.UTC)
    return run_name(start.strftime("%Y-%m-%d-%H%M"), bool(force))


def _end(name: str, tag: str, message: str, forced: bool) -> State:
    """A Completed state named `name`; the flow run gets the matching tag (and `forced`), so
    the runs list tells a promotion, a kept champion and "no new data" apart."""
    from prefect.client.orchestration import get_client
    from prefect.runtime import flow_run

    tags = {*flow_run.tags, tag, *(["forced"] if forced else [])}
    with get_client(sync_client=True) as client:
        client.update_flow_run(flow_run.id, tags=sorted(tags))
    return Completed(name=name, message=message)


def _mlflow_links(params: Params, root: Path) -> MlflowLinks:
    """Links into the MLflow UI: the tracking server, or `make ui` on a local store."""
    from bakeoff import tracking

    experiment_id = tracking.configure(params.tracking, root)
    ui = tracking.ui_url()
    note = "" if ui else "start it: `make ui`"
    ui = ui or "http://127.0.0.1:5000"
    return MlflowLinks(ui, experiment_id, tracking.runs_page(ui, experiment_id), note)


@flow(name="retrain", flow_run_name=_flow_run_name, log_prints=True)
def retrain(
    root: str | None = None, force: bool | None = None, wait_seconds: float | None = None
) -> State:
    """Retrain when the data changed, then publish what happened as a markdown artifact.

    Args:
        root: The project directory (default: bakeoff's project root).
        force: Retrain even on the champion's data (default: params.yaml `retrain.force`).
        wait_seconds: How long to wait for a running retrain to finish (None: as long as
            it takes); after that this run fails, having done nothing.

    Returns:
        A Completed state named after what happened ("Promoted", "ChampionKept",
        "NothingRegistered" or "NoNewData"), whose message is the artifact's headline.
    """
    paths = project_paths(root)
    params = load_params(paths.params_file)
    force = params.retrain.force if force is None else force
    with _exclusive(wait_seconds):
        ingest_task(params, paths)
        version = validate_task(params, paths)
        champion = champion_data_version(params, paths.root)
        if version == champion and not force:
            message = f"no new data: data version {version} is the champion's; nothing to train"
            print(message)
            create_markdown_artifact(
                key=ARTIFACT,
                markdown=f"# No new data: champion kept\n\n{message}.\n",
                description=message,
            )
            return _end(*NO_NEW_DATA, message, force)
        print(f"data version {version} (champion: {champion or 'none'}): retraining")
        run_pipeline(paths.root, data_ready=True)
        register_json = paths.reports_dir / "register.json"
        links = _mlflow_links(params, paths.root)
        markdown = retrain_summary_markdown(
            version, params.backbones, paths.metrics_dir, register_json, links
        )
        headline = markdown.splitlines()[0].lstrip("# ")
        create_markdown_artifact(key=ARTIFACT, markdown=markdown, description=headline)
        decision = json.loads(register_json.read_text())["decision"]
        return _end(*outcome(decision), f"{headline} (data version {version})", force)


def serve() -> None:
    """Serve `scheduled-retrain` on params.yaml's cron schedule until interrupted."""
    from prefect.schedules import Cron

    paths = project_paths()
    params = load_params(paths.params_file)
    retrain.serve(
        name=DEPLOYMENT,
        schedule=Cron(params.retrain.cron, timezone=params.retrain.timezone),
        global_limit=1,
        parameters={"root": str(paths.root)},
    )


def deploy(pool: str = POOL) -> None:
    """Create (or update) `scheduled-retrain` on the `process` work pool `pool`.

    The code comes from this project folder (`from_source`): each worker runs the flow
    there, so the folder must be at the same path on every worker machine (a shared file
    system, like the one Dask training needs). `concurrency_limit=1` keeps two workers
    from running two retrains at once; the flow's `bakeoff-retrain` limit backs it up.
    """
    from prefect.schedules import Cron

    paths = project_paths()
    params = load_params(paths.params_file)
    retrain.from_source(str(paths.root), "flows/retrain.py:retrain").deploy(
        name=DEPLOYMENT,
        work_pool_name=pool,
        schedule=Cron(params.retrain.cron, timezone=params.retrain.timezone),
        concurrency_limit=1,
        parameters={"root": str(paths.root)},
        ignore_warnings=True,  # the "use .serve for local development" hint
    )


if __name__ == "__main__":
    from bakeoff.console import filtered_stderr

    with filtered_stderr():  # TensorFlow's unactionable C++ lines
        if sys.argv[1:] == ["--deploy"]:
            deploy()
        else:
            serve()
