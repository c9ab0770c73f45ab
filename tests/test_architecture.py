"""The package's architecture, enforced: subpackages in one layer order with no import cycles, each
importing only packages below it; at the top only what spans them; every import naming the module that
defines a name.

Imports are read statically (:mod:`affsr.code_graph`), function-local ones included: a lazy import is a
dependency too, only a deferred one. Data flows params → data → checkpoints → metrics → figures, and no
package imports from a later stage.
"""

from __future__ import annotations

import ast
import pkgutil
import statistics
from pathlib import Path

import pytest

from affsr.code_graph import import_graph, module_files

PACKAGE = Path(__file__).resolve().parents[1] / "affsr"
GRAPH = import_graph(PACKAGE, dynamic=False)
FILES = module_files(PACKAGE)

#: Bottom to top, by package (a top-level module is its own unit). A unit may import units of its own
#: layer or of lower ones, never higher ones.
LAYERS: list[tuple[str, ...]] = [
    ("affsr", "affsr.errors", "affsr.atomic_files", "affsr.lazy_exports", "affsr.code_graph"),
    ("affsr.config",),  # settings: no behaviour
    ("affsr.operators",),  # A, A⁺, the projections: pure tensor maths
    ("affsr.data",),  # sources, downloads, splits, prepared sets
    ("affsr.nets",),
    ("affsr.methods",),  # one objective per file
    ("affsr.training",),  # the one loop, checkpoints
    ("affsr.evaluation", "affsr.toy"),  # metrics of trained runs; the 2-D study
    ("affsr.report",),  # tables, claims, README blocks, figures
    ("affsr.params",),  # spans the packages
    ("affsr.upscaling",),  # users' own images: the model, the operators, the files
    ("affsr.cli", "affsr.__main__"),
]
#: What stands at the top of affsr/: only what spans the subpackages.
TOP_LEVEL = {"__init__", "__main__", "cli", "params", "errors", "atomic_files", "lazy_exports",
             "code_graph"}


def unit(module: str) -> str:
    """The package (affsr.<package>) or top-level module a module belongs to."""
    return ".".join(module.split(".")[:2])


def layer_of(module: str) -> int:
    found = [i for i, layer in enumerate(LAYERS) if unit(module) in layer]
    if not found:
        raise AssertionError(f"{module} has no layer: add its package to LAYERS in tests/test_architecture.py")
    return found[0]


def test_every_module_has_a_layer():
    for module in GRAPH:
        layer_of(module)


def test_no_package_imports_a_higher_layer():
    upward = [f"{m} (layer {layer_of(m)}) imports {d} (layer {layer_of(d)})"
              for m, deps in sorted(GRAPH.items()) for d in sorted(deps) if layer_of(d) > layer_of(m)]
    assert not upward, "\n".join(upward)


def test_the_top_level_holds_only_what_spans_the_packages():
    top = {path.stem for path in PACKAGE.glob("*.py")}
    assert top == TOP_LEVEL, f"new top-level modules {sorted(top - TOP_LEVEL)}: put them in the package of their job"


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every strongly connected component of more than one node (Tarjan), plus self-imports."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in graph.get(node, ()):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1 or node in graph.get(node, ()):
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_no_import_cycles_between_modules_or_packages():
    modules = {m: {d for d in deps if d != m} for m, deps in GRAPH.items()}
    assert _cycles(modules) == []
    packages: dict[str, set[str]] = {}
    for m, deps in GRAPH.items():
        packages.setdefault(unit(m), set()).update(unit(d) for d in deps if unit(d) != unit(m))
    assert _cycles(packages) == []


def test_the_cycle_finder_finds_cycles():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def _export_tables() -> dict[str, dict[str, str]]:
    """package → {public name: module} of every lazily exporting ``__init__``."""
    tables = {}
    for name, path in FILES.items():
        if path.name == "__init__.py":
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "exports":
                    tables[name] = ast.literal_eval(node.args[1])
    return tables


def test_every_package_hands_on_its_names_and_they_resolve():
    """``from affsr.<package> import Name`` works for every name a package lists, to the object its
    module defines; no listed name is also a module of the package (which one an import returns would
    depend on what was imported before)."""
    import importlib

    tables = _export_tables()
    packages = {unit(m) for m in GRAPH if unit(m).count(".") == 1 and (PACKAGE / unit(m).split(".")[1]).is_dir()}
    assert packages - {"affsr.methods"} <= set(tables)  # methods: objectives found by name
    for package, table in tables.items():
        submodules = {m.name for m in pkgutil.iter_modules([str(FILES[package].parent)])}
        assert not set(table) & submodules, f"{package} hands on {set(table) & submodules}, also module names"
        loaded = importlib.import_module(package)
        for name, module in table.items():
            assert getattr(loaded, name) is getattr(importlib.import_module(f"{package}.{module}"), name)


def test_inside_affsr_imports_name_the_defining_module():
    """The package names are for users; inside affsr an import names the module that defines the name
    (or a submodule), so the import graph is exact and no ``__init__`` runs code on the way."""
    tables = _export_tables()
    through = []
    for name, path in FILES.items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module in tables:
                through += [f"{name}: from {node.module} import {a.name}" for a in node.names
                            if a.name in tables[node.module]]
    assert not through, "\n".join(through)


@pytest.mark.parametrize("package, forbidden", [
    ("affsr.config", "affsr."),  # the bottom: settings import nothing of affsr but the parser and errors
    ("affsr.operators", "affsr.data"),  # pure maths: no files
    ("affsr.evaluation", "affsr.training.loop"),  # loading a checkpoint needs no training loop
    ("affsr.upscaling", "affsr.training.loop"),
    ("affsr.methods", "affsr.training"),  # objectives know no loop
])
def test_named_contracts(package, forbidden):
    allowed = {"affsr.errors", "affsr.lazy_exports"}
    deps = {d for m, ds in GRAPH.items() if unit(m) == package for d in ds}
    bad = {d for d in deps if d.startswith(forbidden) and unit(d) != package and d not in allowed}
    assert not bad, f"{package} imports {sorted(bad)}"


def test_objectives_do_no_file_io():
    """Methods compute; the workflow passes paths, the CLI loads (style.md)."""
    io = ("affsr.atomic_files", "affsr.training.checkpoint", "affsr.data")
    for module, deps in GRAPH.items():
        if module.startswith("affsr.methods"):
            bad = {d for d in deps if d.startswith(io)}
            assert not bad, f"{module} imports {bad}"


def test_modules_are_mostly_small():
    """Files mostly 100–300 lines (style.md): the median at most 250. No hard cap: a file is split when it
    does two jobs, never to get under a number."""
    lengths = [len(path.read_text().splitlines()) for path in FILES.values() if path.name != "__init__.py"]
    assert statistics.median(lengths) <= 250
