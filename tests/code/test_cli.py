"""The CLI: fast to start, one-line errors for user mistakes."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import yaml

from tests.conftest import REPO

BAKEOFF = [sys.executable, "-m", "bakeoff.cli"]


def test_help_lists_every_stage_and_does_not_import_tensorflow():
    code = (
        "import sys; from typer.testing import CliRunner; from bakeoff.cli import app;"
        "r = CliRunner().invoke(app, ['--help']); print(r.output);"
        "print('TF-LOADED' if 'tensorflow' in sys.modules else 'TF-NOT-LOADED')"
    )
    start = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    elapsed = time.perf_counter() - start
    stages = ("ingest", "validate", "split", "train", "evaluate", "register", "export", "report")
    for stage in stages:
        assert stage in out.stdout
    assert "TF-NOT-LOADED" in out.stdout
    assert elapsed < 10  # generous: a guard against importing TensorFlow, not a benchmark


def test_bad_params_exit_1_with_one_line(tmp_path):
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["train"]["epochz"] = params["train"].pop("epochs")
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    proc = subprocess.run(
        [*BAKEOFF, "split", "--params", str(tmp_path / "params.yaml")],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == ["error: params.yaml: unknown key 'train.epochz'"]
    assert "Traceback" not in proc.stderr


def test_a_command_that_loads_tensorflow_prints_only_its_own_error(tmp_path):
    """TensorFlow's oneDNN start-up line escapes TF_CPP_MIN_LOG_LEVEL; the CLI hides it."""
    (tmp_path / "params.yaml").write_text((REPO / "params.yaml").read_text())
    proc = subprocess.run(
        [*BAKEOFF, "evaluate", "SimpleCNN"], capture_output=True, text=True, cwd=tmp_path
    )
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == [
        f"error: no trained model in {tmp_path / 'models' / 'SimpleCNN'} (train.json and "
        "model.keras): run `bakeoff train SimpleCNN` first"
    ]


def test_unknown_backbone_fails_before_any_path_is_built(tmp_path):
    (tmp_path / "params.yaml").write_text((REPO / "params.yaml").read_text())
    proc = subprocess.run(
        [*BAKEOFF, "evaluate", "../../etc"], capture_output=True, text=True, cwd=tmp_path
    )
    assert proc.returncode == 1
    assert proc.stderr.startswith("error: unknown backbone '../../etc': choose from SimpleCNN")
    assert not any(tmp_path.rglob("*.json")) and sorted(tmp_path.iterdir()) == [
        tmp_path / "params.yaml"
    ]


FILTER_DRIVER = r"""
import os, sys
from bakeoff.console import filtered_stderr
TF = b"I0000 00:00:1795668743.864779     808 "
with filtered_stderr():
    os.write(2, b"WARNING: All log messages before absl::InitializeLog() is called are "
                b"written to STDERR\n")
    os.write(2, TF + b"port.cc:153] oneDNN custom operations are on. You may see\n")
    os.write(2, b"\rtrain:  50%|##  | 1/2")
    os.write(2, b"\rtrain: 100%|####| 2/2\n")
    os.write(2, TF.replace(b"I", b"E") + b"meta_optimizer.cc:966] model_pruner failed: "
                b"INVALID_ARGUMENT: NodeDef mentions attribute use_unbounded_threadpool\n")
    os.write(2, TF.replace(b"I", b"E") + b"some_op.cc:12] a real error\n")
    print("python-level line", file=sys.stderr)
print("after", file=sys.stderr)
"""


def test_stderr_filter_drops_only_tensorflows_unactionable_lines():
    proc = subprocess.run([sys.executable, "-c", FILTER_DRIVER], capture_output=True, check=True)
    assert proc.stderr.decode() == (
        "\rtrain:  50%|##  | 1/2\rtrain: 100%|####| 2/2\n"
        "E0000 00:00:1795668743.864779     808 some_op.cc:12] a real error\n"
        "python-level line\nafter\n"
    )


def test_outside_a_project_init_says_so_and_writes_nothing(tmp_path):
    """From a folder with no params.yaml in it or above, bakeoff names the problem instead of
    taking the checkout it was installed from (whose params.yaml `init` would rewrite)."""
    images = tmp_path / "images"
    (images / "cats").mkdir(parents=True)
    work = tmp_path / "elsewhere" / "deeper"
    work.mkdir(parents=True)
    env = {k: v for k, v in os.environ.items() if k != "BAKEOFF_ROOT"}
    before = (REPO / "params.yaml").read_bytes()
    proc = subprocess.run([*BAKEOFF, "init", str(images)], capture_output=True, text=True,
                          cwd=work, env=env)  # fmt: skip
    assert proc.returncode == 1
    assert proc.stderr.strip() == (
        f"error: no bakeoff project in {work} or above it (no params.yaml): run bakeoff inside "
        "your bakeoff checkout, or set BAKEOFF_ROOT to it"
    )
    assert (REPO / "params.yaml").read_bytes() == before
    # From a sub-folder of a project, the project is found.
    (tmp_path / "params.yaml").write_text((REPO / "params.yaml").read_text())
    proc = subprocess.run([*BAKEOFF, "evaluate", "SimpleCNN"], capture_output=True, text=True,
                          cwd=work, env=env)  # fmt: skip
    assert f"no trained model in {tmp_path / 'models' / 'SimpleCNN'}" in proc.stderr
