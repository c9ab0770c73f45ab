"""Which source files of a package a piece of code runs: a static import graph, for the workflow.

Snakemake reruns a rule when one of its input files changes. Its own ``code`` trigger sees only the
rule's shell text, not the ``affsr`` modules the shell command runs, so each rule declares those module
files as inputs — derived here from the imports in the files, never listed by hand: a module split,
renamed or added is picked up the next time the workflow is parsed.

The graph is read with :mod:`ast` from the files as they are (nothing is imported, so a module that
does not import cleanly still has its edges). Every ``import`` / ``from ... import`` anywhere in a file
counts — at module level, inside functions (lazy imports), under ``if``/``try`` — so the graph
over-approximates what one call runs: an extra rerun costs time, a missed one gives stale results.

Dynamic imports (``importlib.import_module(...)``, ``__import__(...)``) cannot be followed by name
unless the name is a literal string. Otherwise the module is taken to import **every module of its own
folder** (its package; for an ``__init__.py``, that package's modules): ``affsr/methods/__init__.py``
finds an objective by name in its folder, so the closure of ``affsr.methods`` holds every file of
``affsr/methods/``: whatever imports the methods package depends on a new objective file by itself.
A caller that knows which modules are loaded by name (the workflow knows each run's objective) reads
the graph with ``dynamic=False`` and adds them itself.

Lazy exports (:mod:`affsr.lazy_exports`): a package ``__init__`` that calls ``exports(__name__, {...})``
with a literal table hands each public name on from one of its modules, imported on first use. So
``from affsr.operators import Downsampling`` is an edge to ``affsr.operators.downsampling`` alone, the
``__init__`` itself imports nothing, and the module that defines ``exports`` (whose import is computed
from the table) adds no folder-wide edges.

Only the standard library is used and nothing of the analysed package is imported, so this module works
while the package is half-refactored.
"""

from __future__ import annotations

import ast
import difflib
from pathlib import Path

__all__ = ["closure", "function_imports", "import_graph", "module_files", "source_files"]

_DYNAMIC_IMPORTERS = {"import_module", "__import__"}


def module_files(package_dir: Path) -> dict[str, Path]:
    """Module name → file of every ``.py`` file under ``package_dir``.

    ``package_dir`` is the package's folder (its name is the top-level package name):
    ``affsr/training/loop.py`` → ``affsr.training``, ``affsr/methods/__init__.py`` → ``affsr.methods``.
    Caches (``__pycache__``) and hidden folders are skipped.
    """
    package_dir = Path(package_dir)
    modules = {}
    for path in sorted(package_dir.rglob("*.py")):
        rel = path.relative_to(package_dir)
        if any(part == "__pycache__" or part.startswith(".") for part in rel.parts[:-1]):
            continue
        parts = [package_dir.name, *rel.parts[:-1]]
        if path.stem != "__init__":
            parts.append(path.stem)
        modules[".".join(parts)] = path
    return modules


def _is_package(path: Path) -> bool:
    return path.name == "__init__.py"


def _walk(tree: ast.AST, lazy: bool):
    """Every node of ``tree``; without ``lazy``, none inside a function body (not run on import)."""
    todo = [tree]
    while todo:
        node = todo.pop()
        yield node
        if lazy or not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            todo.extend(ast.iter_child_nodes(node))


def _export_tables(files: dict[str, Path]) -> tuple[dict[str, dict[str, str]], set[str]]:
    """(package → {public name → module}, the modules that resolve those tables) of every ``__init__``
    that calls ``exports(__name__, {literal table})`` (see the module docstring)."""
    tables: dict[str, dict[str, str]] = {}
    resolvers: set[str] = set()
    for name, path in files.items():
        if not _is_package(path):
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            if (isinstance(node, ast.Call) and getattr(node.func, "id", None) == "exports" and len(node.args) == 2
                    and isinstance(node.args[1], ast.Dict)):
                table = ast.literal_eval(node.args[1])
                tables[name] = {public: f"{name}.{module}" for public, module in table.items()}
            elif isinstance(node, ast.ImportFrom) and any(alias.name == "exports" for alias in node.names):
                resolvers.add(node.module or "")
    return tables, resolvers


