"""dvc.yaml is derived, not guessed: each stage lists exactly its code and its params.

For every stage of dvc.yaml this reads, from the source alone (AST):
- the stage module: the module whose function its `bakeoff <command>` calls (cli.py);
- its code: that module's import closure inside src/bakeoff, imports inside functions
  included (`import_graph.closure`);
- its params, key by key: what `wiring.params_kwargs` passes the stage. A single value
  (`params.seed`, `params.register.model_name`) is its own key; a section passed whole
  (`params.train`) is the fields the stage's code reads of it: attribute reads on every
  argument annotated with the section's class in the closure (and on the locals made from
  one by `for_backbone`/`replace`), all fields when one is stored or serialised whole
  (`dataclasses.asdict`). `train.overrides` is read per backbone (`for_backbone` keeps only
  its own entry): `train.overrides.${item.backbone}`. Settings that change no output
  (`sections.OUTPUT_NEUTRAL`) are no stage's params,

and checks that the stage's `deps` cover every file of the closure (a folder counts only
when every module in it is in the closure) and list no other source file, and that its
`params` are exactly those keys. So a code or params change re-runs exactly the stages it
affects.
"""

from __future__ import annotations

import ast
import copy
import dataclasses
import functools
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from bakeoff.config import params as config
from bakeoff.config.params import Params
from bakeoff.config.sections import OUTPUT_NEUTRAL
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


def _sections() -> dict[str, type | None]:
    """Params field -> its section's class (None: a plain value like `seed`)."""
    out = {}
    for field in dataclasses.fields(Params):
        section = vars(config).get(str(field.type))  # a section's annotation is its class name
        is_section = isinstance(section, type) and dataclasses.is_dataclass(section)
        out[field.name] = section if is_section else None
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


# Calls that read every field of a section they are given.
_WHOLE = {"asdict", "astuple", "vars"}
# Calls on a section that return one of its kind: their result is read like the section.
_DERIVING = {"for_backbone", "replace"}
PER_BACKBONE = "${item.backbone}"


def _properties(cls: type) -> dict[str, set[str]]:
    """A section's properties -> the fields they read (`TrainParams.seed` reads `seeds`),
    through the other properties they read (`RegisterParams.test_metric` reads `measure`,
    which reads `metric`)."""
    tree = ast.parse((import_graph.PACKAGE / "config" / "sections.py").read_text())
    [body] = [n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == cls.__name__]
    direct = {
        fn.name: {c[0] for node in ast.walk(fn) if (c := _chain(node, {"self"}))}
        for fn in body.body
        if isinstance(fn, ast.FunctionDef)
        and any(getattr(d, "id", None) == "property" for d in fn.decorator_list)
    }

    def fields_of(name: str, seen: frozenset[str] = frozenset()) -> set[str]:
        reads = direct[name]
        return {r for r in reads if r not in direct} | {
            f for r in reads if r in direct and r not in seen for f in fields_of(r, seen | {name})
        }

    return {name: fields_of(name) for name in direct}


def _call_name(call: ast.Call) -> str | None:
    return getattr(call.func, "attr", None) or getattr(call.func, "id", None)


def _section_vars(fn: ast.AST, cls: str) -> set[str]:
    """The names in `fn` that hold a `cls`: its arguments annotated so, and the locals
    made from one (`recipe = train.for_backbone(name)`)."""
    args = [*fn.args.posonlyargs, *fn.args.args, *fn.args.kwonlyargs]
    word = re.compile(rf"\b{cls}\b")
    names = {a.arg for a in args if a.annotation and word.search(ast.unparse(a.annotation))}
    for node in ast.walk(fn):
        if not (isinstance(node, ast.Assign) and isinstance(node.value, ast.Call)):
            continue
        call, target = node.value, node.targets[0]
        source = call.func.value if isinstance(call.func, ast.Attribute) else None
        if _call_name(call) == "replace" and call.args:
            source = call.args[0]
        if (_call_name(call) in _DERIVING and isinstance(source, ast.Name)
                and source.id in names and isinstance(target, ast.Name)):  # fmt: skip
            names.add(target.id)
    return names


