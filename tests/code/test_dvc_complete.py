"""dvc.yaml is derived, not guessed: each stage lists exactly its code and its params.

For every stage of dvc.yaml this reads, from the source alone (AST):
- the stage module: the module whose function its `bakeoff <command>` calls (cli.py);
- its code: that module's import closure inside src/bakeoff, imports inside functions
  included (`import_graph.closure`);
- its params: the keys `paths.params_kwargs` passes the stage (`params.register.model_name`
  is `register.model_name`, `params.tracking` the whole `tracking` section), plus the shared
  settings copied into a section it gets whole (`params_shared.SHARED`: `seed`, ...),

and checks that the stage's `deps` cover every file of the closure (a folder counts only
when every module in it is in the closure) and list no other source file, and that its
`params` are exactly those keys. So a code or params change re-runs exactly the stages it
affects.
"""

from __future__ import annotations

import ast
import copy
import dataclasses
from pathlib import Path
from typing import Any

import pytest
import yaml

from bakeoff.config import params as config
from bakeoff.config.params import Params
from bakeoff.config.shared import SHARED
from tests.code import import_graph
from tests.conftest import REPO

CLI = import_graph.PACKAGE / "cli.py"
PATHS = import_graph.PACKAGE / "config" / "wiring.py"
SOURCE = "src/bakeoff"


def _command(stage: dict[str, Any]) -> str:
    """`bakeoff train ${item.backbone}` -> `train`."""
    words = stage["cmd"].split()
    assert words[0] == "bakeoff", stage["cmd"]
    return words[1]


def _functions(path: Path) -> dict[str, ast.FunctionDef]:
    tree = ast.parse(path.read_text())
    return {node.name: node for node in tree.body if isinstance(node, ast.FunctionDef)}


def stage_module(command: str) -> tuple[str, str, str]:
    """(module, function, stage_kwargs key) a CLI command calls, from cli.py's AST."""
    function = _functions(CLI)[command]
    imports = [
        (node.module, alias.name)
        for node in ast.walk(function)
        if isinstance(node, ast.ImportFrom) and node.module
        for alias in node.names
        if alias.asname == "run"
    ]
    keys = [
        node.args[0].value
        for node in ast.walk(function)
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "_stage"
    ]
    assert len(imports) == 1 and len(keys) == 1, f"cli.{command}: one stage call expected"
    return imports[0][0], imports[0][1], keys[0]


def _chain(node: ast.AST, roots: set[str] | None = None) -> list[str] | None:
    """`params.register.model_name` -> ["register", "model_name"]; None if not on params."""
    names = []
    while isinstance(node, ast.Attribute):
        names.append(node.attr)
        node = node.value
    on_root = isinstance(node, ast.Name) and node.id in (roots if roots is not None else {"params"})
    return names[::-1] if on_root and names else None


def _section_fields() -> dict[str, set[str] | None]:
    """Params field -> the fields of its section (None: a plain value like `backbones`)."""
    out = {}
    for field in dataclasses.fields(Params):
        section = vars(config).get(str(field.type))  # a section's annotation is its class name
        is_section = isinstance(section, type) and dataclasses.is_dataclass(section)
        out[field.name] = {f.name for f in dataclasses.fields(section)} if is_section else None
    return out


def _stage_dicts(function: ast.FunctionDef) -> dict[str, ast.Dict]:
    """The dict literal `params_kwargs` builds for each stage."""
    found: dict[str, ast.Dict] = {}
    for node in ast.walk(function):
        if isinstance(node, ast.Dict):
            for key, value in zip(node.keys, node.values, strict=True):
                if isinstance(key, ast.Constant) and isinstance(value, ast.Dict):
                    found[key.value] = value
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Dict):
            target = node.targets[0]
            if isinstance(target, ast.Subscript) and isinstance(target.slice, ast.Constant):
                found[target.slice.value] = node.value
    return found


# Params methods that read a section: `params.for_backbone(b)` reads `train`.
_METHODS = {"for_backbone": "train"}


def _key(chain: list[str], fields: dict[str, set[str] | None]) -> str:
    section = _METHODS.get(chain[0], chain[0])
    assert section in fields, f"params.{section} is not a params.yaml section"
    inner = fields[section]
    return f"{section}.{chain[1]}" if inner and len(chain) > 1 and chain[1] in inner else section


