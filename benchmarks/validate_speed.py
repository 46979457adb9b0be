"""How fast is `validate`? Images per second on the demo data and on small PNG folders.

Run: .venv/bin/python benchmarks/validate_speed.py [--big 20000] [--small 5000]
     (--smoke: 20 demo images per class, 200 and 400 PNGs; checks that it runs)

The 5,000 vs 20,000 rows show whether time grows linearly with the number of images
(the ratio of times should be close to the ratio of counts). GE is imported once before
timing, so the numbers are the stage's own work: scan + decode + manifest + GE + docs.
"""

from __future__ import annotations

import argparse
import logging
import os
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from bakeoff.config.params import DataParams, ValidateParams
from bakeoff.data.ingest import ingest
from bakeoff.data.validate import _inspect_all, _scan, validate


def make_pngs(root: Path, n: int, classes: int = 10, size: int = 32) -> Path:
    """`n` distinct small RGB PNGs spread over `classes` folders."""
    rng = np.random.default_rng(0)
    for i in range(n):
        folder = root / f"class_{i % classes}"
        folder.mkdir(parents=True, exist_ok=True)
        pixels = rng.integers(0, 256, size=(size, size, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(folder / f"img_{i:06d}.png")
    return root


def time_validate(raw: Path, work: Path) -> tuple[int, float, float]:
    """(images, whole-stage seconds, scan-only seconds: walk + header + full decode)."""
    start = time.perf_counter()
    result = validate(ValidateParams(), raw, work / "validated", work / "reports", work)
    stage = time.perf_counter() - start
    start = time.perf_counter()
    _, todo, _ = _scan(raw)
    _inspect_all(todo, ValidateParams())
    return result.total, stage, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", type=int, default=5_000)
    parser.add_argument("--big", type=int, default=20_000)
    parser.add_argument("--per-class", type=int, default=300, help="demo images per class")
    parser.add_argument("--smoke", action="store_true", help="smallest sizes: does it run?")
    args = parser.parse_args()
    if args.smoke:
        args.small, args.big, args.per_class = 200, 400, 20
    logging.disable(logging.WARNING)
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")
    import great_expectations  # noqa: F401  (imported before timing: a one-off cost)

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        source = DataParams(source="fashion-mnist", per_class=args.per_class)
        ingest(source, tmp / "demo", root=tmp, seed=42)
        rows.append(("fashion-mnist demo (28 px PNG)", *time_validate(tmp / "demo", tmp / "d")))
        for n in (args.small, args.big):
            raw = make_pngs(tmp / f"png{n}", n)
            rows.append((f"{n:,} small PNGs (32 px)", *time_validate(raw, tmp / f"w{n}")))
    print(f"\ncores: {os.cpu_count()} (shared with other work: numbers are lower bounds)")
    print(f"{'data':32} {'images':>7} {'stage s':>8} {'stage img/s':>11} {'scan img/s':>10}")
    for name, n, secs, scan in rows:
        print(f"{name:32} {n:>7} {secs:>8.1f} {n / secs:>11.0f} {n / scan:>10.0f}")
    (_, n_small, t_small, s_small), (_, n_big, t_big, s_big) = rows[1], rows[2]
    print(
        f"ratio scan time, {n_big:,} / {n_small:,} images: {s_big / s_small:.2f}x (linear: "
        f"{n_big / n_small:.1f}x); stage time {t_big / t_small:.2f}x (fixed GE cost included)"
    )


if __name__ == "__main__":
    main()
