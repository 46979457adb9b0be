"""bakeoff's own import graph, read from the source (AST), for the structure tests.

Every `import` counts wherever it is (module level or inside a function: a function-level
import runs as soon as the function does), except under `if TYPE_CHECKING:`, which never
runs. Only imports of `bakeoff` modules are edges.
"""

from __future__ import annotations

import ast
from functools import cache
from pathlib import Path

from tests.conftest import REPO

SRC = REPO / "src"
PACKAGE = SRC / "bakeoff"


def module_name(path: Path) -> str:
    """`src/bakeoff/data/pixels.py` -> `bakeoff.data.pixels` (a package is its __init__)."""
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


@cache
def modules() -> dict[str, Path]:
    """Every module of the package: dotted name -> file."""
    return {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _import_nodes(tree: ast.AST) -> list[ast.Import | ast.ImportFrom]:
    found: list[ast.Import | ast.ImportFrom] = []

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import | ast.ImportFrom):
            found.append(node)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return found


@cache
def imports_of(name: str) -> frozenset[str]:
    """The bakeoff modules `name` imports (module level and inside functions)."""
    known = modules()
    path = known[name]
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    targets: set[str] = set()
    for node in _import_nodes(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets.update(a.name for a in node.names if a.name in known)
            continue
        base = node.module or ""
        if node.level:  # relative: from the package of this module
            anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
            base = ".".join([*anchor, *([base] if base else [])])
        for alias in node.names:
            sub = f"{base}.{alias.name}"
            if sub in known:  # `from bakeoff import tracking`: the submodule
                targets.add(sub)
            elif base in known:
                targets.add(base)
    targets.discard(name)
    return frozenset(targets)


def parents(name: str) -> list[str]:
    """The packages whose __init__ runs before `name` (bakeoff, bakeoff.data, ...)."""
    parts = name.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts))]


def closure(start: str) -> set[str]:
    """Every bakeoff module that runs when `start` and everything it imports run."""
    seen: set[str] = set()
    todo = [start]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        todo.extend(imports_of(name))
        todo.extend(parents(name))
    return seen


def cycles() -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def connect(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in imports_of(v):
            if w not in index:
                connect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for name in modules():
        if name not in index:
            connect(name)
    return found


def is_trivial(path: Path) -> bool:
    """A file with nothing but a docstring and constants (an empty package __init__)."""
    tree = ast.parse(path.read_text())
    return all(
        isinstance(node, ast.Expr | ast.Assign) and not _import_nodes(node) for node in tree.body
    )