def _whole_params_chains(module: str) -> list[list[str]]:
    """Attribute chains on every argument annotated `Params` in the stage's closure: what a
    stage given all of params.yaml reads (evaluate: its cross-validation reads train, tune,
    seed, bootstrap and report.confidence besides its own section)."""
    chains = []
    # bakeoff.config.wiring hands each stage its part of params (`params_kwargs`): it reads for
    # all stages, not for this one.
    for name in import_graph.closure(module) - {"bakeoff.config.wiring"}:
        tree = ast.parse(import_graph.modules()[name].read_text())
        for fn in ast.walk(tree):
            if not isinstance(fn, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            args = [*fn.args.args, *fn.args.kwonlyargs]
            names = {a.arg for a in args if a.annotation is not None
                     and ast.unparse(a.annotation) == "Params"}  # fmt: skip
            for node in ast.walk(fn) if names else ():
                chain = _chain(node, names)
                if chain:
                    chains.append(chain)
    return chains


def params_keys(key: str, module: str | None = None) -> set[str]:
    """The params.yaml keys `paths.params_kwargs` passes the stage `key` (all of params:
    the keys its closure reads, `module` being the stage module)."""
    fields = _section_fields()
    keys = set()
    for value in _stage_dicts(_functions(PATHS)["params_kwargs"])[key].values:
        if isinstance(value, ast.Name) and value.id == "params":  # all of params
            assert module, f"{key} gets all params: name its stage module"
            keys |= {_key(chain, fields) for chain in _whole_params_chains(module)}
        for node in ast.walk(value):
            chain = _chain(node)
            if chain:
                keys.add(_key(chain, fields))
    # `params.register.model_name` also walks `params.register`: keep the most specific.
    keys = {k for k in keys if not any(o.startswith(k + ".") for o in keys)}
    # A whole section also holds the shared settings copied into it (`params_shared`).
    return keys | {source for source, targets in SHARED.items() if set(targets) & keys}


def code_files(module: str) -> set[str]:
    """The source files (repo-relative) that run when `module` runs; empty __init__s left out."""
    files = set()
    for name in import_graph.closure(module):
        path = import_graph.modules()[name]
        if not import_graph.is_trivial(path):
            files.add(path.relative_to(REPO).as_posix())
    return files


def _folder_files(folder: str) -> set[str]:
    return {
        p.relative_to(REPO).as_posix()
        for p in (REPO / folder).rglob("*.py")
        if not import_graph.is_trivial(p)
    }


def problems(dvc: dict[str, Any]) -> list[str]:
    """What dvc.yaml gets wrong about each stage's code and params (empty: nothing)."""
    found = []
    for name, stage in dvc["stages"].items():
        stage = stage.get("do", stage)
        module, function, key = stage_module(_command(stage))
        needed = code_files(module)
        listed = [d for d in stage.get("deps", []) if str(d).startswith(SOURCE)]
        covered: set[str] = set()
        for dep in listed:
            if dep.endswith(".py"):
                if dep not in needed:
                    found.append(f"{name}: lists {dep}, which {module} does not import")
                covered.add(dep)
            else:
                extra = _folder_files(dep) - needed
                if extra:
                    found.append(f"{name}: lists folder {dep}, but {module} does not import "
                                 f"{', '.join(sorted(extra))}: list the files instead")  # fmt: skip
                covered |= _folder_files(dep)
        for missing in sorted(needed - covered):
            found.append(f"{name}: missing dep {missing} (imported by {module})")
        keys = params_keys(key, module)
        listed_params = {str(p) for p in stage.get("params", [])}
        for missing in sorted(keys - listed_params):
            found.append(f"{name}: missing params key {missing} (read by {module}.{function})")
        for extra in sorted(listed_params - keys):
            found.append(
                f"{name}: lists params key {extra}, which {module}.{function} is not given"
            )
    return found


@pytest.fixture(scope="module")
def dvc() -> dict[str, Any]:
    return yaml.safe_load((REPO / "dvc.yaml").read_text())


def test_dvc_yaml_lists_exactly_each_stages_code_and_params(dvc):
    assert problems(dvc) == []


def test_removing_a_dep_is_reported(dvc):
    """The check fails when dvc.yaml forgets code: evaluate without the shared statistics."""
    broken = copy.deepcopy(dvc)
    deps = broken["stages"]["evaluate"]["deps"]
    deps.remove("src/bakeoff/compare.py")
    assert problems(broken) == [
        "evaluate: missing dep src/bakeoff/compare.py (imported by bakeoff.evaluate.stage)"
    ]


def test_removing_a_params_key_or_listing_an_unread_one_is_reported(dvc):
    broken = copy.deepcopy(dvc)
    broken["stages"]["export"]["params"].remove("register.model_name")
    broken["stages"]["split"]["params"].append("train")
    assert problems(broken) == [
        "split: lists params key train, which bakeoff.data.split.split is not given",
        "export: missing params key register.model_name (read by bakeoff.export.stage.export)",
    ]


def test_a_folder_dep_must_be_wholly_imported(dvc):
    """`src/bakeoff/train` for evaluate would re-run it on every training-code change."""
    broken = copy.deepcopy(dvc)
    broken["stages"]["report"]["deps"].append("src/bakeoff/train")
    [problem] = problems(broken)
    assert problem.startswith("report: lists folder src/bakeoff/train, but bakeoff.report.stage")
