"""Every path bakeoff reads or writes, relative to the project root.

The root is the current directory when it holds a params.yaml (so `bakeoff` works from
any clone), else `BAKEOFF_ROOT`, else the checkout this package was installed from.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
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


@dataclass(frozen=True)
class ProjectPaths:
    """The paths above for one project root (flows and tests run a project by its root)."""

    root: Path
    params_file: Path
    raw_dir: Path
    validated_dir: Path
    split_dir: Path
    models_dir: Path
    metrics_dir: Path
    plots_dir: Path
    reports_dir: Path
    mlruns_dir: Path
    state_dir: Path


def project_paths(root: Path | str | None = None) -> ProjectPaths:
    """The project's paths under `root` (default PROJ_ROOT), laid out exactly as above.

    Args:
        root: A project directory (with params.yaml and dvc.yaml).

    Returns:
        The paths, each the module constant moved from PROJ_ROOT to `root`.
    """
    base = Path(root).resolve() if root is not None else PROJ_ROOT

    def moved(path: Path) -> Path:
        return base / path.relative_to(PROJ_ROOT)

    return ProjectPaths(
        root=base,
        params_file=moved(PARAMS_FILE),
        raw_dir=moved(RAW_DIR),
        validated_dir=moved(VALIDATED_DIR),
        split_dir=moved(SPLIT_DIR),
        models_dir=moved(MODELS_DIR),
        metrics_dir=moved(METRICS_DIR),
        plots_dir=moved(PLOTS_DIR),
        reports_dir=moved(REPORTS_DIR),
        mlruns_dir=moved(MLRUNS_DIR),
        state_dir=moved(STATE_DIR),
    )
