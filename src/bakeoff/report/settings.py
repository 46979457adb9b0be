"""What the report's statistics and budgets are computed with, gathered from params.yaml."""

from __future__ import annotations

from dataclasses import dataclass

from bakeoff.config.params import Budget


@dataclass(frozen=True)
class ReportSettings:
    """The report's settings, each from its one place in params.yaml.

    Args:
        confidence: `report.confidence`, of every accuracy interval (test and CV).
        bootstrap: The top-level `bootstrap`: resamples of the intervals and comparisons.
        seed: The top-level `seed`: of the bootstrap resampling.
        budgets: The top-level `budgets`: which backbones fit each.
    """

    confidence: float
    bootstrap: int
    seed: int
    budgets: dict[str, Budget] | None
