"""params.yaml, loaded once into frozen dataclasses.

Every section of params.yaml is a frozen dataclass of `bakeoff.config.sections` (re-exported
here), with the ranges its values must be in. Unknown keys and values of the wrong type are
errors that name the key, so a typo never silently falls back to a default. A setting
several stages use (`seed`, `bootstrap`, `budgets`, the latency timing of `evaluate`) is
written once and read from that one place by every stage that uses it
(`bakeoff.config.wiring.params_kwargs` hands it over). A key's code default equals its value
in the shipped params.yaml (a test checks); the keys whose shipped value is the demo's own
choice (the data source, per-backbone overrides, budgets) have no default: params.yaml must
set them.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

from pydantic import ConfigDict, TypeAdapter, ValidationError, field_validator, model_validator
from pydantic.dataclasses import dataclass

from bakeoff.config.layout import project_paths
from bakeoff.config.sections import (  # noqa: F401  (re-exported: every section is importable from here)
    REGISTER_METRICS,
    SELECTION_METRICS,
    BackboneOverride,
    Budget,
    DataParams,
    EvaluateParams,
    ExportParams,
    OrchestrationParams,
    RegisterParams,
    ReportParams,
    RetrainParams,
    SplitParams,
    TrackingParams,
    TrainParams,
    TuneParams,
    ValidateParams,
    _known_backbones,
)
from bakeoff.errors import BakeoffError

_STRICT = ConfigDict(extra="forbid", strict=True)


@dataclass(config=_STRICT, frozen=True)
class Params:
    backbones: list[str]
    budgets: dict[str, Budget] | None  # named deployment budgets (register, report); `{}`
    data: DataParams  # the sections with required keys are required
    train: TrainParams
    # The one seed: every seeded draw outside training (ingest's sample, the split, the CV
    # folds, the bootstrap, export's calibration sample); train.seeds are the repetitions.
    seed: int = 42
    # Backbone name -> hf://timm/<model> or a local keras-hub preset folder: sources that are
    # no valid DVC stage or file name (`bakeoff init --backbones <source>` writes them).
    sources: dict[str, str] = dataclasses.field(default_factory=dict)
    bootstrap: int = 2000  # paired bootstrap resamples of the test images (register, report)
    validate: ValidateParams = ValidateParams()
    split: SplitParams = SplitParams()
    tune: TuneParams = TuneParams()
    evaluate: EvaluateParams = EvaluateParams()
    register: RegisterParams = RegisterParams()
    export: ExportParams = ExportParams()
    report: ReportParams = ReportParams()
    tracking: TrackingParams = TrackingParams()
    orchestration: OrchestrationParams = OrchestrationParams()
    retrain: RetrainParams = RetrainParams()

    @model_validator(mode="before")
    @classmethod
    def _register_sources(cls, raw: Any) -> Any:
        """Make `sources` known before any backbone name is checked against them."""
        from bakeoff.backbone.hub_sources import register_sources

        if isinstance(raw, dict) and isinstance(raw.get("sources"), dict | None):
            try:
                register_sources(raw.get("sources"))
            except BakeoffError as exc:
                raise ValueError(str(exc)) from None
        return raw

    @field_validator("backbones")
    @classmethod
    def _backbones_are_registered(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError("list at least one backbone")
        if len(set(value)) != len(value):
            raise ValueError("a backbone is listed twice")
        return _known_backbones(value, "backbone")

    def __post_init__(self) -> None:
        from bakeoff.backbone.registry import check_image_size, input_size

        budget = self.register.budget
        if budget is not None and budget not in (self.budgets or {}):
            known = ", ".join(self.budgets or {}) or "none are defined"
            raise ValueError(f"register.budget {budget!r} is not in `budgets` ({known})")

        for name in self.backbones:  # a size a backbone cannot take fails now, not hours later
            recipe = self.for_backbone(name)
            try:
                size = input_size(name, recipe.image_size)
                check_image_size(name, size, recipe.weights)
                _check_transformer_recipe(name, recipe)
            except BakeoffError as exc:
                raise ValueError(str(exc)) from None
        # train@<backbone> depends on `train.overrides.<backbone>` alone (dvc.yaml), and DVC
        # refuses a params key that params.yaml lacks: each backbone has its entry.
        lacking = [name for name in self.backbones if name not in (self.train.overrides or {})]
        if lacking:
            raise ValueError(
                f"train.overrides has no entry for {', '.join(lacking)}: add "
                f"{', '.join(f'`{name}: {{}}`' for name in lacking)} (an empty entry: no "
                "override); each backbone's training depends on its own entry only"
            )

    def for_backbone(self, name: str) -> TrainParams:
        """The train section with the per-backbone overrides of `name` applied."""
        return self.train.for_backbone(name)


def _check_transformer_recipe(name: str, recipe: TrainParams) -> None:
    """A keras-hub backbone must fit in memory, and is not fine-tuned (refused, not ignored)."""
    from bakeoff.backbone.registry import get_backbone

    spec = get_backbone(name).hub
    if spec is None:
        return
    if recipe.weights != "none":
        import psutil

        from bakeoff.backbone.hub_sources import check_hub_memory

        check_hub_memory(spec, psutil.virtual_memory().total)
    if recipe.fine_tune_layers > 0 and recipe.weights != "none":
        raise BakeoffError(
            f"{name}: train.fine_tune_layers is {recipe.fine_tune_layers}, but bakeoff keeps "
            "a keras-hub backbone frozen (its features are cached and only the head trains; "
            "unfreezing its top blocks is not implemented, and would not be a silent no-op): "
            f"set train.overrides.{name}.fine_tune_layers to 0"
        )


def parse_params(raw: dict[str, Any]) -> Params:
    """Validate a params mapping.

    Args:
        raw: The parsed params.yaml.

    Returns:
        The frozen params.

    Raises:
        BakeoffError: A key is unknown or a value has the wrong type; the message names it.
    """
    try:
        # JSON mode: strict about scalars ("5" is not an int) yet builds nested sections.
        return TypeAdapter(Params).validate_json(json.dumps(raw))
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            key = ".".join(str(part) for part in err["loc"])
            if err["type"] in ("unexpected_keyword_argument", "extra_forbidden"):
                problems.append(f"unknown key '{key}'")
            elif err["type"] in ("missing", "missing_argument"):
                problems.append(f"missing key '{key}': params.yaml must set it")
            elif err["type"] == "value_error":  # our own checks: the message names the value
                problems.append(
                    f"'{key}': {err['ctx']['error']}" if key else str(err["ctx"]["error"])
                )
            else:
                problems.append(f"'{key}': {err['msg']} (got {err.get('input')!r})")
        raise BakeoffError("params.yaml: " + "; ".join(problems)) from None
    except TypeError as exc:  # a section that is not a mapping
        raise BakeoffError(f"params.yaml: {exc}") from None


def load_params(path: Path | None = None) -> Params:
    """Read and validate params.yaml (the project's own by default) through `dvc.api`.

    Args:
        path: A params file; default the params.yaml of `bakeoff.config.layout.find_root()`.

    Returns:
        The frozen params.
    """
    import yaml

    path = Path(path) if path is not None else project_paths().params_file
    if not path.is_file():
        raise BakeoffError(f"no params file at {path}: run bakeoff from the project root")
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise BakeoffError(f"{path} is not valid YAML: {exc}") from None
    if path.name == "params.yaml" and (path.parent / ".dvc").is_dir():
        # Inside the DVC project, read through dvc.api so that what a stage sees is exactly
        # what DVC records in dvc.lock (and a broken dvc.yaml is reported, not ignored).
        import dvc.api

        try:
            raw = dvc.api.params_show(repo=str(path.parent))
        except Exception as exc:  # DVC raises many types; all mean "fix the project files"
            raise BakeoffError(f"DVC could not read the params: {exc}") from None
    return parse_params(raw)
