"""Stage `register`: register the best backbone; move `champion` only when it wins.

Selection uses the validation metric (`register.metric`), so the test split stays an
unbiased judge. The champion comparison re-scores the current champion and the candidate
on the current test split, so both are measured on the same images, and promotes only
when a paired test shows the gain (`bakeoff.register.promotion`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bakeoff import tracking
from bakeoff.config.params import REGISTER_METRICS, Budget, RegisterParams, TrackingParams
from bakeoff.errors import BakeoffError
from bakeoff.register.candidates import eligible, summary
from bakeoff.register.description import rounded, version_description
from bakeoff.register.promotion import outcome

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


def _test_predictions(model_uri: str, split_dir, image_root, cache_dir) -> tuple[Any, Any]:
    """(true labels, predicted labels) of a logged model on the current test split."""
    from bakeoff.data.pixels import split_pixels
    from bakeoff.model.inference import predict_proba

    model = tracking.load_keras_model(model_uri)
    pixels = split_pixels(split_dir, "test", image_root, int(model.input_shape[1]), cache_dir)
    return pixels.labels, predict_proba(model, pixels).argmax(axis=1)


def _champion_test(
    reg: RegisterParams,
    resampling: tuple[int, int],
    best: dict[str, Any],
    champion: Any,
    classes: list[str],
    scored_on: tuple[Path, Path, Path],
) -> tuple[dict[str, Any] | None, str]:
    """The paired test of the candidate against the champion on the current test split.

    Args:
        reg: The register section (model name, metric, confidence).
        resampling: (bootstrap resamples, seed), the top-level `bootstrap` and `seed`.
        best: The candidate.
        champion: The champion's registry version (None: none yet).
        classes: The split's classes.
        scored_on: (split_dir, image_root, cache_dir) of the test split.

    Returns:
        (the test, or None when there is no champion or it is incomparable; a note why).
    """
    from bakeoff.register.promotion import paired_test

    if champion is None:
        return None, "no champion yet"
    uri = f"models:/{reg.model_name}/{champion.version}"
    if tracking.model_classes(uri) != classes:
        return None, f"champion v{champion.version} was trained on other classes"
    y, old = _test_predictions(uri, *scored_on)
    y_new, new = _test_predictions(best["model_uri"], *scored_on)
    if (y_new != y).any():  # pragma: no cover - both read the same manifest
        raise BakeoffError("candidate and champion were scored on different test images")
    bootstrap, seed = resampling
    test = paired_test(y, new, old, reg.measure, len(classes), bootstrap, reg.confidence, seed)
    return test, f"champion v{champion.version}"


def register(
    params: RegisterParams,
    backbones: list[str],
    models_dir: Path,
    metrics_dir: Path,
    split_dir: Path,
    image_root: Path,
    out_path: Path,
    *,
    seed: int,
    bootstrap: int,
    budgets: dict[str, Budget] | None,
    tracking_params: TrackingParams,
    cache_dir: Path,
    root: Path,
) -> Decision:
    """Choose, register and (maybe) promote the best backbone; write reports/register.json.

    Args:
        params: The register section (metric, budgets, promotion test, model name).
        backbones: The backbones to consider.
        models_dir: models/ (each <backbone>/train.json).
        metrics_dir: metrics/ (each <backbone>.json).
        split_dir: data/split (the champion is re-scored on its test split).
        image_root: data/raw.
        out_path: reports/register.json.
        seed: The top-level `seed`: of the promotion test's bootstrap.
        bootstrap: The top-level `bootstrap`: the promotion test's resamples.
        budgets: The top-level `budgets` (`register.budget` names the one to fit).
        tracking_params: The tracking section (the MLflow store and registry).
        cache_dir: The decode cache: the test split as evaluate read it.
        root: The project root (MLflow store).

    Returns:
        The decision and the path of its report.
    """
    from bakeoff.data.dataset import read_classes

    test_metric = params.test_metric
    tracking.configure(tracking_params, root)
    candidates, rejected = eligible(params, backbones, models_dir, metrics_dir, budgets)
    report = _new_report(params, test_metric, rejected)
    if not candidates:
        why = "; ".join(f"{k}: {v}" for k, v in rejected.items()) or "no backbones"
        return _write(out_path, report | {"decision": "none", "reason": f"no eligible: {why}"})
    # Ties go to the faster model.
    best = max(candidates, key=lambda c: (c[params.metric], -c.get("latency_ms_b1", 0.0)))
    classes = read_classes(split_dir)
    report |= {
        "backbone": best["backbone"],
        "data_version": best.get("data_version"),
        "candidate": summary(best, params.metric, test_metric),
    }
    champion = tracking.get_version_by_alias(params.model_name, "champion")
    if champion is not None:
        report["champion"] = {k: champion.tags.get(k) for k in ("backbone", "run_id")}
        report["champion"]["version"] = str(champion.version)
        if champion.tags.get("run_id") == best.get("run_id"):
            return _write(out_path, report | _already_champion(best, champion))
    _check_logged(best)
    scored_on = (split_dir, image_root, cache_dir)
    resampling = (bootstrap, seed)
    decided = _decide(params, resampling, report, best, champion, classes, scored_on)
    return _write(out_path, report | decided)


def _decide(
    params: RegisterParams,
    resampling: tuple[int, int],
    report: dict[str, Any],
    best: dict[str, Any],
    champion: Any,
    classes: list[str],
    scored_on: tuple[Path, Path, Path],
) -> dict[str, Any]:
    """Test the candidate against the champion, register it, move the aliases.

    Returns:
        The decision's entries of reports/register.json (`report` gains the paired test).
    """
    test, note = _champion_test(params, resampling, best, champion, classes, scored_on)
    report["paired_test"] = test
    if test is not None:
        report["champion"][report["compared_on"]] = test["champion"]
    decision, reason = (
        ("promoted", f"{note}: promoted") if test is None
        else outcome(test, params.min_improvement, note)
    )  # fmt: skip
    old = None if champion is None else str(champion.version)
    report["description"] = version_description(
        decision, report["candidate"], report["compared_on"], old, test, params.min_improvement
    )
    new = _register_version(
        best, params.model_name, classes, decision, reason, report["description"]
    )
    _move_aliases(params.model_name, decision, new, champion)
    return {"decision": decision, "reason": reason, "version": new}


def _new_report(params: RegisterParams, test_metric: str, rejected: dict) -> dict[str, Any]:
    """reports/register.json before a decision: what is compared, and who was not eligible."""
    return {
        "model_name": params.model_name, "metric": params.metric, "compared_on": test_metric,
        "version": None, "backbone": None, "candidate": {}, "champion": {},
        "data_version": None, "not_eligible": rejected,
    }  # fmt: skip


def _already_champion(best: dict[str, Any], champion: Any) -> dict[str, Any]:
    reason = f"{best['backbone']} (run {best['run_id']}) is already the champion"
    return {"decision": "rejected", "reason": reason, "version": str(champion.version)}


def _move_aliases(name: str, decision: str, new: str, champion: Any) -> None:
    """A promoted version becomes `champion` (the old one tagged as superseded), any other
    registered version `challenger`."""
    if decision == "promoted":
        tracking.set_alias(name, "champion", new)
        tracking.delete_alias(name, "challenger")
        if champion is not None:
            tracking.set_version_tags(name, champion.version, {"superseded_by": new})
    else:
        tracking.set_alias(name, "challenger", new)


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
