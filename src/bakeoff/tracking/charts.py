"""The chart view of bakeoff's saved runs view: the charts that decide between backbones
first, every other metric in a collapsed section below them.

MLflow's runs page otherwise builds one bar or line chart per metric, alphabetically, so
test accuracy comes about twelfth. The saved view (`store.RUNS_VIEW`) carries the UI's
chart settings too; MLflow 3.17's UI takes `compareRunCharts` (the cards, in order) and
`compareRunSections` (the collapsible sections the cards name by `metricSectionId`) from
it, and adds a card for each metric the runs have and no card names.
"""

from __future__ import annotations

from typing import Any

# Section ids are the view's own; MLflow files the charts it adds for metrics without a
# `/` under the section named "Model metrics" (and adds a section for other prefixes).
_FIRST = "bakeoff-comparison"
_SECTIONS = [
    # `display` is whether the section is open; `isReordered` makes the UI append the cards
    # it adds to the end of a section instead of sorting them in among ours.
    {"uuid": _FIRST, "name": "Backbone comparison", "display": True, "isReordered": True},
    {"uuid": "bakeoff-model", "name": "Model metrics", "display": False, "isReordered": False},
]


def _bar(metric: str) -> dict[str, Any]:
    """A bar chart of one metric, a bar per run (the runs table's order)."""
    return {"type": "BAR", "uuid": f"bakeoff-bar-{metric}", "metricSectionId": _FIRST,
            "metricKey": metric, "displayName": metric, "runsCountToCompare": 20,
            "deleted": False, "isGenerated": False}  # fmt: skip


def _scatter(y: str, x: str) -> dict[str, Any]:
    """A scatter of one metric against another, a point per run (titled "<x> vs. <y>")."""
    return {"type": "SCATTER", "uuid": f"bakeoff-scatter-{y}-{x}", "metricSectionId": _FIRST,
            "xaxis": {"key": x, "type": "METRIC"}, "yaxis": {"key": y, "type": "METRIC"},
            "runsCountToCompare": 100, "deleted": False, "isGenerated": False}  # fmt: skip


# Test accuracy, latency, size, then accuracy against latency (the trade-off the report's
# figure plots); with cross-validation, the cross-validated accuracy after them. A bar
# chart no run has the metric of is hidden (`hideEmptyCharts`); a scatter is hidden only
# when neither axis has data, so there is none for cv_accuracy.
CHARTS = [
    _bar("test_accuracy"),
    _bar("latency_ms_b1"),
    _bar("size_mb"),
    _scatter("test_accuracy", "latency_ms_b1"),
    _bar("cv_accuracy"),
]
CHARTS_VIEW = {
    "compareRunCharts": CHARTS,
    "compareRunSections": _SECTIONS,
    "isAccordionReordered": True,  # keep the sections in this order, not alphabetical
    "hideEmptyCharts": True,
    "chartsSearchFilter": "",
}
