"""The `bakeoff` command: one subcommand per stage, each a thin call into its module.

Stage modules are imported inside the commands so that `bakeoff --help` stays fast
(TensorFlow alone takes seconds to import).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from bakeoff.config import layout, wiring
from bakeoff.errors import BakeoffError

app = typer.Typer(
    help="Which pretrained CNN backbone should I use for my images? Run the bake-off.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

ParamsOption = Annotated[
    Path | None, typer.Option("--params", help="params file (default: the project's params.yaml)")
]


def _params(path: Path | None):
    from bakeoff.config.params import load_params

    return load_params(path)


def _stage(name: str, params_file: Path | None, backbone: str | None = None) -> dict:
    """The stage function's arguments (its params sections and paths, `wiring.stage_kwargs`)
    for the project bakeoff runs in (`layout.find_root`)."""
    project = layout.project_paths()
    wiring.stage_kwargs(project, backbone)  # an unknown backbone fails before anything is read
    return wiring.stage_kwargs(project, backbone, _params(params_file))[name]


@app.command()
def backbones() -> None:
    """List the registry: parameters, default size, ImageNet top-1 and weights file."""
    from bakeoff.listing import format_registry

    typer.echo(format_registry())


@app.command()
def init(
    folder: Annotated[Path, typer.Argument(help="your images: one sub-folder per class")],
    backbones: Annotated[
        str | None,
        typer.Option(
            help="comma-separated registry names (default: six; docs/backbones.md says why)"
        ),
    ] = None,
    force: Annotated[bool, typer.Option(help="overwrite a project already set up")] = False,
    params_file: ParamsOption = None,
) -> None:
    """Scan FOLDER and set params.yaml up for pretrained backbones on it; then `dvc repro`."""
    from bakeoff.init_project import init_project

    names = [b.strip() for b in backbones.split(",") if b.strip()] if backbones else None
    target = params_file or layout.project_paths().params_file
    typer.echo(init_project(folder, target, names, force=force))


@app.command("fetch-weights")
def fetch_weights(
    folder: Annotated[Path, typer.Argument(help="the folder to fill and carry offline")],
    backbones: Annotated[
        str | None,
        typer.Option(
            help="comma-separated backbone names or sources, their pretrained weights "
            "(default: params.yaml's backbones, as train.weights says)"
        ),
    ] = None,
    image_size: Annotated[
        int | None, typer.Option(min=1, help="every backbone's input side (MobileNet/V2)")
    ] = None,
    params_file: ParamsOption = None,
) -> None:
    """On a connected machine: every backbone's pretrained weights into FOLDER, for an
    offline machine (it prints the environment to set there)."""
    from bakeoff.backbone.offline import named, plan
    from bakeoff.fetch_weights import fetch_all

    root = layout.nearest_root()  # outside a project: the named backbones only
    path = params_file or (root / "params.yaml" if root else None)
    params = _params(path) if path else None
    names = named(backbones, params) if backbones else None
    wants = plan(names, params, image_size)
    failed = fetch_all(folder.resolve(), wants, typer.echo, progress=sys.stdout.isatty())
    if failed:
        typer.secho(
            f"error: could not fetch {len(failed)} backbone(s): {', '.join(failed)} (reasons "
            "above); run the command again where they can be downloaded: what is there stays",
            err=True,
            fg=typer.colors.RED,
        )
        raise typer.Exit(1)


@app.command()
def ingest(params_file: ParamsOption = None) -> None:
    """Copy the source images into data/raw/<class>/ (the source is only read)."""
    kwargs = _stage("ingest", params_file)
    from bakeoff.data.ingest import ingest as run

    typer.echo(run(**kwargs))


@app.command()
def validate(params_file: ParamsOption = None) -> None:
    """Check every image, write the manifest, reports/validation.json and the data docs."""
    kwargs = _stage("validate", params_file)
    from bakeoff.data.validate import validate as run

    typer.echo(run(**kwargs))


@app.command()
def split(params_file: ParamsOption = None) -> None:
    """Split the accepted images into stratified, leak-free train/val/test manifests."""
    kwargs = _stage("split", params_file)
    from bakeoff.data.split import split as run

    typer.echo(run(**kwargs))


@app.command()
def train(
    backbone: Annotated[str, typer.Argument(help="a backbone name from the registry")],
    params_file: ParamsOption = None,
) -> None:
    """Train one backbone with the recipe, tracked in MLflow."""
    kwargs = _stage("train", params_file, backbone)
    from bakeoff.train.stage import train as run

    typer.echo(run(backbone, **kwargs))


@app.command()
def evaluate(
    backbone: Annotated[str, typer.Argument(help="a trained backbone")],
    params_file: ParamsOption = None,
) -> None:
    """Test accuracy, per-class scores, confusion matrix, size and latency of one backbone."""
    kwargs = _stage("evaluate", params_file, backbone)
    from bakeoff.evaluate.stage import evaluate as run

    typer.echo(run(backbone, **kwargs))


@app.command()
def register(params_file: ParamsOption = None) -> None:
    """Register the best backbone; move `champion` only when it beats the current one."""
    kwargs = _stage("register", params_file)
    from bakeoff.register.stage import register as run

    typer.echo(run(**kwargs))


@app.command()
def export(
    backbone: Annotated[
        str | None, typer.Argument(help="a trained backbone (default: the champion)")
    ] = None,
    params_file: ParamsOption = None,
) -> None:
    """TFLite float32, float16, dynamic-range and int8 of the champion, each re-evaluated."""
    kwargs = _stage("export", params_file, backbone)
    from bakeoff.export.stage import export as run

    typer.echo(run(backbone=backbone, **kwargs))


@app.command()
def report(params_file: ParamsOption = None) -> None:
    """Write reports/comparison.{md,html}: which backbone, and why."""
    kwargs = _stage("report", params_file)
    from bakeoff.report.stage import report as run

    typer.echo(run(**kwargs))


@app.command()
def predict(
    images: Annotated[list[Path], typer.Argument(help="image files or folders")],
    top_k: Annotated[int, typer.Option("--top-k", "-k", min=1)] = 3,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
    model_uri: Annotated[
        str | None, typer.Option(help="default: models:/<register.model_name>@champion")
    ] = None,
    params_file: ParamsOption = None,
) -> None:
    """Classify images with the champion model."""
    params = _params(params_file)
    from bakeoff.predict import format_predictions
    from bakeoff.predict import predict as run

    results = run(images, params, top_k=top_k, model_uri=model_uri, root=layout.find_root())
    typer.echo(format_predictions(results, as_json=as_json))


def main() -> None:
    """Console-script entry point: user errors become one line on stderr and exit 1."""
    from bakeoff.console import filtered_stderr, set_tensorflow_env
    from bakeoff.orchestration.processes import record_error  # for a parent that asks

    set_tensorflow_env()  # before any command imports TensorFlow

    with filtered_stderr():  # what TF_CPP_MIN_LOG_LEVEL cannot hide
        try:
            app()
        except BakeoffError as exc:
            record_error(exc)
            typer.secho(f"error: {exc}", err=True, fg=typer.colors.RED)
            sys.exit(1)
        except Exception as exc:  # recorded for a parent process, then the usual traceback
            record_error(exc)
            raise


if __name__ == "__main__":
    main()
