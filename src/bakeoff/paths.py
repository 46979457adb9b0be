"""Every path bakeoff reads or writes, relative to the project root.

The root is the current directory when it holds a params.yaml (so `bakeoff` works from
any clone), else `BAKEOFF_ROOT`, else the checkout this package was installed from.
"""

from __future__ import annotations

import os
from pathlib import Path


def _find_root() -> Path:
    if "BAKEOFF_ROOT" in os.environ:
        return Path(os.environ["BAKEOFF_ROOT"]).resolve()
    cwd = Path.cwd()
    if (cwd / "params.yaml").is_file():
        return cwd
    return Path(__file__).resolve().parents[2]


PROJ_ROOT = _find_root()
PARAMS_FILE = PROJ_ROOT / "params.yaml"

DATA_DIR = PROJ_ROOT / "data"
RAW_DIR = DATA_DIR / "raw"
VALIDATED_DIR = DATA_DIR / "validated"
SPLIT_DIR = DATA_DIR / "split"

MODELS_DIR = PROJ_ROOT / "models"
METRICS_DIR = PROJ_ROOT / "metrics"
PLOTS_DIR = PROJ_ROOT / "plots"
REPORTS_DIR = PROJ_ROOT / "reports"
MLRUNS_DIR = PROJ_ROOT / "mlruns"
# Resumable training state lives outside DVC's outputs: `dvc repro` deletes outputs
# before it runs a stage, which would throw away the epochs a crashed run completed.
STATE_DIR = PROJ_ROOT / ".bakeoff"
