"""The report's decision: the recommendation, the champion and how both were trained.

`analyse` applies the statistics (`bakeoff.report.stats`) to the table; `decide` adds what
the first screen says around it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd

from bakeoff.config import ReportParams
from bakeoff.errors import BakeoffError
from bakeoff.report import context, trained
from bakeoff.report import stats as report_stats


def analyse(params: ReportParams, table: pd.DataFrame, data: Mapping[str, Any]) -> dict[str, Any]:
    """The recommendation, the Pareto front and the budgets, from the table."""
    best = str(table["test_accuracy"].astype(float).idxmax())
    for name, b in data.items():
        if len(b.actual) != len(data[best].actual) or (b.actual != data[best].actual).any():
            raise BakeoffError(
                f"{name} and {best} were tested on different images (their confusion.csv "
                "differ): re-run `dvc repro` so every backbone is evaluated on the same split"
            )
    tied = {}
    for name, b in data.items():
        if name == best:
            continue
        diff, low, high = report_stats.paired_difference(
            data[best].correct,
            b.correct,
            params.bootstrap,
            params.confidence,
            params.seed,
        )
        spread = [(t["test_accuracy_mean"], t["test_accuracy_std"], t["n_seeds"])
                  for t in (data[best].metrics, b.metrics)]  # fmt: skip
        if low <= 0 <= high or report_stats.tied_by_seeds(*spread):
            tied[name] = (diff, low, high)
    candidates = [
        report_stats.Candidate(n, float(r.test_accuracy), float(r.latency_ms_b1), float(r.size_mb))
        for n, r in table.iterrows()
    ]
    pick, reason = report_stats.recommend(candidates, tied)
    front = report_stats.pareto_front({c.name: (c.accuracy, c.latency_ms) for c in candidates})
    budgets = {
        label: report_stats.within_budget(candidates, b.max_latency_ms, b.max_size_mb)
        for label, b in (params.budgets or {}).items()
    }
    return {
        "best": best,
        "tied": sorted(tied),
        "pick": pick,
        "reason": reason,
        "front": front,
        "budgets": budgets,
    }


def decide(
    params: ReportParams, table: pd.DataFrame, data: Mapping[str, Any], register: Mapping[str, Any]
) -> dict[str, Any]:
    """The first screen: how the backbones trained, the recommendation and the champion.

    Args:
        params: The report section.
        table: The comparison table (`bakeoff.report.table.build_table`).
        data: backbone -> its results (metrics, per-image outcomes, train.json).
        register: reports/register.json.

    Returns:
        `analyse`'s findings plus the sentences of the first screen.
    """
    found = analyse(params, table, data)
    name, version, champion_text = context.champion(register)
    pick = data[found["pick"]].train
    held = data.get(name) if name else None
    return {
        **found,
        "budgets": context.budgets(params, table, found["budgets"]),
        "recipe": trained.recipe({n: b.train for n, b in data.items()}),
        "pick_outcome": trained.outcome(pick),
        "scratch_note": trained.scratch_note(pick) if trained.from_scratch(pick) else "",
        "champion": name if held else None,
        "champion_version": version,
        "champion_text": champion_text,
        "champion_outcome": trained.outcome(held.train) if held else "",
    }
