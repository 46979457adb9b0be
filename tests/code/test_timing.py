"""The one latency timer: warm-up calls are not timed, the median resists one slow call."""

from __future__ import annotations

from bakeoff.model import timing
from bakeoff.model.timing import time_call


def test_warmup_is_untimed_and_the_median_ignores_one_slow_call(monkeypatch):
    clock = [0.0]
    monkeypatch.setattr(timing.time, "perf_counter", lambda: clock[0])
    durations = iter([9.0, 9.0, 1.0, 500.0, 2.0, 1.0, 3.0])  # 2 warm-ups, then 5 timed

    def call() -> None:
        clock[0] += next(durations)

    result = time_call(call, warmup=2, repeats=5)
    assert result.seconds == (1.0, 500.0, 2.0, 1.0, 3.0)
    assert result.median_s == 2.0 and result.median_ms == 2000.0


def test_at_least_one_warmup_and_one_timed_call():
    calls = []
    result = time_call(lambda: calls.append(1), warmup=0, repeats=0)
    assert len(calls) == 2 and len(result.seconds) == 1
