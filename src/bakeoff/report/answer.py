"""The report's decision: the recommendation, the champion and how both were trained.

`analyse` applies the statistics (`bakeoff.report.stats`) to the table; `decide` adds what
the first screen says around it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd

from bakeoff.errors import BakeoffError
from bakeoff.report import context, pick, trained
from bakeoff.report import stats as report_stats
from bakeoff.report.settings import ReportSettings


def _evidence(name: str, b: Any) -> report_stats.Evidence:
    """What the comparison needs of one backbone: right/wrong per image, test and CV."""
    m, oof = b.metrics, getattr(b, "oof", None)
    spread = (m["test_accuracy_mean"], m["test_accuracy_std"], m["n_seeds"])
    if oof is None:
        return report_stats.Evidence(name, b.correct, spread, cv_off_reason=m.get("cv_off_reason"))
    return report_stats.Evidence(
        name, b.correct, spread, (oof["label"] == oof["predicted"]).to_numpy(float),
        oof["path"].to_numpy(), oof["fold"].to_numpy(), None,
    )  # fmt: skip


def analyse(params: ReportSettings, table: pd.DataFrame, data: Mapping[str, Any]) -> dict[str, Any]:
    """The recommendation, the Pareto front and the budgets, from the table.

    The comparison (`report_stats.rank`) is cross-validated when every backbone has
    out-of-fold predictions, else on the test split; each pair's numbers (vs_best with its
    interval, McNemar's and Nadeau-Bengio's p-values, tied) join the table's rows.
    """
    first = next(iter(data))
    for name, b in data.items():
        if len(b.actual) != len(data[first].actual) or (b.actual != data[first].actual).any():
            raise BakeoffError(
                f"{name} and {first} were tested on different images (their confusion.csv "
                "differ): re-run `dvc repro` so every backbone is evaluated on the same split"
            )
    ranking = report_stats.rank(
        [_evidence(n, b) for n, b in data.items()], params.bootstrap, params.confidence,
        params.seed,
    )  # fmt: skip
    for name, pair in ranking.pairs.items():
        for key, value in pair.items():
            table.loc[name, key] = value
    # Best first on the measure that decides; the table's order breaks its ties.
    order = sorted(ranking.accuracy, key=lambda n: -ranking.accuracy[n])
    candidates = [
        pick.Candidate(
            n, ranking.accuracy[n], float(table.loc[n, "latency_ms_b1"]),
            float(table.loc[n, "size_mb"]),
        )
        for n in order
    ]  # fmt: skip
    choice, reason = pick.pick(candidates, ranking.tied, ranking.measure)
    # On the accuracy that decides, as the figure draws it (cross-validated when it ran).
    front = pick.pareto_front({c.name: (c.accuracy, c.latency_ms) for c in candidates})
    budgets = {
        label: pick.within_budget(candidates, b.max_latency_ms, b.max_size_mb)
        for label, b in (params.budgets or {}).items()
    }
    return {
        "best": ranking.best,
        "order": order,
        "basis": ranking.basis,
        "basis_note": ranking.note,
        "tied": sorted(ranking.tied),
        "pick": choice,
        "reason": f"{reason} {ranking.note}",
        "measure": ranking.measure,
        "front": front,
        "budgets": budgets,
    }


def answer(
    params: ReportSettings,
    table: pd.DataFrame,
    data: Mapping[str, Any],
    register: Mapping[str, Any],
) -> dict[str, Any]:
    """The first screen: how the backbones trained, the recommendation and the champion.

    Each backbone's training outcome (epochs run, best epoch, the tuning's gain) is said once,
    in its row of the details table; the first screen only warns when a training was still
    improving at its epoch cap.

    Args:
        params: The report's settings (statistics, budgets).
        table: The comparison table (`bakeoff.report.table.build_table`).
        data: backbone -> its results (metrics, per-image outcomes, train.json).
        register: reports/register.json.

    Returns:
        `analyse`'s findings plus the sentences of the first screen.
    """
    found = analyse(params, table, data)
    name, version, champion_text = context.champion(register)
    picked = data[found["pick"]].train
    trains = {n: b.train for n, b in data.items()}
    return {
        **found,
        "budgets": context.budgets(params, table, found["budgets"]),
        "recipe": trained.recipe(trains),
        "improving": trained.still_improving(trains),
        "scratch_note": trained.scratch_note(picked) if trained.from_scratch(picked) else "",
        "champion": name if name in data else None,
        "champion_version": version,
        "champion_text": champion_text,
    }
