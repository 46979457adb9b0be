"""What a retrain run tells a person in Prefect: its final state's name and tags, and the
markdown artifact that leads with what happened.

A promotion, a kept champion and "no new data" must look different in Prefect's runs list,
not all "Completed": each ends in a named Completed state with a matching tag. Pure
functions on reports/register.json and metrics/ (no Prefect, no MLflow): tested alone.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bakeoff.config.sections import test_metric
from bakeoff.register.description import retrain_headline

# register's decision -> (the final state's name, the flow run's tag)
_OUTCOMES = {
    "promoted": ("Promoted", "promoted"),
    "challenger": ("ChampionKept", "champion-kept"),
    "rejected": ("ChampionKept", "champion-kept"),
    "none": ("NothingRegistered", "nothing-registered"),
}
NO_NEW_DATA = ("NoNewData", "no-new-data")


def outcome(decision: str) -> tuple[str, str]:
    """(state name, tag) of a retrain whose register step decided `decision`."""
    if decision not in _OUTCOMES:
        raise ValueError(f"unknown register decision {decision!r}")
    return _OUTCOMES[decision]


def run_name(day: str, forced: bool) -> str:
    """The flow run's name: `retrain-<day>`, plus `-forced` when it ignored the data check."""
    return f"retrain-{day}" + ("-forced" if forced else "")


@dataclass(frozen=True)
class MlflowLinks:
    """Where the artifact's links point: the MLflow UI and the experiment."""

    ui: str  # e.g. http://127.0.0.1:5000 (no trailing slash)
    experiment_id: str
    runs_page: str = ""  # the experiment's runs table, in bakeoff's saved view
    note: str = ""  # how to open it, when it is not a running server (`make ui`)

    def run(self, run_id: str) -> str:
        return f"{self.ui}/#/experiments/{self.experiment_id}/runs/{run_id}"

    def version(self, model: str, version: str) -> str:
        return f"{self.ui}/#/models/{model}/versions/{version}"


def retrain_summary_markdown(
    data_version: str,
    backbones: list[str],
    metrics_dir: Path,
    register_json: Path,
    links: MlflowLinks | None = None,
) -> str:
    """The retrain run's artifact: what happened, then each backbone's metrics and why.

    Args:
        data_version: The data version the run trained on.
        backbones: The backbones of the run.
        metrics_dir: Where evaluate wrote `<backbone>.json`.
        register_json: reports/register.json (register's decision).
        links: Where the MLflow UI is, to link the chosen run and the new model version.

    Returns:
        Markdown for `create_markdown_artifact`; its first line is the headline.
    """
    report = json.loads(Path(register_json).read_text())
    lines = [f"# {retrain_headline(report)}", "", f"**Data version:** `{data_version}`", ""]
    if report.get("description"):
        lines += [report["description"], ""]
    lines += [f"**Why:** {report.get('reason', '')}", ""]
    lines += [_paired_test_line(report.get("paired_test")), ""]
    if links is not None and (linked := _links_line(report, links)):
        lines += [linked, ""]
    lines += [
        "| backbone | role | test accuracy | test macro F1 | val accuracy | size MB "
        "| latency ms (b1) |",
        "|---|---|---|---|---|---|---|",
    ]
    for backbone in backbones:
        path = Path(metrics_dir) / f"{backbone}.json"
        role = _role(backbone, report)
        name = f"**{backbone}**" if role else backbone
        if not path.is_file():
            lines.append(f"| {name} | {role} | no metrics | | | | |")
            continue
        m = json.loads(path.read_text())
        keys = ("test_accuracy", "test_macro_f1", "val_accuracy", "size_mb", "latency_ms_b1")
        lines.append(f"| {name} | {role} | " + " | ".join(_fmt(m.get(k)) for k in keys) + " |")
    return "\n".join(lines) + "\n"


def _role(backbone: str, report: dict[str, Any]) -> str:
    """The table's marks: the backbone register chose (and what became of it), the champion."""
    decision, version = report.get("decision"), report.get("version")
    champion = report.get("champion") or {}
    marks = []
    if backbone == report.get("backbone") and decision in ("promoted", "challenger"):
        marks.append(f"chosen: v{version} {'champion' if decision == 'promoted' else 'challenger'}")
    elif backbone == report.get("backbone"):
        marks.append("chosen")
    if decision != "promoted" and backbone == champion.get("backbone"):
        marks.append(f"champion v{champion.get('version')}")
    return ", ".join(marks)


def _links_line(report: dict[str, Any], links: MlflowLinks) -> str | None:
    """Links to the runs table, the chosen backbone's run and the version register made."""
    parts = [f"[all runs]({links.runs_page})"] if links.runs_page else []
    run_id = (report.get("candidate") or {}).get("run_id")
    if run_id:
        parts.append(f"[{report.get('backbone')} run]({links.run(run_id)})")
    if report.get("version"):
        name, version = report.get("model_name"), str(report["version"])
        parts.append(f"[{name} v{version}]({links.version(name, version)})")
    if not parts:
        return None
    return "**MLflow:** " + " · ".join(parts) + (f" ({links.note})" if links.note else "")


def _paired_test_line(test: dict[str, Any] | None) -> str:
    """The promotion test of register.json in one line (or why there was none)."""
    if not test:
        return "**Paired test:** none (no comparable champion)"
    low, high = test["interval"]
    return (
        f"**Paired test** ({test_metric(test['metric'])}, n={test['n']}): challenger "
        f"{test['challenger']:.4f} vs champion {test['champion']:.4f}, difference "
        f"{test['difference']:+.4f}, {100 * test['confidence']:g}% interval [{low:+.4f}, "
        f"{high:+.4f}], one-sided lower bound {test['lower_bound']:+.4f}, "
        f"McNemar p={test['mcnemar_p']:.3g}"
    )


def _fmt(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, int | float) else "-"