def _imports(tree: ast.AST, name: str, is_package: bool, known: set[str], lazy: bool,
             dynamic: bool = True, exports: dict[str, dict[str, str]] | None = None) -> set[str]:
    """The modules of ``known`` that the parsed module ``name`` imports (see the module docstring);
    ``exports``: the packages' lazy export tables (:func:`_export_tables`)."""
    package = name if is_package else name.rpartition(".")[0]
    exports = exports or {}
    found: set[str] = set()

    def add(target: str) -> None:
        # a name that is not a module (a function) is dropped; parent packages come with closure()
        if target in known:
            found.add(target)

    for node in _walk(tree, lazy):
        if isinstance(node, ast.Import):
            for alias in node.names:
                add(alias.name)
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: `from . import x` (level 1), `from ..data import y` (level 2)
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module or ""
            add(source)
            for alias in node.names:  # `from affsr import plots`: the submodule affsr.report.plots
                add(f"{source}.{alias.name}")
                add(exports.get(source, {}).get(alias.name, ""))  # a lazily exported name: its module
        elif isinstance(node, ast.Call):
            func = node.func
            called = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
            if called in _DYNAMIC_IMPORTERS:
                arg = node.args[0] if node.args else None
                if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                    add(arg.value)
                elif dynamic:  # a computed name: any module of this module's own folder
                    found.update(m for m in known if m.rpartition(".")[0] == package and m != name)
    return found


def import_graph(package_dir: Path, *, lazy: bool = True, dynamic: bool = True) -> dict[str, set[str]]:
    """Module name → the modules of the same package it imports, read statically from every file.

    Absolute and relative imports, imports inside functions, ``from pkg import submodule`` (the
    submodule), and dynamic imports (every module of the importer's folder, see the module docstring)
    are edges; imports of other packages are dropped. With ``lazy=False`` only the imports that run
    when the module itself is imported count (none inside a function body): what a command line that
    imports each verb's module inside the verb loads before any verb runs. With ``dynamic=False`` an
    import of a computed name adds no edge, for a caller that names the dynamically loaded modules
    itself (the workflow: the objective of each run). A file with a syntax error raises SyntaxError
    naming it.
    """
    files = module_files(package_dir)
    known = set(files)
    exports, resolvers = _export_tables(files)
    graph = {}
    for name, path in files.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        graph[name] = _imports(tree, name, _is_package(path), known, lazy, dynamic and name not in resolvers,
                               exports) - {name}
    return graph


def function_imports(package_dir: Path, module: str, function: str) -> set[str]:
    """The package modules a call of ``module.function`` imports inside functions: the imports in its
    body and in the bodies of the module's other top-level functions it calls by name (its helpers, at
    any depth). With ``import_graph(package_dir, lazy=False)[module]`` (what importing the module runs)
    that is everything the call imports itself; :func:`closure` adds what those modules import.

    For a command line that imports each verb's implementation inside the verb (``affsr.cli``:
    ``cmd_train`` imports ``affsr.training``), this names the verb's modules without a hand-kept table.
    Raises KeyError naming a module or a top-level function that does not exist.
    """
    files = module_files(package_dir)
    if module not in files:
        close = difflib.get_close_matches(module, list(files), n=1)
        raise KeyError(f"no module '{module}' in the package{_hint(close)}")
    path = files[module]
    exports, _ = _export_tables(files)
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    defs = {n.name: n for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))}
    if function not in defs:
        close = difflib.get_close_matches(function, list(defs), n=1)
        raise KeyError(f"no function '{function}' in {path.name}{_hint(close)}")
    found: set[str] = set()
    seen, todo = set(), [function]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        found |= _imports(defs[name], module, _is_package(path), set(files), lazy=True, exports=exports)
        todo.extend(n.func.id for n in ast.walk(defs[name])
                    if isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id in defs)
    return found - {module}


def _hint(close: list[str]) -> str:
    return f" (did you mean '{close[0]}'?)" if close else ""


def _parents(name: str) -> list[str]:
    """``a.b.c`` → ``a``, ``a.b``: the packages whose ``__init__`` importing ``a.b.c`` runs first."""
    parts = name.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts))]


def closure(graph: dict[str, set[str]], entries) -> set[str]:
    """Every module reachable from ``entries`` (themselves included), with the parent packages of
    each (importing ``a.b`` runs ``a/__init__.py``). Cycles are fine.

    Raises KeyError naming an entry that is not a module of the graph (with a close match if any).
    """
    for entry in entries:
        if entry not in graph:
            close = difflib.get_close_matches(entry, list(graph), n=1)
            raise KeyError(f"no module '{entry}' in the package{_hint(close)}")
    seen: set[str] = set()
    todo = list(entries)
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        todo.extend(m for m in _parents(name) if m in graph)
        todo.extend(graph[name])
    return seen


def source_files(package_dir: Path, entries, graph: dict[str, set[str]] | None = None) -> list[str]:
    """Sorted paths of the files of ``closure(graph, entries)`` (paths as ``package_dir`` is given:
    absolute for an absolute folder). ``graph`` defaults to ``import_graph(package_dir)``."""
    files = module_files(package_dir)
    graph = import_graph(package_dir) if graph is None else graph
    return sorted(str(files[m]) for m in closure(graph, entries))
