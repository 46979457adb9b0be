"""Every benchmark still runs: each one at its smallest size, as a user would start it.

The convention every `benchmarks/*.py` follows (files starting with `_` are helpers, not
benchmarks): it accepts `--smoke`, which runs every part of it at the smallest size that
still exercises its code (a minute or two on 2 shared cores), and it prints at least one
line `ratio <what>: <number>x ...`, the side-by-side figure it exists for. The numbers of a
smoke run mean nothing; this only proves that a refactor did not break a benchmark.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from tests.conftest import REPO

BENCHMARKS = sorted(p for p in (REPO / "benchmarks").glob("*.py") if not p.name.startswith("_"))
RATIO_LINE = re.compile(r"^ratio .+: \d+(\.\d+)?x", re.MULTILINE)


def test_the_benchmarks_are_found():
    names = {p.name for p in BENCHMARKS}
    assert {"validate_speed.py", "train_speed.py", "tune_speed.py", "real_size.py"} <= names


@pytest.mark.slow
@pytest.mark.timeout(900)
@pytest.mark.parametrize("script", BENCHMARKS, ids=[p.stem for p in BENCHMARKS])
def test_benchmark_runs_at_its_smallest_size_and_prints_its_ratio(script, tmp_path):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "TMPDIR": str(tmp_path)}
    env.pop("MLFLOW_TRACKING_URI", None)  # a benchmark keeps its own store
    done = subprocess.run(
        [sys.executable, str(script), "--smoke"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=840,
    )
    tail = f"\n--- stdout ---\n{done.stdout[-3000:]}\n--- stderr ---\n{done.stderr[-3000:]}"
    assert done.returncode == 0, f"{script.name} --smoke exited {done.returncode}{tail}"
    assert RATIO_LINE.search(done.stdout), f"{script.name} printed no `ratio ...: <n>x` line{tail}"
