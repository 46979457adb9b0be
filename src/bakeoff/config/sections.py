"""One frozen dataclass per params.yaml section, with the ranges its values must be in.

Pydantic checks them when params.yaml is loaded (`bakeoff.config.params.parse_params`): a value
out of range (`train.batch_size: 0`, a fraction of 1.5) is an error that names the key,
not a traceback hours later.
"""

from __future__ import annotations

import dataclasses
from typing import Annotated, Literal

from pydantic import ConfigDict, Field, field_validator
from pydantic.dataclasses import dataclass

from bakeoff.backbone.registry import get_backbone
from bakeoff.errors import BakeoffError

_STRICT = ConfigDict(extra="forbid", strict=True)


def measure_of(metric: str) -> str:
    """What a split's metric measures: "val_accuracy" -> "accuracy"."""
    return metric.split("_", 1)[1]


def test_metric(measure: str) -> str:
    """The test split's metric of a measure: "accuracy" -> "test_accuracy"."""
    return f"test_{measure}"


# What register may rank the backbones by (its `test_` twin is what it compares them on).
SELECTION_METRICS = ("val_accuracy", "val_macro_f1")
REGISTER_METRICS = (*SELECTION_METRICS, *(test_metric(measure_of(m)) for m in SELECTION_METRICS))

PositiveInt = Annotated[int, Field(gt=0)]
NonNegativeInt = Annotated[int, Field(ge=0)]
PositiveFloat = Annotated[float, Field(gt=0)]
NonNegativeFloat = Annotated[float, Field(ge=0)]
Fraction = Annotated[float, Field(gt=0, lt=1)]  # strictly between 0 and 1
Share = Annotated[float, Field(ge=0, le=1)]  # 0 and 1 included


# Settings that change how a stage runs but none of its outputs: they are no stage's DVC
# params, so editing one re-runs nothing (tests/code/test_dvc_complete.py leaves them out).
# `orchestration` and `retrain` are read by the flows only, never by a stage.
OUTPUT_NEUTRAL = frozenset({"tracking.outage_timeout", "validate.workers"})


def _known_backbones(names: list[str], what: str) -> list[str]:
    """`names` if all are backbone names (Keras rows, keras-hub presets, `sources:` names);
    else a ValueError naming the unknown ones."""
    from bakeoff.backbone.hub_sources import is_source, source_slug

    for name in names:
        if is_source(name):
            raise ValueError(
                f"{what} {name!r} is a source, not a name DVC can use for a stage or a file: "
                f"add `sources: {{{source_slug(name)}: {name}}}` and list {source_slug(name)!r}"
            )
        try:
            get_backbone(name)
        except BakeoffError as exc:
            raise ValueError(str(exc).replace("backbone", what, 1)) from None
    return names


@dataclass(config=_STRICT, frozen=True)
class DataParams:
    source: str  # required: the user's images (or the demo's Fashion-MNIST)
    per_class: PositiveInt = 400


@dataclass(config=_STRICT, frozen=True)
class ValidateParams:
    min_size: PositiveInt = 16
    max_invalid_fraction: Share = 0.05
    min_images_per_class: PositiveInt = 10
    max_class_imbalance: Annotated[float, Field(ge=1)] = 10.0
    # 0: one worker per core. Parallelism only (results keep the file order): no output
    # depends on it.
    workers: NonNegativeInt = 0
    # pHash bits; None: off. `bakeoff init` sets 8 for photos (params.yaml says why).
    near_duplicate_distance: Annotated[int, Field(ge=0, le=32)] | None = 2
    exclude: str = "exclude.txt"  # the user's rejected paths, relative to the project root


@dataclass(config=_STRICT, frozen=True)
class SplitParams:
    val: Fraction = 0.15
    test: Fraction = 0.15


@dataclass(config=_STRICT, frozen=True)
class BackboneOverride:
    image_size: PositiveInt | None = None
    batch_size: PositiveInt | None = None
    learning_rate: PositiveFloat | None = None
    epochs: PositiveInt | None = None
    fine_tune_layers: NonNegativeInt | None = None


