"""Which backbone to pick once the statistics have said which are tied: the fastest (then
smallest) of them, the accuracy-latency Pareto front, and the backbones within a budget.

Pure functions on numbers; which backbones are tied is `bakeoff.report.stats`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Candidate:
    """What the recommendation needs to know about one backbone."""

    name: str
    accuracy: float
    latency_ms: float
    size_mb: float


def pareto_front(points: Mapping[str, tuple[float, float]]) -> list[str]:
    """The backbones no other backbone beats on both accuracy and latency.

    Args:
        points: name -> (accuracy, latency_ms); higher accuracy and lower latency are better.

    Returns:
        The non-dominated names, fastest first.
    """

    def dominated(acc: float, lat: float) -> bool:
        return any(a >= acc and t <= lat and (a > acc or t < lat) for a, t in points.values())

    front = [name for name, (acc, lat) in points.items() if not dominated(acc, lat)]
    return sorted(front, key=lambda name: points[name][1])


def within_budget(
    candidates: Sequence[Candidate], max_latency_ms: float | None, max_size_mb: float | None
) -> list[str]:
    """The backbones whose batch-1 latency and size fit a budget (None = no limit)."""
    return [
        c.name
        for c in candidates
        if (max_latency_ms is None or c.latency_ms <= max_latency_ms)
        and (max_size_mb is None or c.size_mb <= max_size_mb)
    ]


def _times(ratio: float) -> str:
    return f"{ratio:.0f}x" if ratio >= 10 else f"{ratio:.1f}x"


def _compare(mine: float, theirs: float, better: str, worse: str, same: str) -> str:
    """'9x faster' style wording; lower values are better (latency, size)."""
    if mine <= 0 or theirs <= 0 or abs(mine - theirs) <= 0.05 * max(mine, theirs):
        return same
    if mine < theirs:
        return f"{_times(theirs / mine)} {better}"
    return f"{_times(mine / theirs)} {worse}"


def pick(
    candidates: Sequence[Candidate],
    tied: Mapping[str, tuple[float, float, float]],
    measure: str = "test accuracy",
) -> tuple[str, str]:
    """The fastest (then smallest) backbone statistically tied with the most accurate one.

    Args:
        candidates: All backbones (`accuracy` on the comparison's basis).
        tied: name -> (difference, low, high) of best-minus-name accuracy, for the backbones
            whose interval contains 0 (the best itself need not be listed).
        measure: What `accuracy` is, for the reason ("test accuracy", "cross-validated ...").

    Returns:
        (name, reason): the reason is one sentence a reader can check against the table.
    """
    best = max(candidates, key=lambda c: c.accuracy)
    pool = [c for c in candidates if c.name == best.name or c.name in tied]
    pick = min(pool, key=lambda c: (c.latency_ms, c.size_mb, -c.accuracy))
    if pick.name == best.name:
        lead = f"{pick.name} has the best {measure} ({best.accuracy:.4f})"
        if not tied:
            return pick.name, f"{lead}; no other backbone is statistically tied with it."
        return pick.name, (
            f"{lead}; the backbones tied with it ({', '.join(sorted(tied))}) are not faster."
        )
    diff, low, high = tied[pick.name]
    gap = f"{diff:.4f} below {best.name}" if diff > 0 else f"level with {best.name}"
    speed = _compare(pick.latency_ms, best.latency_ms, "faster", "slower", "as fast")
    size = _compare(pick.size_mb, best.size_mb, "smaller", "larger", "about the same size")
    interval = f"[{low:+.4f}, {high:+.4f}]"
    where = (
        f"within the interval (paired bootstrap of the difference: {interval})"
        if low <= 0 <= high
        else f"within the seeds' spread (paired bootstrap of the difference: {interval})"
    )
    return pick.name, f"{pick.name} is {gap}, {where}, and {speed} and {size}."
