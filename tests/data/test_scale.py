"""20,000 images through ingest -> validate -> split: memory does not grow with the folder.

Nothing on the data path holds pixels: per image only a manifest row stays in memory (a
dict and a pandas row for the expectations, about 2.5 kB). The check: peak RSS after
20,000 images exceeds the peak after a 200-image warm-up (same process, every import and
the expectation suite already loaded) by less than 6 kB per extra image (holding the decoded images would take 12 kB each).
"""

from __future__ import annotations

import resource
from pathlib import Path

import numpy as np
from PIL import Image

from bakeoff.config import DataParams, SplitParams, ValidateParams
from bakeoff.data.ingest import ingest
from bakeoff.data.split import split
from bakeoff.data.validate import validate

CLASSES = ("a", "b", "c", "d")


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


def _pipeline(source: Path, out: Path) -> int:
    """Run the three stages; returns the images in the split."""
    ingest(DataParams(source=str(source)), out / "raw", root=out)
    validate(ValidateParams(workers=2), out / "raw", out / "validated", out / "reports")
    result = split(SplitParams(), out / "validated" / "accepted.csv", out / "split")
    return sum(sum(per.values()) for per in result.counts.values())


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def test_twenty_thousand_images_go_through_without_growing_memory(tmp_path):
    assert _pipeline(_folder(tmp_path / "small", 200), tmp_path / "s") == 200
    warm = _peak_mb()
    assert _pipeline(_folder(tmp_path / "big", 20_000), tmp_path / "b") == 20_000
    grown = _peak_mb() - warm
    assert grown < 19_800 * 6 / 1024, f"peak RSS grew {grown:.0f} MB for 19,800 more images"
