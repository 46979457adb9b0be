"""Real-size folders: memory, speed and disk of `bakeoff train MobileNet` at 1k, 4k, 16k images.

Run: .venv/bin/python benchmarks/real_size.py [--sizes 1000 4000 16000] [--trials 0]
(about 2 min at 1k, 15 min at 16k on 2 cores; not a test; --smoke: 100 images at 64 px,
checks that it runs).

For each size, in a temporary project (the repository's params.yaml, dvc.yaml and
.dvc/config): N generated 256 px JPEGs in 10 classes (speed and memory do not depend on
content), ImageNet-shaped MobileNet weights written into a temporary Keras cache (the
machine is offline; `_support.fake_imagenet`'s stand-in), `train.weights: imagenet`,
`image_size: 224`, feature cache on, the head converged without tuning trials (their cost
is `benchmarks/tune_speed.py`'s). Then, each command under `/usr/bin/time -v`:
  - `dvc repro split`: ingest, validate, split; `du` of the source, of data/raw + .dvc/cache
    (hardlinks counted once) and of the decode/feature caches;
  - `bakeoff train MobileNet`, cold (decode, one feature pass, head) and warm (features read);
  - the floor: Python + TensorFlow start-up and one forward pass of the same base over as
    many images as train+val hold, from memory;
  - a no-op `dvc repro train@MobileNet` after `dvc commit` (DVC's state cache at work).
Prints peak RSS, wall and CPU time, images/s and the ratios docs/benchmarks.md quotes. On a shared
machine the CPU-seconds ratio (user + system) is the steadier of the two speed ratios.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import yaml
from _support import dvc_project  # benchmarks/ is first on sys.path
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent

FLOOR = """
import sys, numpy as np
from bakeoff.backbone.features import build_extractor
n, size = int(sys.argv[1]), int(sys.argv[2])
extractor = build_extractor("MobileNet", size, "imagenet")
batch = np.random.default_rng(0).integers(0, 255, (32, size, size, 3)).astype("float32")
for start in range(0, n, 32):
    extractor.predict_on_batch(batch[: min(32, n - start)])
"""


def make_images(root: Path, n: int) -> None:
    """n JPEGs, 256 px, 10 classes: a smooth gradient per class plus noise (~20 kB each)."""
    rng = np.random.default_rng(0)
    ramp = np.linspace(0, 1, 256, dtype=np.float32)

    def one(i: int) -> None:
        label = i % 10
        local = np.random.default_rng(i)
        base = np.stack([np.outer(ramp, ramp) * (40 + 20 * label)] * 3, axis=-1)
        # A coarse pattern of its own, so that no two pictures are perceptual copies (the
        # fine noise alone leaves their pHashes equal: validate would group a whole class).
        coarse = Image.fromarray(local.uniform(0, 255, (8, 8)).astype(np.uint8))
        blobs = np.asarray(coarse.resize((256, 256), Image.BICUBIC), np.float32)[..., None]
        img = base + 0.5 * blobs + local.normal(0, 12, (256, 256, 3)) + rng_offsets[label]
        path = root / f"class{label}" / f"img{i:06d}.jpg"
        Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).save(path, quality=85)

    rng_offsets = rng.uniform(0, 100, (10, 3)).astype(np.float32)
    for label in range(10):
        (root / f"class{label}").mkdir(parents=True)
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(one, range(n)))


def make_project(root: Path, source: Path, trials: int, size: int) -> Path:
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["backbones"] = ["MobileNet"]
    params["data"]["source"] = str(source)
    params["train"].update(
        weights="imagenet", image_size=size, cache_features=True, augment=False,
        fine_tune_layers=0, overrides={"MobileNet": {}},
    )  # fmt: skip
    # Head tuning has its own benchmark (tune_speed.py); 0 trials measures the data path.
    params["tune"]["trials"] = trials
    return dvc_project(root, params, dvc_config=True)


def imagenet_shaped_weights(keras_home: Path, size: int) -> None:
    """Keras's MobileNet no-top file (the stand-in), where `weights: imagenet` finds it."""
    # In a process of its own: this script never imports TensorFlow itself.
    code = (
        "import sys; from pathlib import Path; sys.path.insert(0, sys.argv[3])\n"
        "from _support import fake_imagenet\n"
        "fake_imagenet(Path(sys.argv[1]), ['MobileNet'], int(sys.argv[2]))\n"
    )
    args = [str(keras_home), str(size), str(Path(__file__).parent)]
    subprocess.run([sys.executable, "-c", code, *args], check=True, env=ENV)


CPU: dict[str, float] = {}  # log name -> user + system seconds of the last `timed` call


def timed(cmd: list, cwd: Path, log: Path) -> tuple[float, float]:
    """(wall seconds, peak RSS in GB) of `cmd` under /usr/bin/time -v; CPU seconds in CPU."""
    stats = log.with_suffix(".time")
    with open(log, "w") as out:
        done = subprocess.run(
            ["/usr/bin/time", "-v", "-o", str(stats), *map(str, cmd)],
            cwd=cwd, env=ENV, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    if done.returncode != 0:
        sys.exit(f"failed: {' '.join(map(str, cmd))}; see {log}")
    text = stats.read_text()
    rss_kb = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", text).group(1))
    wall = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): ([\d:.]+)", text).group(1)
    seconds = sum(float(part) * 60**i for i, part in enumerate(reversed(wall.split(":"))))
    user = float(re.search(r"User time \(seconds\): ([\d.]+)", text).group(1))
    system = float(re.search(r"System time \(seconds\): ([\d.]+)", text).group(1))
    CPU[log.stem] = user + system
    return seconds, rss_kb / 1e6


