"""20,000 images through ingest -> validate -> split: memory does not grow with the folder.

Nothing on the data path holds pixels: per image only a manifest row stays in memory (a
dict and a pandas row for the expectations, about 2.5 kB). The check runs the pipeline in
a fresh Python process, once on 200 images and once on 20,000, and reads each process's
peak RSS with its children included (validate's forked workers) from `wait4`: the larger
run may peak at most 6 kB per extra image higher (holding the decoded images would take
12 kB each). A deliberately leaky run, which keeps every decoded image, must fail it.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

CLASSES = ("a", "b", "c", "d")
BUDGET_KB_PER_IMAGE = 6
# The work, in a fresh interpreter: the three stages, and with --leak a pipeline that keeps
# every accepted image decoded (what the check exists to catch).
_WORK = """
import sys
from pathlib import Path
from bakeoff.config.params import DataParams, SplitParams, ValidateParams
from bakeoff.data.images import load_array
from bakeoff.data.ingest import ingest
from bakeoff.data.split import split
from bakeoff.data.validate import validate
source, out, leak = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3] == "leak"
ingest(DataParams(source=str(source)), out / "raw", root=out, seed=42)
validate(ValidateParams(workers=2), out / "raw", out / "validated", out / "reports", out)
kept = []
if leak:
    for line in (out / "validated" / "accepted.csv").read_text().splitlines()[1:]:
        kept.append(load_array(out / "raw" / line.split(",")[0], 64))
result = split(SplitParams(), out / "validated" / "accepted.csv", out / "split", seed=42)
import resource
print(sum(sum(per.values()) for per in result.counts.values()),
      resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def _folder(root: Path, n: int) -> Path:
    """n distinct PNGs of a few hundred bytes that decode to 12 kB each (64 px, nearly flat,
    the index in the first pixels): holding the decoded images would cost 240 MB."""
    base = np.full((64, 64, 3), 90, dtype=np.uint8)
    for name in CLASSES:
        (root / name).mkdir(parents=True)
    for i in range(n):
        img = base.copy()
        img.reshape(-1)[:4] = np.frombuffer(i.to_bytes(4, "little"), np.uint8)
        Image.fromarray(img).save(root / CLASSES[i % 4] / f"{i:05d}.png", compress_level=1)
    return root


# Linux keeps a process's peak RSS across exec, and a child that pytest starts (vfork,
# then exec) begins with pytest's own peak: after a few GB of earlier tests every run would
# read that same figure. A small launcher in between starts the work from its own ~10 MB and
# reports the work's peak (its waited-for children included) from wait4.
_LAUNCH = """
import os, subprocess, sys
proc = subprocess.Popen(sys.argv[1:])
_, status, usage = os.wait4(proc.pid, 0)
print(usage.ru_maxrss, flush=True)
sys.exit(os.waitstatus_to_exitcode(status))
"""


def peak_rss_mb(source: Path, out: Path, leak: bool = False) -> tuple[int, float, float]:
    """Run the pipeline in a fresh process; (images in the split, its peak RSS in MB, the
    largest of the process and every child it waited for, and the process's own peak in MB).

    Both count: a child (validate's pool) can peak above the main process, and would then hide
    growth in the main process from the first figure alone."""
    work = [sys.executable, "-c", _WORK, str(source), str(out), "leak" if leak else "clean"]
    proc = subprocess.run(
        [sys.executable, "-c", _LAUNCH, *work], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    count, own_kb, all_kb = proc.stdout.split()[-3:]
    return int(count), int(all_kb) / 1024, int(own_kb) / 1024


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("scale")
    return _folder(root / "small", 200), _folder(root / "big", 20_000), root


def _growth(folders, leak: bool) -> float:
    """How much more the peak RSS is for 20,000 images than for 200: the larger growth of
    (the process with its children) and (the process alone)."""
    small, big, root = folders
    tag = "leak" if leak else "clean"
    n_small, warm_all, warm_own = peak_rss_mb(small, root / f"s-{tag}", leak)
    n_big, peak_all, peak_own = peak_rss_mb(big, root / f"b-{tag}", leak)
    assert (n_small, n_big) == (200, 20_000)
    return max(peak_all - warm_all, peak_own - warm_own)


def test_twenty_thousand_images_go_through_without_growing_memory(folders):
    grown = _growth(folders, leak=False)
    budget = 19_800 * BUDGET_KB_PER_IMAGE / 1024
    assert grown < budget, f"peak RSS grew {grown:.0f} MB for 19,800 more images"


@pytest.mark.slow
def test_the_check_catches_a_pipeline_that_keeps_the_images(folders):
    """The check above can fail: keeping the decoded images (12 kB each) exceeds it."""
    grown = _growth(folders, leak=True)
    assert grown >= 19_800 * BUDGET_KB_PER_IMAGE / 1024, f"a 232 MB leak grew only {grown:.0f} MB"