@dataclass(config=_STRICT, frozen=True)
class TrainParams:
    overrides: dict[str, BackboneOverride] | None  # required (`{}`: none)
    weights: str = "none"  # imagenet | none | path to a weights file
    image_size: PositiveInt | None = 32  # None: the backbone's default
    batch_size: PositiveInt = 32
    epochs: PositiveInt = 12
    learning_rate: PositiveFloat = 0.001
    patience: NonNegativeInt = 4
    min_epochs: NonNegativeInt = 6  # early stopping never stops before this epoch
    bn_momentum: Annotated[float, Field(ge=0, lt=1)] = 0.9
    fine_tune_layers: NonNegativeInt = 0
    fine_tune_epochs: NonNegativeInt = 5
    fine_tune_learning_rate: PositiveFloat = 0.0001
    augment: bool = True
    cache_features: bool = True
    # With cached features an epoch of the head costs milliseconds: train it to convergence
    # (early stopping on val loss, best weights restored) under a high cap of its own.
    head_epochs: PositiveInt = 500
    head_patience: NonNegativeInt = 10
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

    def for_backbone(self, name: str) -> TrainParams:
        """This section with the per-backbone overrides of `name` applied, keeping only
        `name`'s own entry in `overrides` (none when it has none): what one backbone's
        training depends on."""
        override = (self.overrides or {}).get(name)
        if override is None:
            return dataclasses.replace(self, overrides={})
        changes = {k: v for k, v in dataclasses.asdict(override).items() if v is not None}
        return dataclasses.replace(self, **changes, overrides={name: override})

    @field_validator("overrides")
    @classmethod
    def _overrides_name_backbones(cls, value):
        if value:
            _known_backbones(list(value), "backbone")
        return value


@dataclass(config=_STRICT, frozen=True)
class TuneParams:
    """Head tuning on cached features: the same number of trials for every backbone."""

    trials: NonNegativeInt = 20  # 0: no tuning, the head trains with the train section's settings


@dataclass(config=_STRICT, frozen=True)
class EvaluateParams:
    latency_repeats: PositiveInt = 30
    latency_warmup: NonNegativeInt = 5
    # k-fold cross-validation of the head on cached features over all accepted images
    # (0: off; at least 3: a fold to test, one to select on, the rest to train on).
    cv_folds: NonNegativeInt = 5

    @field_validator("cv_folds")
    @classmethod
    def _folds_leave_room(cls, value: int) -> int:
        if value != 0 and value < 3:
            raise ValueError(f"use 0 (off) or at least 3 folds, got {value}")
        return value


@dataclass(config=_STRICT, frozen=True)
class Budget:
    max_latency_ms: PositiveFloat | None = None
    max_size_mb: PositiveFloat | None = None


@dataclass(config=_STRICT, frozen=True)
class RegisterParams:
    model_name: str = "image-classifier"
    metric: Literal[SELECTION_METRICS] = "val_accuracy"
    budget: str | None = None  # the name of the budget in `budgets` a champion must fit
    # At least 0: a negative one would promote a model that tests worse than the champion.
    min_improvement: NonNegativeFloat = 0.0
    # Promotion is a paired test on the current test images: the one-sided lower bound of
    # the bootstrapped gain over the champion must exceed min_improvement at this confidence.
    confidence: Fraction = 0.95

    @property
    def measure(self) -> str:
        """What `metric` measures ("accuracy"): the paired test compares it on test."""
        return measure_of(self.metric)

    @property
    def test_metric(self) -> str:
        """`metric`'s twin on the test split ("test_accuracy")."""
        return test_metric(self.measure)

    @field_validator("metric", mode="before")
    @classmethod
    def _not_on_test(cls, value):
        if isinstance(value, str) and value.startswith("test_"):
            raise ValueError(
                f"{value} would select the model on the test split, which must stay unseen "
                f"until the final comparison: use {' or '.join(SELECTION_METRICS)}"
            )
        return value


@dataclass(config=_STRICT, frozen=True)
class ExportParams:
    # A variant losing more test accuracy than this is not recommended.
    max_accuracy_drop: NonNegativeFloat = 0.02
    representative_images: PositiveInt = 200  # int8 calibration images, drawn from the train split
    threads: PositiveInt = 1  # LiteRT interpreter threads, fixed so latencies compare


@dataclass(config=_STRICT, frozen=True)
class ReportParams:
    confidence: Fraction = 0.95  # of the accuracy intervals (the report computes them all)


@dataclass(config=_STRICT, frozen=True)
class TrackingParams:
    experiment: str = "bakeoff"
    tracking_uri: str = "sqlite:///mlruns/mlflow.db"
    # Seconds bakeoff waits for an unreachable tracking server before a stage fails. How
    # long to wait changes no output: no stage's DVC params (`OUTPUT_NEUTRAL`).
    outage_timeout: PositiveFloat = 900.0


@dataclass(config=_STRICT, frozen=True)
class OrchestrationParams:
    task_runner: Literal["thread", "process", "dask"] = "thread"
    max_workers: PositiveInt = 2
    dask_address: str | None = None


@dataclass(config=_STRICT, frozen=True)
class RetrainParams:
    cron: str = "0 3 * * 1"
    timezone: str = "UTC"
    force: bool = False