def du_mb(*paths: Path) -> float:
    """Disk use of `paths` together; a file hardlinked in two of them counts once."""
    existing = [str(p) for p in paths if p.exists()]
    out = subprocess.run(["du", "-sck", *existing], capture_output=True, text=True).stdout
    return int(out.strip().splitlines()[-1].split()[0]) / 1024


def run_size(n: int, trials: int, size: int, work: Path) -> dict:
    source, project = work / "photos", work / "project"
    make_images(source, n)
    make_project(project, source, trials, size)
    logs = work / "logs"
    logs.mkdir()
    row: dict = {"n": n}
    row["ingest_s"], _ = timed([BIN / "dvc", "repro", "ingest"], project, logs / "ingest.log")
    row["source_mb"] = du_mb(source)
    # Before validate and split add their own (small) outputs to .dvc/cache.
    row["ingest_mb"] = du_mb(project / "data" / "raw", project / ".dvc" / "cache")
    row["data_s"], _ = timed([BIN / "dvc", "repro", "split"], project, logs / "data.log")
    row["data_s"] += row["ingest_s"]
    n_trainval = sum(
        len((project / "data" / "split" / f"{s}.csv").read_text().splitlines()) - 1
        for s in ("train", "val")
    )
    row["trainval"] = n_trainval
    train = [BIN / "bakeoff", "train", "MobileNet"]
    row["cold_s"], row["cold_gb"] = timed(train, project, logs / "train_cold.log")
    row["cold_cpu"] = CPU["train_cold"]
    row["cache_mb"] = du_mb(project / ".bakeoff" / "cache")
    row["warm_s"], row["warm_gb"] = timed(train, project, logs / "train_warm.log")
    floor = [sys.executable, "-c", FLOOR, n_trainval, size]
    row["floor_s"], row["floor_gb"] = timed(floor, project, logs / "floor.log")
    row["floor_cpu"] = CPU["floor"]
    subprocess.run([BIN / "dvc", "commit", "-f", "-q", "train@MobileNet"], cwd=project, env=ENV)
    row["noop_s"], _ = timed([BIN / "dvc", "repro", "train@MobileNet"], project, logs / "noop.log")
    if "Running stage" in (logs / "noop.log").read_text():
        sys.exit(f"the no-op `dvc repro` ran a stage: see {logs / 'noop.log'}")
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 4000, 16000])
    parser.add_argument("--trials", type=int, default=0, help="tune.trials (default 0)")
    parser.add_argument("--image-size", type=int, default=224, help="train.image_size")
    parser.add_argument("--keep", action="store_true", help="keep the temporary projects")
    parser.add_argument("--smoke", action="store_true", help="smallest sizes: does it run?")
    args = parser.parse_args()
    if args.smoke:
        args.sizes, args.image_size = [100], 64
    rows = []
    for n in args.sizes:
        work = Path(tempfile.mkdtemp(prefix=f"bakeoff-real-{n}-"))
        os.environ["KERAS_HOME"] = ENV["KERAS_HOME"] = str(work / "keras")
        imagenet_shaped_weights(work / "keras", args.image_size)
        start = time.perf_counter()
        rows.append(run_size(n, args.trials, args.image_size, work))
        print(f"{n} images done in {time.perf_counter() - start:.0f} s ({work})", flush=True)
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    load = os.getloadavg()
    print(f"\nload average (1/5/15 min) at the end: {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f}")
    print(
        "| images | train+val | peak RSS cold | peak RSS warm | cold train | images/s | "
        "floor | cold / floor (wall) | cold / floor (CPU s) | warm train | data stages | "
        "no-op repro | source | ingest adds | .bakeoff/cache |"
    )
    print("|" + "---|" * 15)
    for r in rows:
        print(
            f"| {r['n']:,} | {r['trainval']:,} | {r['cold_gb']:.2f} GB | {r['warm_gb']:.2f} GB | "
            f"{r['cold_s']:.0f} s | {r['trainval'] / r['cold_s']:.0f} | {r['floor_s']:.0f} s | "
            f"{r['cold_s'] / r['floor_s']:.2f}x | "
            f"{r['cold_cpu']:.0f} / {r['floor_cpu']:.0f} = {r['cold_cpu'] / r['floor_cpu']:.2f}x | "
            f"{r['warm_s']:.0f} s | {r['data_s']:.0f} s | "
            f"{r['noop_s']:.1f} s | {r['source_mb']:.0f} MB | "
            f"{r['ingest_mb'] / r['source_mb']:.2f}x | {r['cache_mb']:.0f} MB |"
        )
    print()
    for r in rows:
        print(f"ratio first run / floor (CPU s), {r['n']:,} images: "
              f"{r['cold_cpu'] / r['floor_cpu']:.2f}x (target <= 1.3x)")  # fmt: skip
    if len(rows) > 1:
        ratio = rows[-1]["cold_gb"] / rows[0]["cold_gb"]
        big, small = rows[-1]["n"], rows[0]["n"]
        print(f"ratio peak RSS, {big:,} / {small:,} images: {ratio:.2f}x (target <= 1.3x, < 4 GB)")


ENV = {
    **os.environ,
    "PATH": f"{BIN}:{os.environ['PATH']}",
    "PYTHONPATH": f"{REPO / 'src'}:{os.environ.get('PYTHONPATH', '')}",
    "TF_CPP_MIN_LOG_LEVEL": "2",
}

if __name__ == "__main__":
    main()
