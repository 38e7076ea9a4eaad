"""The package's import rules (docs/architecture.md): core <- shared <- branches, no branch imports another,
no import cycle, figures drawn only in plots/. Read from the source (every import, lazy ones included)."""

from __future__ import annotations

import ast
import graphlib
import re
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src"

CORE = {"featflow", "config", "store", "repro", "keys", "schemas", "smk", "summary", "targets", "idx", "seeds"}
SHARED = {"data", "models", "metrics", "activations", "plots", "names", "dictionary"}
BRANCHES = {"complexity": {"complexity", "temporal"}, "fv": {"fv", "ifv"}, "frequency": {"frequency"}}
BRANCHES["theory"] = {"theory"}
TOP = {"claims"}  # reads every branch's files (never their code): imports core and shared only, imported by none


def modules() -> dict[str, Path]:
    """Dotted name -> file of every module in src/featflow."""
    found = {}
    for path in (SRC / "featflow").rglob("*.py"):
        parts = path.relative_to(SRC).with_suffix("").parts
        found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def import_graph() -> dict[str, set[str]]:
    """Module -> the featflow modules it imports (``from featflow.x import y`` counts y when y is a module)."""
    mods = modules()
    graph: dict[str, set[str]] = {name: set() for name in mods}
    for name, path in mods.items():
        for node in ast.walk(ast.parse(path.read_text())):
            targets = []
            if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "featflow":
                targets = [
                    f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in mods else node.module for a in node.names
                ]
            elif isinstance(node, ast.Import):
                targets = [a.name for a in node.names if a.name.split(".")[0] == "featflow"]
            graph[name].update(t for t in targets if t != name and t in mods)
    return graph


def unit(module: str) -> str:
    """The top-level part of featflow a module belongs to (``featflow`` for the package itself)."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "featflow"


def allowed(src: str, dst: str) -> bool:
    """May a module of unit ``src`` import one of unit ``dst``?"""
    if dst in CORE:
        return True
    if src in TOP:
        return dst in SHARED or dst in TOP
    if src in CORE or dst in TOP:
        return False
    if src in SHARED:
        return dst in SHARED and not (src == "plots" and dst not in {"plots", "metrics"})
    group = next(g for g in BRANCHES.values() if src in g)
    return dst in SHARED or dst in group


def test_every_unit_has_a_layer():
    units = {unit(m) for m in modules()}
    assert units <= CORE | SHARED | TOP | set().union(*BRANCHES.values()), units - CORE - SHARED - TOP


def test_no_module_imports_across_layers_or_branches():
    bad = sorted(f"{a} -> {b}" for a, bs in import_graph().items() for b in bs if not allowed(unit(a), unit(b)))
    assert not bad, "import rules of docs/architecture.md broken:\n" + "\n".join(bad)


def test_no_import_cycle():
    try:
        tuple(graphlib.TopologicalSorter(import_graph()).static_order())
    except graphlib.CycleError as err:
        pytest.fail(f"import cycle: {' -> '.join(err.args[1])}")


def test_figures_are_drawn_only_in_plots():
    drawing = sorted(
        name
        for name, path in modules().items()
        if "matplotlib" in path.read_text() and unit(name) != "plots" and name != "featflow.store"
    )
    assert not drawing, f"matplotlib outside plots/ (and store's atomic save_figure): {drawing}"


def test_the_rules_catch_what_they_forbid():
    """The checker itself: the old violations (train -> frequency.attacks, data -> theory, plots -> ifv) fail."""
    assert not allowed("models", "frequency")
    assert not allowed("data", "theory")
    assert not allowed("plots", "ifv")
    assert not allowed("fv", "complexity") and allowed("fv", "dictionary")
    assert allowed("ifv", "fv") and allowed("complexity", "dictionary") and allowed("theory", "data")
    assert not allowed("claims", "complexity") and not allowed("complexity", "claims") and allowed("claims", "metrics")


SCRIPTS = SRC.parent / "workflow" / "scripts"
SCRIPT = re.compile(
    r'^"""Rule (?P<rule>\w+): [^\n]+(\n[^\n]+)*"""\n\nfrom featflow import smk\nfrom (?P<module>featflow(\.\w+)*) '
    r"import (?P<fn>\w+)\n\nsmk\.run\(snakemake, (?P=fn)\)  # noqa: F821 \(injected by Snakemake\)\n$"
)


def test_every_rule_script_runs_one_stage_of_the_one_shape():
    """The stage contract (docs/architecture.md): a rule script is ``smk.run(snakemake, <stage>)`` and nothing
    else; the stage is the function named as the rule in its branch's ``stage.py`` (or ``featflow.summary``),
    with the parameters ``(spec, inputs, outputs, ctx)``."""
    import importlib
    import inspect

    for script in sorted(SCRIPTS.glob("*.py")):
        found = SCRIPT.match(script.read_text())
        assert found, f"{script.name}: not the two-line stage script"
        assert found["rule"] == found["fn"] == script.stem, script.name
        assert found["module"].endswith(".stage") or found["module"] == "featflow.summary", script.name
        stage = getattr(importlib.import_module(found["module"]), found["fn"])
        assert list(inspect.signature(stage).parameters) == ["spec", "inputs", "outputs", "ctx"], script.name
