"""The package's shape, read from the source: no import cycles, and no module imports a
stage (a stage is the top of its own pipeline step; only the CLI and the flows call it)."""

from __future__ import annotations

from tests.code import import_graph

# The modules whose function a `bakeoff <stage>` command calls (checked against cli.py in
# test_dvc_complete.py).
STAGES = {
    "bakeoff.data.ingest", "bakeoff.data.validate", "bakeoff.data.split",
    "bakeoff.train.stage", "bakeoff.evaluate.stage", "bakeoff.register.stage",
    "bakeoff.export.stage", "bakeoff.report.stage",
}  # fmt: skip
# Commands on top of the stages, not stages: `bakeoff init` runs validate's checks on the
# user's folder and fetches weights through train; no DVC stage depends on either.
COMMANDS = {"bakeoff.cli", "bakeoff.init_project"}


def test_no_import_cycles_even_through_imports_inside_functions():
    assert import_graph.cycles() == []


def test_no_module_imports_a_stage():
    """Shared code lives below the stages (e.g. `bakeoff.model.inference`), so a change to one
    stage's module never re-runs another stage."""
    offenders = {
        name: sorted(import_graph.imports_of(name) & STAGES)
        for name in import_graph.modules()
        if name not in COMMANDS and import_graph.imports_of(name) & STAGES
    }
    assert offenders == {}


def test_the_cycle_check_finds_a_cycle_hidden_in_a_function(monkeypatch):
    """The check itself can fail: a function-level import back into a module's importer."""
    real = import_graph.imports_of
    monkeypatch.setattr(
        import_graph,
        "imports_of",
        lambda name: (
            real(name) | {"bakeoff.data.pixels"} if name == "bakeoff.data.dataset" else real(name)
        ),
    )
    assert ["bakeoff.data.dataset", "bakeoff.data.pixels"] in import_graph.cycles()


# Evaluate's cross-validation refits the recipe's head on the cached features through the
# shared `bakeoff.backbone` and `bakeoff.head` packages, never through train's modules.
USES_TRAIN = COMMANDS


def test_nothing_outside_train_imports_the_train_package():
    """What train shares with other stages lives below it (`bakeoff.backbone`, `bakeoff.head`,
    `bakeoff.model`): evaluate, register, export, report and tracking never reach into it."""
    offenders = {
        name: sorted(m for m in import_graph.imports_of(name) if m.startswith("bakeoff.train"))
        for name in import_graph.modules()
        if not name.startswith("bakeoff.train") and name not in USES_TRAIN
    }
    assert {k: v for k, v in offenders.items() if v} == {}


def test_no_test_module_imports_another():
    """Shared fixtures live in helper modules (`tests/model/tiny_hub.py`, ...): importing a
    test module would collect its tests twice and tie one file's edits to another's."""
    import ast
    from pathlib import Path

    tests = Path(__file__).resolve().parents[1]
    offenders = []
    for path in tests.rglob("test_*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            names += [a.name for a in node.names] if isinstance(node, ast.Import) else []
            offenders += [
                f"{path.name}: {n}" for n in names if n.split(".")[-1].startswith("test_")
            ]
    assert offenders == []
