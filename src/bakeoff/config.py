"""params.yaml, loaded once into frozen dataclasses.

Every section of params.yaml is a frozen dataclass below. Unknown keys and values of
the wrong type are errors that name the key, so a typo never silently falls back to a
default. A setting several stages use is written once and copied into each section that
uses it (`bakeoff.params_shared`), so every stage still reads only its own section. A key's
code default equals its value in the shipped params.yaml (a test checks); the keys whose
shipped value is the demo's own choice (the data source, per-backbone overrides, budgets)
have no default: params.yaml must set them.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any, Literal

from pydantic import ConfigDict, TypeAdapter, ValidationError, field_validator
from pydantic.dataclasses import dataclass

from bakeoff.errors import BakeoffError
from bakeoff.params_shared import share_settings
from bakeoff.paths import project_paths

_STRICT = ConfigDict(extra="forbid", strict=True)
# What register may rank the backbones by (its `test_` twin is what it compares them on).
SELECTION_METRICS = ("val_accuracy", "val_macro_f1")
REGISTER_METRICS = (*SELECTION_METRICS, "test_accuracy", "test_macro_f1")  # reported


def _known_backbones(names: list[str], what: str) -> list[str]:
    """`names` if all are registry names; else a ValueError naming the unknown ones."""
    from bakeoff.train.backbones import REGISTRY  # a plain table: no Keras import

    unknown = [name for name in names if name not in REGISTRY]
    if unknown:
        raise ValueError(
            f"unknown {what} {', '.join(map(repr, unknown))}: choose from {', '.join(REGISTRY)}"
        )
    return names


@dataclass(config=_STRICT, frozen=True)
class DataParams:
    source: str  # required: the user's images (or the demo's Fashion-MNIST)
    per_class: int = 400
    seed: int = 42  # from the top-level `seed`


@dataclass(config=_STRICT, frozen=True)
class ValidateParams:
    min_size: int = 16
    max_invalid_fraction: float = 0.05
    min_images_per_class: int = 10
    max_class_imbalance: float = 10.0
    workers: int = 0  # 0: one worker per core


@dataclass(config=_STRICT, frozen=True)
class SplitParams:
    val: float = 0.15
    test: float = 0.15
    seed: int = 42  # from the top-level `seed`


@dataclass(config=_STRICT, frozen=True)
class BackboneOverride:
    image_size: int | None = None
    batch_size: int | None = None
    learning_rate: float | None = None
    epochs: int | None = None


@dataclass(config=_STRICT, frozen=True)
class TrainParams:
    overrides: dict[str, BackboneOverride] | None  # required (`{}`: none)
    weights: str = "none"  # imagenet | none | path to a weights file
    image_size: int | None = 32  # None: the backbone's default
    batch_size: int = 32
    epochs: int = 12
    learning_rate: float = 0.001
    patience: int = 4
    min_epochs: int = 6  # early stopping never stops before this epoch
    bn_momentum: float = 0.9
    fine_tune_layers: int = 0
    fine_tune_epochs: int = 5
    fine_tune_learning_rate: float = 0.0001
    augment: bool = True
    cache_features: bool = True
    # With cached features an epoch of the head costs milliseconds: train it to convergence
    # (early stopping on val loss, best weights restored) under a high cap of its own.
    head_epochs: int = 500
    head_patience: int = 10
    # One training (and tuning) per seed; the stage keeps the best seed by validation.
    seeds: list[int] = dataclasses.field(default_factory=lambda: [42])

    def __post_init__(self) -> None:
        if not self.seeds or len(set(self.seeds)) != len(self.seeds):
            raise ValueError(f"train.seeds must be distinct and at least one, got {self.seeds}")
        if self.augment and self.weights != "none" and self.cache_features:
            # Rejected, not resolved quietly: a frozen base's features are computed once from
            # unaugmented images, so augmentation would switch the cache and tuning off.
            raise ValueError(
                "train.augment is true with a frozen pretrained base (train.weights: "
                f"{self.weights}) and train.cache_features: true: the cached features come "
                "from unaugmented images, so augmentation would turn the cache and head "
                "tuning off. Set train.augment: false (recommended for a frozen base), or "
                "train.cache_features: false to augment every epoch through the base"
            )

    @property
    def seed(self) -> int:
        """The seed of one training: the first of `seeds` (the stage runs one per seed)."""
        return self.seeds[0]

    @field_validator("overrides")
    @classmethod
    def _overrides_name_backbones(cls, value):
        if value:
            _known_backbones(list(value), "backbone")
        return value


@dataclass(config=_STRICT, frozen=True)
class TuneParams:
    """Head tuning on cached features: the same number of trials for every backbone."""

    trials: int = 20  # 0: no tuning, the head trains with the train section's settings


@dataclass(config=_STRICT, frozen=True)
class EvaluateParams:
    latency_repeats: int = 30
    latency_warmup: int = 5
    # k-fold cross-validation of the head on cached features over all accepted images
    # (0: off; at least 3: a fold to test, one to select on, the rest to train on).
    cv_folds: int = 5

    @field_validator("cv_folds")
    @classmethod
    def _folds_leave_room(cls, value: int) -> int:
        if value != 0 and value < 3:
            raise ValueError(f"use 0 (off) or at least 3 folds, got {value}")
        return value


@dataclass(config=_STRICT, frozen=True)
class Budget:
    max_latency_ms: float | None = None
    max_size_mb: float | None = None


@dataclass(config=_STRICT, frozen=True)
class RegisterParams:
    model_name: str = "image-classifier"
    metric: Literal[SELECTION_METRICS] = "val_accuracy"
    budget: str | None = None  # the name of the budget in `budgets` a champion must fit
    min_improvement: float = 0.0
    # Promotion is a paired test on the current test images: the one-sided lower bound of
    # the bootstrapped gain over the champion must exceed min_improvement at this confidence.
    confidence: float = 0.95
    bootstrap: int = 2000  # from the top-level `bootstrap`
    seed: int = 42  # from the top-level `seed`
    budgets: dict[str, Budget] | None = None  # from the top-level `budgets`

    @field_validator("metric", mode="before")
    @classmethod
    def _not_on_test(cls, value):
        if isinstance(value, str) and value.startswith("test_"):
            raise ValueError(
                f"{value} would select the model on the test split, which must stay unseen "
                f"until the final comparison: use {' or '.join(SELECTION_METRICS)}"
            )
        return value

    def __post_init__(self) -> None:
        if self.budget is not None and self.budget not in (self.budgets or {}):
            known = ", ".join(self.budgets or {}) or "none are defined"
            raise ValueError(f"budget {self.budget!r} is not in `budgets` ({known})")


@dataclass(config=_STRICT, frozen=True)
class ExportParams:
    max_accuracy_drop: float = 0.02  # a variant losing more test accuracy: not recommended
    representative_images: int = 200  # int8 calibration images, drawn from the train split
    threads: int = 1  # LiteRT interpreter threads, fixed so latencies compare
    latency_repeats: int = 30  # from evaluate's
    latency_warmup: int = 5  # from evaluate's
    seed: int = 42  # of the calibration sample, from the top-level `seed`


@dataclass(config=_STRICT, frozen=True)
class ReportParams:
    confidence: float = 0.95
    bootstrap: int = 2000  # from the top-level `bootstrap`
    seed: int = 42  # of the bootstrap resampling, from the top-level `seed`
    budgets: dict[str, Budget] | None = None  # from the top-level `budgets`


@dataclass(config=_STRICT, frozen=True)
class TrackingParams:
    experiment: str = "bakeoff"
    tracking_uri: str = "sqlite:///mlruns/mlflow.db"
    # Seconds bakeoff waits for an unreachable tracking server before a stage fails.
    outage_timeout: float = 900.0


@dataclass(config=_STRICT, frozen=True)
class OrchestrationParams:
    task_runner: Literal["thread", "process", "dask"] = "thread"
    max_workers: int = 2
    dask_address: str | None = None


@dataclass(config=_STRICT, frozen=True)
class RetrainParams:
    cron: str = "0 3 * * 1"
    timezone: str = "UTC"
    force: bool = False


@dataclass(config=_STRICT, frozen=True)
class Params:
    backbones: list[str]
    budgets: dict[str, Budget] | None  # named deployment budgets (register, report); `{}`
    data: DataParams  # the sections with required keys are required
    train: TrainParams
    # The one seed: every seeded draw outside training (`params_shared.SHARED` says where);
    # train.seeds are the training repetitions.
    seed: int = 42
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

    @field_validator("backbones")
    @classmethod
    def _backbones_are_registered(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError("list at least one backbone")
        if len(set(value)) != len(value):
            raise ValueError("a backbone is listed twice")
        return _known_backbones(value, "backbone")

    def __post_init__(self) -> None:
        from bakeoff.train.backbones import check_image_size, get_backbone

        for name in self.backbones:  # a size a backbone cannot take fails now, not hours later
            recipe = self.for_backbone(name)
            try:
                size = recipe.image_size or get_backbone(name).default_size
                check_image_size(name, size, recipe.weights)
            except BakeoffError as exc:
                raise ValueError(str(exc)) from None

    def for_backbone(self, name: str) -> TrainParams:
        """The train section with the per-backbone overrides of `name` applied."""
        override = (self.train.overrides or {}).get(name)
        if override is None:
            return self.train
        changes = {k: v for k, v in dataclasses.asdict(override).items() if v is not None}
        return dataclasses.replace(self.train, **changes)


def parse_params(raw: dict[str, Any]) -> Params:
    """Validate a params mapping.

    Args:
        raw: The parsed params.yaml.

    Returns:
        The frozen params.

    Raises:
        BakeoffError: A key is unknown or a value has the wrong type; the message names it.
    """
    raw = share_settings(raw)
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
        path: A params file; default the params.yaml of `bakeoff.paths.find_root()`.

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
