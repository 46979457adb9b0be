"""Every path bakeoff reads or writes, relative to one project root: `ProjectPaths`.

There is no module-level path: the CLI finds the root once (`find_root`), flows and tests
name theirs, and the resulting `ProjectPaths` is passed down to every stage. Relative
paths in params.yaml (`data.source`, a `sqlite:///` tracking URI) resolve against that
root too (`ProjectPaths.resolve`), never against the process's working directory.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


def find_root() -> Path:
    """The project root: `BAKEOFF_ROOT`, else the current directory when it holds a
    params.yaml (so `bakeoff` works from any clone), else the checkout this package is in."""
    if os.environ.get("BAKEOFF_ROOT"):
        return Path(os.environ["BAKEOFF_ROOT"]).resolve()
    cwd = Path.cwd()
    if (cwd / "params.yaml").is_file():
        return cwd.resolve()
    return Path(__file__).resolve().parents[3]


@dataclass(frozen=True)
class ProjectPaths:
    """The layout of one project, every path derived from `root`.

    Args:
        root: The project directory (with params.yaml and dvc.yaml); made absolute.
    """

    root: Path

    def __post_init__(self) -> None:
        object.__setattr__(self, "root", Path(self.root).expanduser().resolve())

    @property
    def params_file(self) -> Path:
        return self.root / "params.yaml"

    @property
    def raw_dir(self) -> Path:
        return self.root / "data" / "raw"

    @property
    def validated_dir(self) -> Path:
        return self.root / "data" / "validated"

    @property
    def accepted_manifest(self) -> Path:
        return self.validated_dir / "accepted.csv"

    @property
    def split_dir(self) -> Path:
        return self.root / "data" / "split"

    @property
    def models_dir(self) -> Path:
        return self.root / "models"

    @property
    def metrics_dir(self) -> Path:
        return self.root / "metrics"

    @property
    def plots_dir(self) -> Path:
        return self.root / "plots"

    @property
    def reports_dir(self) -> Path:
        return self.root / "reports"

    @property
    def cache_dir(self) -> Path:
        """Decoded pixels and frozen-base features, shared by stages, backbones and reruns."""
        return self.state_dir / "cache"

    @property
    def exports_dir(self) -> Path:
        return self.root / "exports"

    @property
    def mlruns_dir(self) -> Path:
        return self.root / "mlruns"

    @property
    def state_dir(self) -> Path:
        # Resumable training state lives outside DVC's outputs: `dvc repro` deletes outputs
        # before it runs a stage, which would throw away the epochs a crashed run completed.
        return self.root / ".bakeoff"

    def resolve(self, path: str | Path) -> Path:
        """`path` from params.yaml as an absolute path: relative means relative to root."""
        path = Path(path).expanduser()
        return path if path.is_absolute() else self.root / path


def project_paths(root: Path | str | None = None) -> ProjectPaths:
    """The paths of the project at `root` (default: `find_root()`)."""
    return ProjectPaths(Path(root) if root is not None else find_root())
