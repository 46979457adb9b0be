"""The one latency timer: evaluate (Keras) and export (LiteRT) time inference with it."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Timing:
    """The timed calls of one `time_call`, in seconds."""

    seconds: tuple[float, ...]

    @property
    def median_s(self) -> float:
        """The median call: it resists the noise of other processes on a shared CPU."""
        return statistics.median(self.seconds)

    @property
    def median_ms(self) -> float:
        return self.median_s * 1000


def time_call(call: Callable[[], object], warmup: int, repeats: int) -> Timing:
    """Time `call` after untimed warm-up calls (graph tracing, memory allocation).

    Args:
        call: Runs the work once and returns only when it is done (a Keras forward pass
            must fetch its result, e.g. with `.numpy()`).
        warmup: Untimed calls first; at least one.
        repeats: Timed calls; at least one.

    Returns:
        The time of every timed call.
    """
    for _ in range(max(warmup, 1)):
        call()
    times = []
    for _ in range(max(repeats, 1)):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return Timing(tuple(times))
