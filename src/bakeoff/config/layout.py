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

from bakeoff.errors import BakeoffError


def nearest_root() -> Path | None:
    """`BAKEOFF_ROOT`, else the nearest folder from the current one up that holds a
    params.yaml (a clone's root, from anywhere inside it), else None."""
    if os.environ.get("BAKEOFF_ROOT"):
        return Path(os.environ["BAKEOFF_ROOT"]).resolve()
    cwd = Path.cwd().resolve()
    return next((d for d in (cwd, *cwd.parents) if (d / "params.yaml").is_file()), None)


def find_root() -> Path:
    """The project root (`nearest_root`).

    Raises:
        BakeoffError: No folder from here up holds a params.yaml. bakeoff does not guess
            one (the checkout it was installed from, say): `init` would rewrite another
            project's params.yaml.
    """
    root = nearest_root()
    if root is None:
        raise BakeoffError(
            f"no bakeoff project in {Path.cwd()} or above it (no params.yaml): run bakeoff "
            "inside your bakeoff checkout, or set BAKEOFF_ROOT to it"
        )
    return root


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
