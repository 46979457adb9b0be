"""What a register decision says to a person: the version's description, rounded registry
tags, and the one-line headline of a retrain.

`reports/register.json` keeps the full numbers and the technical reason; the MLflow
registry page and the Prefect runs list show these shorter sentences instead. Pure
functions on the decision's dicts: tested without MLflow.
"""

from __future__ import annotations

import math
from typing import Any


def rounded(value: Any, digits: int = 4) -> str:
    """A tag value: floats to `digits` significant digits (0.8565 rather than 0.856545...)."""
    if isinstance(value, float) and math.isfinite(value):
        return f"{value:.{digits}g}"
    return str(value)


def _who(candidate: dict[str, Any]) -> str:
    seed = candidate.get("seed")
    return f"{candidate['backbone']}" + (f" seed {seed}" if seed is not None else "")


def _metric_name(test_metric: str) -> str:
    return test_metric.replace("_", " ").replace("macro f1", "macro-F1")


def version_description(
    decision: str,
    candidate: dict[str, Any],
    test_metric: str,
    champion_version: str | None,
    test: dict[str, Any] | None,
    min_improvement: float,
) -> str:
    """The registry version's description: what was decided and on which numbers.

    Args:
        decision: "promoted" or "challenger".
        candidate: The registered (backbone, seed): `backbone`, `seed`, `test_metric`.
        test_metric: e.g. "test_accuracy".
        champion_version: The champion it was compared with (None: there was none).
        test: The paired test (None: no comparable champion).
        min_improvement: register.min_improvement.

    Returns:
        A sentence, e.g. "Promoted to champion: MobileNet seed 42, test accuracy 0.912 vs
        champion v3 0.874 (95% lower bound of the gain +0.021 > 0.000)."
    """
    metric, score = _metric_name(test_metric), candidate.get(test_metric)
    who = f"{_who(candidate)}, {metric} {rounded(score, 3)}"
    if test is None:
        if champion_version is None:
            return f"First champion: {who}; no earlier version to compare with."
        return (
            f"Promoted to champion: {who}; champion v{champion_version} was trained on other "
            "classes, so the two cannot be compared."
        )
    conf = f"{100 * test['confidence']:g}%"
    versus = (
        f"{metric} {test['challenger']:.3f} vs champion v{champion_version} "
        f"{test['champion']:.3f} on the same {test['n']} test images"
    )
    bound = f"{conf} lower bound of the gain {test['lower_bound']:+.3f}"
    if decision == "promoted":
        return (
            f"Promoted to champion: {_who(candidate)}, {versus} "
            f"({bound} > {max(min_improvement, 0.0):.3f})."
        )
    return (
        f"Kept as challenger: {_who(candidate)}, {versus} (gain {test['difference']:+.3f}, "
        f"{bound} does not exceed {max(min_improvement, 0.0):.3f}); "
        f"champion v{champion_version} stays."
    )


def retrain_headline(report: dict[str, Any]) -> str:
    """What a retrain did, first: the line that heads the Prefect artifact and final state.

    Args:
        report: reports/register.json.

    Returns:
        e.g. "Champion kept: v1 SimpleCNN 0.850; v2 registered as challenger (gain +0.000)".
    """
    decision, version, backbone = (report.get(k) for k in ("decision", "version", "backbone"))
    metric = report.get("compared_on", "test_accuracy")
    candidate, champion = report.get("candidate") or {}, report.get("champion") or {}
    test = report.get("paired_test")
    new = f"v{version} {backbone}"
    old = f"v{champion.get('version')} {champion.get('backbone')}"
    if decision == "promoted" and not champion.get("version"):
        return f"First champion: {new} {rounded(candidate.get(metric), 3)}"
    if decision == "promoted" and test:
        return (
            f"New champion: {new} {test['challenger']:.3f} replaces {old} "
            f"{test['champion']:.3f} (gain {test['difference']:+.3f})"
        )
    if decision == "promoted":
        return f"New champion: {new} {rounded(candidate.get(metric), 3)} ({old}: other classes)"
    if decision == "challenger":
        kept = f"{old} {test['champion']:.3f}" if test else old
        gain = f"gain {test['difference']:+.3f}" if test else "not compared"
        return f"Champion kept: {kept}; {new} registered as challenger ({gain})"
    if decision == "rejected":
        return f"Champion kept: {old} is still the best; no new version"
    return f"No model registered: {report.get('reason', 'no eligible backbone')}"
