"""Each stage's arguments, as the CLI and the Prefect flow pass them: its paths from
`ProjectPaths` and its part of params.yaml (`params_kwargs`, which dvc.yaml mirrors)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from bakeoff.config.layout import ProjectPaths

if TYPE_CHECKING:
    from bakeoff.config.params import Params


def stage_kwargs(
    paths: ProjectPaths, backbone: str | None = None, params: Params | None = None
) -> dict[str, dict[str, Any]]:
    """The arguments of every stage function, as the CLI and the Prefect flow pass them.

    Args:
        paths: The project's paths.
        backbone: The backbone of the per-backbone stages (train, evaluate); without it
            those two are left out.
        params: With params, each stage also gets its params arguments (`params_kwargs`).

    Returns:
        Stage name -> keyword arguments (besides the backbone name itself).

    Raises:
        BakeoffError: `backbone` is not in the registry (checked before it becomes a path:
            `bakeoff evaluate ../x` must not reach outside models/).
    """
    if backbone is not None:
        from bakeoff.backbone.hub_sources import source_slug
        from bakeoff.backbone.registry import get_backbone
        from bakeoff.errors import BakeoffError

        try:
            get_backbone(backbone)
        except BakeoffError:
            # A `sources:` name is known once params are loaded; until then it must be a
            # plain name (no path) that params.yaml's `sources` lists.
            named = params is None and source_slug(backbone) == backbone
            if not (named and backbone in _declared_sources(paths)):
                raise
    kwargs: dict[str, dict[str, Any]] = {
        "ingest": {"out_dir": paths.raw_dir, "root": paths.root},
        "validate": {
            "raw_dir": paths.raw_dir,
            "out_dir": paths.validated_dir,
            "reports_dir": paths.reports_dir,
            "root": paths.root,
        },
        "split": {"accepted": paths.accepted_manifest, "out_dir": paths.split_dir},
        "register": {
            "models_dir": paths.models_dir,
            "metrics_dir": paths.metrics_dir,
            "split_dir": paths.split_dir,
            "image_root": paths.raw_dir,
            "out_path": paths.reports_dir / "register.json",
            "cache_dir": paths.cache_dir,
            "root": paths.root,
        },
        "export": {
            "split_dir": paths.split_dir,
            "image_root": paths.raw_dir,
            "models_dir": paths.models_dir,
            "exports_dir": paths.exports_dir,
            "out_path": paths.reports_dir / "export.json",
            "cache_dir": paths.cache_dir,
            "root": paths.root,
        },
        "report": {
            "metrics_dir": paths.metrics_dir,
            "models_dir": paths.models_dir,
            "out_dir": paths.reports_dir,
            "plots_dir": paths.plots_dir,
            "image_root": paths.raw_dir,
            "root": paths.root,
        },
    }
    if backbone is not None:
        kwargs |= _backbone_kwargs(paths, backbone)
    extra = params_kwargs(params, backbone) if params is not None else {}
    return {stage: args | extra.get(stage, {}) for stage, args in kwargs.items()}


def _backbone_kwargs(paths: ProjectPaths, backbone: str) -> dict[str, dict[str, Any]]:
    """The path arguments of the per-backbone stages."""
    return {
        "train": {
            "split_dir": paths.split_dir,
            "image_root": paths.raw_dir,
            "out_dir": paths.models_dir / backbone,
            "state_dir": paths.state_dir / "train" / backbone,
            "plots_dir": paths.plots_dir / backbone,
            "cache_dir": paths.cache_dir,
            "root": paths.root,
        },
        "evaluate": {
            "split_dir": paths.split_dir,
            "image_root": paths.raw_dir,
            "model_dir": paths.models_dir / backbone,
            "metrics_path": paths.metrics_dir / f"{backbone}.json",
            "plots_dir": paths.plots_dir / backbone,
            "cache_dir": paths.cache_dir,
            "root": paths.root,
        },
    }


def params_kwargs(params: Params, backbone: str | None = None) -> dict[str, dict[str, Any]]:
    """Each stage function's params arguments: its own section, plus the shared settings and
    the keys of other sections it reads, each from its one place in params.yaml.

    This is the one place a stage's params are chosen: dvc.yaml lists exactly the keys each
    stage reads of them (tests/code/test_dvc_complete.py derives them from here and from
    the stage's code).

    Args:
        params: The whole params.yaml.
        backbone: The backbone of train and evaluate; without it those two are left out.

    Returns:
        Stage name -> keyword arguments.
    """
    kwargs: dict[str, dict[str, Any]] = {
        "ingest": {"params": params.data, "seed": params.seed},
        "validate": {"params": params.validate},
        "split": {"params": params.split, "seed": params.seed},
        "register": {
            "params": params.register,
            "backbones": params.backbones,
            "seed": params.seed,
            "bootstrap": params.bootstrap,
            "budgets": params.budgets,
            "tracking_params": params.tracking,
        },
        "export": {
            "params": params.export,
            "model_name": params.register.model_name,
            "seed": params.seed,
            "latency_warmup": params.evaluate.latency_warmup,
            "latency_repeats": params.evaluate.latency_repeats,
            "tracking_params": params.tracking,
        },
        "report": {
            "params": params.report,
            "backbones": params.backbones,
            "seed": params.seed,
            "bootstrap": params.bootstrap,
            "budgets": params.budgets,
            "tracking_params": params.tracking,
        },
    }
    if backbone is not None:
        kwargs["train"] = {
            "params": params.train,  # the stage applies `train.overrides` of its backbone
            "sources": params.sources,  # what a keras-hub backbone's name stands for
            "tune": params.tune,
            "tracking_params": params.tracking,
        }
        kwargs["evaluate"] = {
            "params": params.evaluate,
            "train": params.train,  # the recipe the model was trained with (its CV heads)
            "trials": params.tune.trials,
            "seed": params.seed,  # of the cross-validation folds
            "tracking_params": params.tracking,
        }
    return kwargs


def _declared_sources(paths: ProjectPaths) -> dict[str, str]:
    """params.yaml's `sources` as written (not yet validated); none without a params.yaml."""
    import yaml

    from bakeoff.errors import BakeoffError

    if not paths.params_file.is_file():
        return {}
    try:
        raw = yaml.safe_load(paths.params_file.read_text()) or {}
    except yaml.YAMLError as exc:
        raise BakeoffError(f"{paths.params_file} is not valid YAML: {exc}") from None
    sources = raw.get("sources") if isinstance(raw, dict) else None
    return sources if isinstance(sources, dict) else {}
