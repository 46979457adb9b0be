"""Which TFLite variant to recommend: one rule, used by the export stage and the report.

Pure functions on the variants' rows of reports/export.json, so that the report states and
applies the same rule the export stage wrote its pick with.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

# Sizes within 5% of the smallest count as tied: the sizes differ by a few kilobytes of
# metadata, which no device notices, while latency may still differ.
SIZE_TIE = 0.05


def pick_variant(variants: Sequence[Mapping[str, Any]]) -> Mapping[str, Any] | None:
    """The smallest variant that keeps the accuracy; a tie in size goes to the faster.

    Args:
        variants: reports/export.json's variants (`recommended` is the accuracy verdict).

    Returns:
        The variant, or None when every variant loses too much accuracy.
    """
    ok = [v for v in variants if v["recommended"]]
    if not ok:
        return None
    smallest = min(v["size_mb"] for v in ok)
    tied = [v for v in ok if v["size_mb"] <= smallest * (1 + SIZE_TIE)]
    return min(tied, key=lambda v: (v["latency_ms_b1"], v["size_mb"]))


def rule(max_accuracy_drop: float) -> str:
    """The rule in one sentence, as the report states it."""
    return (
        "Recommended: the smallest variant that loses at most export.max_accuracy_drop = "
        f"{max_accuracy_drop} test accuracy against Keras; a size within {100 * SIZE_TIE:g}% "
        "of the smallest counts as a tie, and a tie goes to the faster."
    )
