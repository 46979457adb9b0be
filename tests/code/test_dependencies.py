"""Every third-party module bakeoff imports (src/ and flows/) comes from a distribution
pyproject.toml declares: none arrives only because another package happens to need it."""

from __future__ import annotations

import ast
import importlib.metadata
import re
import sys
import tomllib

from tests.conftest import REPO

# Not third-party: the package's copy inside a logged model, and the flows' own modules.
LOCAL = {"bakeoff", "bakeoff_serving", "pipeline", "retrain", "flows"}


def _name(requirement: str) -> str:
    """`ruamel.yaml==0.19.1` -> `ruamel-yaml` (PEP 503 normalised)."""
    return re.sub(r"[-_.]+", "-", re.split(r"[\s<>=!~;\[]", requirement, maxsplit=1)[0]).lower()


def declared() -> set[str]:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    return {_name(r) for r in project["dependencies"]}


def imported() -> set[str]:
    """The top-level modules imported anywhere under src/ and flows/ (inside functions too)."""
    found = set()
    for path in [*(REPO / "src").rglob("*.py"), *(REPO / "flows").rglob("*.py")]:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                found |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                found.add(node.module.split(".")[0])
    return found - set(sys.stdlib_module_names) - LOCAL


def undeclared(dependencies: set[str]) -> dict[str, list[str]]:
    """Imported module -> the distributions providing it, when none of them is declared."""
    providers = importlib.metadata.packages_distributions()
    out = {}
    for module in sorted(imported()):
        names = [_name(d) for d in providers.get(module, [])]
        if not set(names) & dependencies:
            out[module] = names
    return out


def test_every_imported_module_is_declared():
    assert undeclared(declared()) == {}


def test_a_module_that_arrives_only_transitively_is_reported():
    assert undeclared(declared() - {"h5py", "ruamel-yaml"}) == {
        "h5py": ["h5py"], "ruamel": ["ruamel-yaml"],
    }  # fmt: skip