@functools.cache
def section_reads(module: str, cls: type) -> frozenset[str]:
    """The fields of the section `cls` that `module`'s closure reads on a value of it."""
    fields = {f.name for f in dataclasses.fields(cls)}
    properties = _properties(cls)
    reads: set[str] = set()
    # bakeoff.config (the sections' own methods, the wiring) reads for every stage.
    for name in sorted(import_graph.closure(module)):
        if name.startswith("bakeoff.config."):
            continue
        tree = ast.parse(import_graph.modules()[name].read_text())
        for fn in ast.walk(tree):
            if not isinstance(fn, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            names = _section_vars(fn, cls.__name__)
            parents = {c: p for p in ast.walk(fn) for c in ast.iter_child_nodes(p)} if names else {}
            for node in ast.walk(fn) if names else ():
                if not (isinstance(node, ast.Name) and node.id in names):
                    continue
                if not isinstance(node.ctx, ast.Load):
                    continue
                parent = parents[node]
                if isinstance(parent, ast.Attribute):
                    attr = parent.attr
                    assert attr in fields | set(properties) | _DERIVING, (
                        f"{name}.{fn.name} reads {cls.__name__}.{attr}, which is no field"
                    )
                    reads |= {attr} & fields | properties.get(attr, set())
                    if attr == "for_backbone":
                        reads.add("overrides")
                    continue
                call = parents[parent] if isinstance(parent, ast.keyword) else parent
                if isinstance(call, ast.Call) and node is not call.func:
                    if _call_name(call) in _WHOLE:
                        reads |= fields
                    continue  # the callee reads it through an argument annotated `cls`
                reads |= fields  # stored, returned or compared whole: every field
    return frozenset(reads)


def params_keys(key: str, module: str) -> set[str]:
    """The params.yaml keys the stage `key` reads: what `wiring.params_kwargs` passes it,
    a section given whole narrowed to the fields `module`'s closure reads of it."""
    sections = _sections()
    keys: set[str] = set()
    for value in _stage_dicts(_functions(PATHS)["params_kwargs"])[key].values:
        assert not (isinstance(value, ast.Name) and value.id == "params"), (
            f"{key} gets all of params: pass it the keys it reads"
        )
        chain = _chain(value)
        assert chain, f"{key}: a params_kwargs value is not read from params: {ast.unparse(value)}"
        section = sections.get(chain[0], "unknown")
        assert section != "unknown", f"params.{chain[0]} is not a params.yaml key"
        if section is None or len(chain) > 1:
            keys.add(".".join(chain[:2]))
            continue
        for field in section_reads(module, section):
            keys.add(f"{chain[0]}.{field}" + (f".{PER_BACKBONE}" if field == "overrides" else ""))
    return keys - OUTPUT_NEUTRAL


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


def test_a_whole_section_an_output_neutral_key_or_another_stages_setting_is_reported(dvc):
    """Whole sections re-run a stage on keys it never reads; the outage window and the
    report's confidence change nothing that train or evaluate write."""
    broken = copy.deepcopy(dvc)
    broken["stages"]["train"]["params"].append("tracking.outage_timeout")
    broken["stages"]["evaluate"]["params"].append("report.confidence")
    broken["stages"]["validate"]["params"].append("validate.workers")
    listed = broken["stages"]["train"]["params"]
    listed.remove("train.overrides.${item.backbone}")
    listed.append("train.overrides")
    assert problems(broken) == [
        "validate: lists params key validate.workers, which bakeoff.data.validate.validate "
        "is not given",
        "train: missing params key train.overrides.${item.backbone} (read by "
        "bakeoff.train.stage.train)",
        "train: lists params key tracking.outage_timeout, which bakeoff.train.stage.train "
        "is not given",
        "train: lists params key train.overrides, which bakeoff.train.stage.train is not given",
        "evaluate: lists params key report.confidence, which bakeoff.evaluate.stage.evaluate "
        "is not given",
    ]


def test_section_reads_follow_the_code(tmp_path, monkeypatch):
    """A field read on an annotated argument, on a local made by `for_backbone`, or a whole
    section serialised: each is found, and nothing else."""
    from bakeoff.config.params import TrackingParams, TrainParams

    code = tmp_path / "fake.py"
    code.write_text(
        "import dataclasses\n"
        "def run(recipe: TrainParams, settings: TrackingParams | None, name: str):\n"
        "    one = recipe.for_backbone(name)\n"
        "    log(settings)\n"
        "    return recipe.epochs, one.seed, name\n"
        "def log(settings: TrackingParams):\n"
        "    return dataclasses.asdict(settings)\n"
    )
    monkeypatch.setattr(import_graph, "closure", lambda module: {"fake"})
    monkeypatch.setattr(import_graph, "modules", lambda: {"fake": code})
    reads = section_reads.__wrapped__
    assert reads("fake", TrainParams) == {"epochs", "overrides", "seeds"}
    assert reads("fake", TrackingParams) == {f.name for f in dataclasses.fields(TrackingParams)}
