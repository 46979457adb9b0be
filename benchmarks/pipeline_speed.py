"""Does each backbone cost one forward pass per image? `dvc repro` from scratch, timed per stage.

Run: .venv/bin/python benchmarks/pipeline_speed.py            (~15+ min on 2 shared cores)
     .venv/bin/python benchmarks/pipeline_speed.py --smoke    (60 images at 96 px, 1 backbone)
     .venv/bin/python benchmarks/pipeline_speed.py --trials 0 (the default head only)

In a temporary copy of the project: 2,000 generated, class-separable images (4 classes) at
224 px, three pretrained backbones with stand-in ImageNet weights (random, with
trained-like BatchNorm statistics so that the features, and the heads' work on them, are
like real ones: `_support.fake_imagenet`; saved under Keras's file names in a temporary
KERAS_HOME), the project's params otherwise (20 tuning trials), cross-validation off.
Each stage runs as `dvc repro --single-item <stage>` in pipeline order, so its wall and CPU
seconds (its processes' user + system time) are its own.

Each backbone's floor, measured in the same run:
  one forward pass of the frozen base over every image (from the decode cache, batch 32)
  + the latency measurement's own forward passes (evaluate's warm-up and repeats)
  + two Python + TensorFlow start-ups (the train and the evaluate process).
Two ratios against it, in CPU seconds, both from this one run:
  (a) train + evaluate without cross-validation / floor. Target <= 1.3x.
  (b) the `evaluate.cv_folds`-fold cross-validation's nested tunings alone (params.yaml's
      folds and tune.trials: one tuning per fold on the cached features, run after the
      pipeline in a process whose TensorFlow start-up is not counted) / floor.
      Target <= 0.35x: evaluate with cross-validation then stays within 1.65x of the floor.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import yaml
from _support import dvc_project, fake_imagenet  # benchmarks/ is first on sys.path

REPO = Path(__file__).resolve().parents[1]
CLASSES = ("dots", "horizontal", "vertical", "checks")
FLOOR_SCRIPT = r"""
import json, resource, sys, time
import numpy as np
t0 = resource.getrusage(resource.RUSAGE_SELF)
import keras
from bakeoff.model.inference import measure_latency
from bakeoff.backbone.features import build_extractor
name, cache = sys.argv[1], sys.argv[3]
size, warmup, repeats = int(sys.argv[2]), int(sys.argv[4]), int(sys.argv[5])
def cpu():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime
extractor = build_extractor(name, size, "imagenet")
model = keras.Model(extractor.inputs, keras.layers.Dense(4)(extractor.outputs[0]))
from pathlib import Path
files = sorted(Path(cache, "pixels").glob(f"*-{size}px-*.npy"))
n, start = 0, cpu()
for f in files:
    x = np.load(f, mmap_mode="r")
    for i in range(0, len(x), 32):
        extractor.predict_on_batch(np.asarray(x[i:i + 32], "float32"))
        n += len(x[i:i + 32])
