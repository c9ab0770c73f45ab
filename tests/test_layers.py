"""The package's architecture, enforced: a layer order with no import cycles, each layer importing only
layers below it, and modules small enough to read.

Imports are read statically (:mod:`affsr.codebase`), function-local ones included: a lazy import is a
dependency too, only a deferred one. Data flows params → data → checkpoints → metrics → figures, and
no module imports from a later stage.
"""

from __future__ import annotations

import statistics
from pathlib import Path

import pytest

from affsr.codebase import import_graph, module_files

PACKAGE = Path(__file__).resolve().parents[1] / "affsr"
GRAPH = import_graph(PACKAGE)

#: Bottom to top. A module may import modules of its own layer or of lower ones, never higher ones.
#: Prefixes match a module and its submodules ("affsr.methods" covers every objective).
LAYERS: list[tuple[str, ...]] = [
    ("affsr.errors", "affsr.parse", "affsr.names", "affsr.files", "affsr.optim", "affsr.codebase"),
    ("affsr.data_settings",),
    ("affsr.config",),
    ("affsr.kernels", "affsr.boundary", "affsr.operators", "affsr.gram", "affsr.box_interior",
     "affsr.box_projection", "affsr.box_layer", "affsr.density",
     "affsr.methods", "affsr.tables"),
    ("affsr.nets", "affsr.accelerate", "affsr.metrics", "affsr.perception", "affsr.splits", "affsr.images",
     "affsr.image_archives", "affsr.image_sets", "affsr.sources", "affsr.download", "affsr.mirrors"),
    ("affsr.patches", "affsr.prepared", "affsr.data"),
    ("affsr.params", "affsr.build", "affsr.provenance"),
    ("affsr.checkpoint",),
    ("affsr.train",),
    ("affsr.evaluate", "affsr.upscale", "affsr.toy"),
    ("affsr.claims", "affsr.plots", "affsr.readme"),
    ("affsr.cli", "affsr.__main__"),
]


def layer_of(module: str) -> int:
    if module == "affsr":
        return 0  # the package's own __init__ imports nothing of affsr
    found = [i for i, layer in enumerate(LAYERS) for prefix in layer
             if module == prefix or module.startswith(prefix + ".")]
    if not found:
        raise AssertionError(f"{module} has no layer: add it to LAYERS in tests/test_layers.py")
    return max(found)


def test_every_module_has_a_layer():
    for module in GRAPH:
        layer_of(module)


def test_no_module_imports_a_higher_layer():
    upward = [f"{m} (layer {layer_of(m)}) imports {d} (layer {layer_of(d)})"
              for m, deps in sorted(GRAPH.items()) for d in sorted(deps) if layer_of(d) > layer_of(m)]
    assert not upward, "\n".join(upward)


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every strongly connected component of more than one module (Tarjan), plus self-imports."""
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


def test_the_import_graph_has_no_cycles():
    # a package importing its own submodules (affsr.toy → affsr.toy.study) is not a cycle unless back
    graph = {m: {d for d in deps if d != m} for m, deps in GRAPH.items()}
    assert _cycles(graph) == []


def test_the_cycle_finder_finds_cycles():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


@pytest.mark.parametrize("module, forbidden", [
    ("affsr.config", "affsr.methods"),  # the bottom layer: settings, no behaviour
    ("affsr.config", "affsr.sources"),
    ("affsr.config", "affsr.toy"),
    ("affsr.evaluate", "affsr.train"),  # loading a checkpoint needs no training loop
    ("affsr.upscale", "affsr.train"),
    ("affsr.cli", "affsr.train.fit"),
])
def test_named_contracts(module, forbidden):
    deps = {d for m, ds in GRAPH.items() if m == module or m.startswith(module + ".") for d in ds}
    assert not any(d == forbidden or d.startswith(forbidden + ".") for d in deps)


def test_objectives_do_no_file_io():
    """Methods compute; the workflow passes paths, the CLI loads (style.md)."""
    io = ("affsr.files", "affsr.checkpoint", "affsr.data", "affsr.prepared", "affsr.download", "affsr.mirrors")
    for module, deps in GRAPH.items():
        if module.startswith("affsr.methods"):
            assert not deps & set(io), f"{module} imports {deps & set(io)}"


def test_module_sizes():
    """No module over 400 lines; the median at most 250 (files mostly 100–300 lines, style.md)."""
    lengths = {name: len(path.read_text().splitlines()) for name, path in module_files(PACKAGE).items()}
    too_long = {name: n for name, n in lengths.items() if n > 400}
    assert not too_long, too_long
    assert statistics.median(lengths.values()) <= 250
