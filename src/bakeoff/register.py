"""Stage `register`: register the best backbone; move `champion` only when it wins.

Selection uses the validation metric (`register.metric`), so the test split stays an
unbiased judge. The champion comparison re-scores the current champion and the candidate
on the current test split, so both are measured on the same images, and promotes only
when a paired test shows the gain (`bakeoff.promotion`).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bakeoff import tracking
from bakeoff.config import REGISTER_METRICS, Budget, Params
from bakeoff.decision_text import rounded, version_description
from bakeoff.errors import BakeoffError
from bakeoff.promotion import decide

METRICS = REGISTER_METRICS


@dataclass(frozen=True)
class Decision:
    """What `register` decided: the report (as in reports/register.json) and the file."""

    report: dict[str, Any]
    path: Path

    def __str__(self) -> str:
        r = self.report
        where = f"{r['model_name']} v{r['version']} ({r['backbone']})" if r["version"] else "-"
        return f"{r['decision']}: {where}: {r['reason']} -> {self.path}"


def _finite(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _read(path: Path) -> dict[str, Any] | None:
    return json.loads(path.read_text()) if path.is_file() else None


def _why_not(train: dict | None, metrics: dict | None, params: Params, name: str) -> str | None:
    """Why a backbone may not be registered, or None when it may."""
    reg = params.register
    test_metric = "test_" + reg.metric.split("_", 1)[1]
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
    budget = (reg.budgets or {})[reg.budget] if reg.budget else Budget()
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
    params: Params, backbones: list[str], models_dir: Path, metrics_dir: Path
) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """The backbones that may be registered, and why each other one may not.

    Returns:
        (candidates: train.json merged with metrics, rejected: backbone -> reason).
    """
    candidates, rejected = [], {}
    for name in backbones:
        train = _read(Path(models_dir) / name / "train.json")
        metrics = _read(Path(metrics_dir) / f"{name}.json")
        reason = _why_not(train, metrics, params, name)
        if reason:
            rejected[name] = reason
            continue
        # Each seed's run is a candidate of its own: the best (backbone, seed) by validation.
        for seed in metrics.get("seeds") or [{}]:
            chosen = {k: v for k, v in seed.items() if v is not None}
            candidates.append({**train, **metrics, **chosen, "backbone": name})
    return candidates, rejected


def _test_predictions(model_uri: str, split_dir, image_root, cache_dir) -> tuple[Any, Any]:
    """(true labels, predicted labels) of a logged model on the current test split."""
    from bakeoff.data.pixels import split_pixels
    from bakeoff.inference import predict_proba

    model = tracking.load_keras_model(model_uri)
    pixels = split_pixels(split_dir, "test", image_root, int(model.input_shape[1]), cache_dir)
    return pixels.labels, predict_proba(model, pixels).argmax(axis=1)


def _champion_test(
    params: Params,
    best: dict[str, Any],
    champion: Any,
    classes: list[str],
    split_dir,
    image_root,
    cache_dir,
) -> tuple[dict[str, Any] | None, str]:
    """The paired test of the candidate against the champion on the current test split.

    Returns:
        (the test, or None when there is no champion or it is incomparable; a note why).
    """
    from bakeoff.promotion import paired_test

    reg = params.register
    if champion is None:
        return None, "no champion yet"
    uri = f"models:/{reg.model_name}/{champion.version}"
    if tracking.model_classes(uri) != classes:
        return None, f"champion v{champion.version} was trained on other classes"
    y, old = _test_predictions(uri, split_dir, image_root, cache_dir)
    y_new, new = _test_predictions(best["model_uri"], split_dir, image_root, cache_dir)
    if (y_new != y).any():  # pragma: no cover - both read the same manifest
        raise BakeoffError("candidate and champion were scored on different test images")
    metric = reg.metric.split("_", 1)[1]
    test = paired_test(y, new, old, metric, len(classes), reg.bootstrap, reg.confidence, reg.seed)
    return test, f"champion v{champion.version}"


def register(
    params: Params,
    backbones: list[str],
    models_dir: Path,
    metrics_dir: Path,
    split_dir: Path,
    image_root: Path,
    out_path: Path,
    *,
    cache_dir: Path | None = None,
    root: Path,
) -> Decision:
    """Choose, register and (maybe) promote the best backbone; write reports/register.json.

    Args:
        params: All params (`register` and `tracking` sections).
        backbones: The backbones to consider.
        models_dir: models/ (each <backbone>/train.json).
        metrics_dir: metrics/ (each <backbone>.json).
        split_dir: data/split (the champion is re-scored on its test split).
        image_root: data/raw.
        out_path: reports/register.json.
        cache_dir: The decode cache: the test split as evaluate read it (default: the
            project's .bakeoff/cache/, next to data/).
        root: The project root (MLflow store).

    Returns:
        The decision and the path of its report.
    """
    from bakeoff.data.dataset import read_classes
    from bakeoff.data.pixels import default_cache_dir

    cache_dir = Path(cache_dir) if cache_dir else default_cache_dir(split_dir)
    reg = params.register
    test_metric = "test_" + reg.metric.split("_", 1)[1]
    tracking.configure(params.tracking, root)
    candidates, rejected = eligible(params, backbones, models_dir, metrics_dir)
    report: dict[str, Any] = {
        "model_name": reg.model_name,
        "metric": reg.metric,
        "compared_on": test_metric,
        "version": None,
        "backbone": None,
        "candidate": {},
        "champion": {},
        "data_version": None,
        "not_eligible": rejected,
    }
    if not candidates:
        why = "; ".join(f"{k}: {v}" for k, v in rejected.items()) or "no backbones"
        return _write(out_path, report | {"decision": "none", "reason": f"no eligible: {why}"})
    # Ties go to the faster model.
    best = max(candidates, key=lambda c: (c[reg.metric], -c.get("latency_ms_b1", 0.0)))
    classes = read_classes(split_dir)
    report |= {
        "backbone": best["backbone"],
        "data_version": best.get("data_version"),
        "candidate": _summary(best, reg.metric, test_metric),
    }
    champion = tracking.get_version_by_alias(reg.model_name, "champion")
    if champion is not None:
        report["champion"] = {k: champion.tags.get(k) for k in ("backbone", "run_id")}
        report["champion"]["version"] = str(champion.version)
        if champion.tags.get("run_id") == best.get("run_id"):
            reason = f"{best['backbone']} (run {best['run_id']}) is already the champion"
            done = {"decision": "rejected", "reason": reason, "version": str(champion.version)}
            return _write(out_path, report | done)
    _check_logged(best)
    test, note = _champion_test(params, best, champion, classes, split_dir, image_root, cache_dir)
    report["paired_test"] = test
    if test is None:
        decision, reason = "promoted", f"{note}: promoted"
    else:
        report["champion"][test_metric] = test["champion"]
        decision, reason = decide(test, reg.min_improvement, note)
    old = None if champion is None else str(champion.version)
    report["description"] = version_description(
        decision, report["candidate"], test_metric, old, test, reg.min_improvement
    )
    new = _register_version(best, reg.model_name, classes, decision, reason, report["description"])
    if decision == "promoted":
        tracking.set_alias(reg.model_name, "champion", new)
        tracking.delete_alias(reg.model_name, "challenger")
        if champion is not None:
            tracking.set_version_tags(reg.model_name, champion.version, {"superseded_by": new})
    else:
        tracking.set_alias(reg.model_name, "challenger", new)
    return _write(out_path, report | {"decision": decision, "reason": reason, "version": new})


def _summary(c: dict[str, Any], metric: str, test_metric: str) -> dict[str, Any]:
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


def _check_logged(best: dict[str, Any]) -> None:
    if not best.get("model_uri"):
        raise BakeoffError(
            f"models/{best['backbone']}/train.json has no model_uri (the model was not logged "
            f"to MLflow): re-run `bakeoff train {best['backbone']}`"
        )


def _register_version(
    best: dict[str, Any], name: str, classes: list[str], decision: str, reason: str, text: str
) -> str:
    """A new registry version of the candidate's logged model, tagged with its numbers
    (rounded: the full ones are in register.json and the run), described by `text`."""
    uri = best["model_uri"]
    tags = {
        "backbone": best["backbone"],
        "seed": best.get("seed"),
        "run_id": best.get("run_id"),
        "data_version": best.get("data_version"),
        "classes": json.dumps(classes),
        "image_size": best.get("image_size"),
        "decision": decision,
        "reason": reason,
        **{k: best.get(k) for k in (*METRICS, "latency_ms_b1", "size_mb")},
    }
    return tracking.register_version(uri, name, {k: rounded(v) for k, v in tags.items()}, text)


def _write(out_path: Path, report: dict[str, Any]) -> Decision:
    order = ["decision", "reason", "model_name", "version", "backbone", "metric"]
    report = {k: report[k] for k in order} | report
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_text(json.dumps(report, indent=2) + "\n")
    return Decision(report, out_path)