forward = cpu() - start
start = cpu()
measure_latency(model, np.asarray(np.load(files[0], mmap_mode="r")[:1]), warmup, repeats)
latency = cpu() - start
print(json.dumps({"images": n, "forward": forward, "latency": latency}))
"""


CV_SCRIPT = r"""
import json, resource, sys, time
from pathlib import Path
import keras, tensorflow  # evaluate has them imported before it cross-validates
from bakeoff.backbone.features import load_features
from bakeoff.config.params import load_params
from bakeoff.evaluate.crossval import SPLITS, make_folds, out_of_fold, pool
name, folds, trials = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
def cpu():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime
params = load_params(Path("params.yaml"))
recipe = params.for_backbone(name)
split, cache = Path("data/split"), Path(".bakeoff/cache")
feats = load_features(name, recipe, split, Path("data/raw"), cache, splits=SPLITS)
assert not feats.computed, f"the pipeline left features uncached: {feats.computed}"
data = pool(feats, split)
fold = make_folds(data.y, data.groups, folds, params.seed)
start, wall = cpu(), time.perf_counter()
out_of_fold(data, fold, len(feats.classes), recipe, trials)
print(json.dumps({"cpu": cpu() - start, "wall": time.perf_counter() - wall, "images": len(fold)}))
"""


def write_images(root: Path, n: int, size: int) -> Path:
    """`n` distinct PNGs over 4 classes of stripes/dots/checks on noise."""
    from PIL import Image

    rng = np.random.default_rng(0)
    for i in range(n):
        label = CLASSES[i % len(CLASSES)]
        img = rng.integers(0, 80, size=(size, size, 3), dtype=np.uint8)
        step = max(size // 16, 2)
        if label == "horizontal":
            img[::step] = 230
        elif label == "vertical":
            img[:, ::step] = 230
        elif label == "dots":
            img[:: 2 * step, :: 2 * step] = 255
        else:
            img[(np.add.outer(np.arange(size), np.arange(size)) // step) % 2 == 0] = 200
        (root / label).mkdir(parents=True, exist_ok=True)
        Image.fromarray(img).save(root / label / f"{label}_{i:05d}.png")
    return root


def make_project(
    root: Path, images: Path, backbones: list[str], size: int, trials: int | None = None
) -> dict:
    """The repo's dvc.yaml, sources and params (pretrained, no augmentation, no
    cross-validation) in `root`; `trials`, when given, replaces tune.trials."""
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    if trials is not None:
        params["tune"]["trials"] = trials
    params["evaluate"]["cv_folds"] = 0
    params["backbones"] = backbones
    params["data"]["source"] = str(images)
    params["train"].update(weights="imagenet", image_size=size, augment=False, seeds=[42])
    params["train"]["overrides"] = {name: {} for name in backbones}  # one (empty) per backbone
    dvc_project(root, params)
    return params


def timed(cmd: list[str], cwd: Path, env: dict[str, str]) -> tuple[float, float]:
    """(wall, CPU seconds of the children) of one command, which must succeed."""
    before, start = resource.getrusage(resource.RUSAGE_CHILDREN), time.perf_counter()
    done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    wall, after = time.perf_counter() - start, resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def floor_cpu(backbone: str, size: int, cache: Path, evaluate: dict, env: dict) -> dict:
    """The floor's forward and latency passes of `backbone`, in a process of their own."""
    out = subprocess.run(
        [sys.executable, "-c", FLOOR_SCRIPT, backbone, str(size), str(cache),
         str(evaluate["latency_warmup"]), str(evaluate["latency_repeats"])],
        env=env, capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    return json.loads(out.strip().splitlines()[-1])


def cv_cpu(backbone: str, project: Path, folds: int, trials: int, env: dict) -> dict:
    """CPU and wall seconds of the `folds` nested tunings on the project's cached features."""
    done = subprocess.run(
        [sys.executable, "-c", CV_SCRIPT, backbone, str(folds), str(trials)],
        cwd=project, env=env, capture_output=True, text=True,
    )  # fmt: skip
    if done.returncode != 0:
        sys.exit(f"cross-validation of {backbone} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _verdict(ratio: float, target: float) -> str:
    return f"{ratio:.2f}x (target <= {target:g}x: {'met' if ratio <= target else 'missed'})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="60 images, 96 px, 1 backbone")
    parser.add_argument("--trials", type=int, help="tune.trials (default: params.yaml's)")
    parser.add_argument(
        "--cv-folds", type=int, help="folds of ratio (b) (default: params.yaml's evaluate.cv_folds)"
    )
    args = parser.parse_args()
    n, size = (60, 96) if args.smoke else (2000, 224)
    backbones = ["MobileNet"] if args.smoke else ["MobileNet", "MobileNetV2", "EfficientNetB0"]
    defaults = yaml.safe_load((REPO / "params.yaml").read_text())
    folds = defaults["evaluate"]["cv_folds"] if args.cv_folds is None else args.cv_folds
    work = Path(tempfile.mkdtemp(prefix="bakeoff-pipeline-speed-"))
    # TF_NUM_INTEROP_THREADS: what bakeoff sets for its stages, so the floor (and the
    # start-up) run TensorFlow as the stages do.
    env = {**os.environ, "KERAS_HOME": str(work / "keras"), "TF_CPP_MIN_LOG_LEVEL": "2",
           "MLFLOW_DISABLE_TELEMETRY": "true", "TF_NUM_INTEROP_THREADS": "1"}  # fmt: skip
    env.pop("MLFLOW_TRACKING_URI", None)
    # dvc.yaml's commands run `bakeoff`: this Python's venv first on PATH.
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    os.environ["KERAS_HOME"] = env["KERAS_HOME"]
    try:
        print(f"{n} images at {size} px, {', '.join(backbones)}; work folder {work}", flush=True)
        fake_imagenet(work / "keras", backbones, size)
        images = write_images(work / "images", n, size)
        project = work / "project"
        params = make_project(project, images, backbones, size, args.trials)
        trials = params["tune"]["trials"]
        print(f"tune.trials {trials}; the pipeline without cross-validation, then "
              f"{folds}-fold cross-validation's tunings on its features", flush=True)  # fmt: skip
        per_backbone = [f"{s}@{b}" for s in ("train", "evaluate") for b in backbones]
        stages = ["ingest", "validate", "split", *per_backbone, "register", "export", "report"]
        times = {}
        for stage in stages:
            cmd = [sys.executable, "-m", "dvc", "repro", "--single-item", stage]
            times[stage] = timed(cmd, project, env)
            print(f"  {stage:<24} {times[stage][0]:8.1f} s wall {times[stage][1]:8.1f} s CPU",
                  flush=True)  # fmt: skip
        startup = timed([sys.executable, "-c", "import tensorflow, keras"], project, env)[1]
        print(f"\nfloor: one Python + TensorFlow start-up {startup:.1f} s CPU (x2 per backbone)")
        print(f"{'backbone':<16}{'train+eval CPU':>16}{'CV CPU':>8}{'floor CPU':>11}"
              f"{'  (forward, latency passes)':>30}")  # fmt: skip
        cache = project / ".bakeoff" / "cache"
        for b in backbones:
            floor = floor_cpu(b, size, cache, params["evaluate"], env)
            total = floor["forward"] + floor["latency"] + 2 * startup
            spent = times[f"train@{b}"][1] + times[f"evaluate@{b}"][1]
            cv = cv_cpu(b, project, folds, trials, env) if folds else {"cpu": 0.0, "wall": 0.0}
            print(f"{b:<16}{spent:16.1f}{cv['cpu']:8.1f}{total:11.1f}"
                  f"   ({floor['forward']:.1f} s over {floor['images']} images, "
                  f"{floor['latency']:.1f} s)")  # fmt: skip
            print(f"ratio (a) train+evaluate without cross-validation / floor, {b}: "
                  f"{_verdict(spent / total, 1.3)}")  # fmt: skip
            if folds:
                print(f"ratio (b) {folds}-fold cross-validation's tunings / floor, {b}: "
                      f"{_verdict(cv['cpu'] / total, 0.35)}")  # fmt: skip
            tuned = json.loads((project / "models" / b / "train.json").read_text())["tuning"]
            print(f"{'':<16}wall s: the training's head tuning {tuned.get('seconds', 0):.1f}, "
                  f"the cross-validation's tunings {cv['wall']:.1f}")  # fmt: skip
        rest = sum(v[1] for k, v in times.items() if "@" not in k)
        print(
            f"the other stages: {rest:.1f} s CPU ("
            + ", ".join(f"{k} {v[1]:.1f}" for k, v in times.items() if "@" not in k)
            + ")"
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
