"""What the benchmarks and the tests both need: a scratch DVC project, ImageNet-shaped weights
in a Keras cache, and the champion served by `mlflow models serve` in a Python that cannot
import bakeoff.

Not a benchmark (the leading underscore keeps it out of the smoke runs). The scripts import
it as `_support` (their folder is first on sys.path); the tests load it by file
(`tests.conftest.benchmark_module`).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import yaml

from bakeoff.stack import procs

REPO = Path(__file__).resolve().parents[1]


def dvc_project(root: Path, params: dict, dvc_config: bool = False) -> Path:
    """A DVC project in `root` (created): `params` as params.yaml, the repo's dvc.yaml, the
    stage sources and the (empty) exclude.txt it depends on, then `git init` and `dvc init`.

    Args:
        root: The project folder; must not exist.
        params: params.yaml's content.
        dvc_config: Also copy the repo's `.dvc/config` (its cache settings).
    """
    root.mkdir(parents=True)
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    shutil.copy(REPO / "dvc.yaml", root / "dvc.yaml")
    shutil.copy(REPO / "exclude.txt", root / "exclude.txt")  # validate's dependency
    shutil.copytree(REPO / "src" / "bakeoff", root / "src" / "bakeoff")
    subprocess.run(["git", "init", "-q"], cwd=root, check=True)
    subprocess.run([sys.executable, "-m", "dvc", "init", "-q"], cwd=root, check=True)
    if dvc_config:
        shutil.copy(REPO / ".dvc" / "config", root / ".dvc" / "config")
    return root


def fake_imagenet(keras_home: Path, backbones: list[str], size: int) -> None:
    """Stand-in ImageNet weights for `backbones` at `size`, saved as Keras's files, where
    `weights: imagenet` finds them with KERAS_HOME=`keras_home` (the machine is offline).

    Keras's fresh initialisation is not a stand-in for trained weights: its BatchNorm layers
    hold mean 0 and variance 1 whatever comes in, so activations shrink layer by layer and
    the pooled features come out near zero (variance 1e-40 for MobileNet, 1e-11 for
    EfficientNetB0). A head on such features learns nothing, or needs hundreds of epochs,
    which no real backbone asks of it. So each BatchNorm is given the statistics of its input
    on a batch of smooth random images (one training-mode pass with momentum 0), as trained
    weights have them: the features are then O(1) and carry the image (a logistic probe reads
    the benchmark's four patterns at 0.86-0.98), like real ImageNet features.
    """
    import keras
    import numpy as np

    from bakeoff.backbone.build import build_base, get_backbone, preprocessing

    (keras_home / "models").mkdir(parents=True, exist_ok=True)
    for name in backbones:
        keras.utils.set_random_seed(0)
        entry, base = get_backbone(name), build_base(name, size)
        noise = np.random.default_rng(0).uniform(0, 255, (32, 14, 14, 3)).astype("float32")
        batch = keras.ops.image.resize(noise, (size, size))
        for layer in preprocessing(entry.preprocess):  # as the model feeds its base
            batch = layer(batch)
        norms = [lyr for lyr in base.layers if isinstance(lyr, keras.layers.BatchNormalization)]
        momenta = [lyr.momentum for lyr in norms]
        for lyr in norms:
            lyr.momentum = 0.0
        base(batch, training=True)
        for lyr, momentum in zip(norms, momenta, strict=True):
            lyr.momentum = momentum
        target = keras_home / "models" / entry.imagenet.file_name(size)
        keras.saving.save_model(base, target)


def no_bakeoff_env(folder: Path, tracking_uri: str | None = None) -> dict[str, str]:
    """The environment of a Python that cannot import bakeoff (as on a machine without it:
    the model ships its own serving code).

    A `sitecustomize` in `folder` blocks the package; PYTHONPATH holds only that folder, and
    the venv's bin comes first on PATH (MLflow starts `uvicorn` from there). With
    `tracking_uri`, MLflow's own CLI finds `models:/` URIs in that store.
    """
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "sitecustomize.py").write_text("import sys\nsys.modules['bakeoff'] = None\n")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["PYTHONPATH"] = str(folder)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    if tracking_uri is not None:
        env["MLFLOW_TRACKING_URI"] = tracking_uri
    return env


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def serve(model_uri: str, env: dict, workdir: Path, workers: int = 1) -> Iterator[tuple]:
    """`mlflow models serve` on a free 127.0.0.1 port until the block ends.

    Yields:
        (port, pid of the serving process, its log file path).

    Raises:
        RuntimeError: The server exited or did not answer /ping within 180 s (with its log).
    """
    port = free_port()
    log_path = workdir / "serve.log"
    cmd = [sys.executable, "-m", "mlflow", "models", "serve", "-m", model_uri, "--env-manager",
           "local", "-h", "127.0.0.1", "-p", str(port), "--workers", str(workers)]  # fmt: skip
    with open(log_path, "w") as log:
        proc = subprocess.Popen(
            cmd, env=env, cwd=workdir, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )  # fmt: skip  (its workers go with it)
    try:
        deadline = time.monotonic() + 180
        while True:
            try:
                procs.open_local(f"http://127.0.0.1:{port}/ping", timeout=2).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    tail = log_path.read_text()[-3000:]
                    raise RuntimeError(f"mlflow models serve did not start:\n{tail}") from None
                time.sleep(0.5)
        yield port, proc.pid, log_path
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
