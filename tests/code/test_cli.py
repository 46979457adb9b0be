"""The CLI: fast to start, one-line errors for user mistakes."""

from __future__ import annotations

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
