"""Which trained backbones (and seeds) register may choose from, and why the others not.

A backbone qualifies when its training finished (train.json and its MLflow run agree), it
was evaluated by that same run, its metrics are finite, and it fits register's budgets.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from bakeoff import tracking
from bakeoff.config.params import Budget, RegisterParams


def _finite(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _read(path: Path) -> dict[str, Any] | None:
    return json.loads(path.read_text()) if path.is_file() else None


def _why_not(
    train: dict | None, metrics: dict | None, reg: RegisterParams, budget: Budget, name: str
) -> str | None:
    """Why a backbone may not be registered, or None when it may."""
    test_metric = reg.test_metric
    if train is None:
        return "not trained (no train.json)"
    if train.get("status") != "FINISHED":
        return f"training run status is {train.get('status')}, not FINISHED"
    if metrics is None:
        return f"not evaluated (no {name}.json)"
    if metrics.get("run_id") != train.get("run_id"):
        return f"{name}.json is stale (another training run): re-run `bakeoff evaluate {name}`"
    if not (_finite(metrics.get(reg.metric)) and _finite(metrics.get(test_metric))):
        return f"{reg.metric}/{test_metric} not finite (a diverged run)"
    latency, size = metrics.get("latency_ms_b1", math.inf), metrics.get("size_mb", math.inf)
    if budget.max_latency_ms is not None and not latency <= budget.max_latency_ms:
        return f"latency {latency:.3g} ms > {budget.max_latency_ms} ms (budget {reg.budget})"
    if budget.max_size_mb is not None and not size <= budget.max_size_mb:
        return f"size {size:.3g} MB > {budget.max_size_mb} MB (budget {reg.budget})"
    # train.json says FINISHED before the run closes: MLflow has the last word.
    run_id = train.get("run_id")
    if (
        tracking.run_exists(run_id)
        and (status := tracking.run_info(run_id)["status"]) != "FINISHED"
    ):
        return f"MLflow run {run_id} status is {status}, not FINISHED"
    return None


def eligible(
    params: RegisterParams,
    backbones: list[str],
    models_dir: Path,
    metrics_dir: Path,
    budgets: dict[str, Budget] | None,
) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """The backbones that may be registered, and why each other one may not.

    Args:
        params: The register section (`budget` names the one of `budgets` to fit).
        backbones: The backbones to consider.
        models_dir: models/ (each <backbone>/train.json).
        metrics_dir: metrics/ (each <backbone>.json).
        budgets: The top-level `budgets`.

    Returns:
        (candidates: train.json merged with metrics, rejected: backbone -> reason).
    """
    budget = (budgets or {})[params.budget] if params.budget else Budget()
    candidates, rejected = [], {}
    for name in backbones:
        train = _read(Path(models_dir) / name / "train.json")
        metrics = _read(Path(metrics_dir) / f"{name}.json")
        reason = _why_not(train, metrics, params, budget, name)
        if reason:
            rejected[name] = reason
            continue
        # Each seed's run is a candidate of its own: the best (backbone, seed) by validation.
        for seed in metrics.get("seeds") or [{}]:
            chosen = {k: v for k, v in seed.items() if v is not None}
            candidates.append({**train, **metrics, **chosen, "backbone": name})
    return candidates, rejected


def summary(c: dict[str, Any], metric: str, test_metric: str) -> dict[str, Any]:
    """The candidate's row of reports/register.json."""
    keys = (
        "backbone",
        "seed",
        "run_id",
        "model_uri",
        metric,
        test_metric,
        "latency_ms_b1",
        "size_mb",
        "image_size",
        "data_version",
    )
    return {k: c.get(k) for k in keys}
