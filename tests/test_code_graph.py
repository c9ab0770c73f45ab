"""affsr.code_graph: the static import graph the workflow derives each rule's code inputs from."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from textwrap import dedent

import pytest
import yaml

from affsr.code_graph import closure, function_imports, import_graph, module_files, source_files

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


@pytest.fixture
def pkg(tmp_path: Path) -> Path:
    """A tiny package: absolute, relative, function-local, submodule and dynamic imports, and a cycle."""
    files = {
        "__init__.py": "",
        "a.py": """
            import os
            import pkg.b
            from pkg.sub import c  # a submodule by `from package import name`
            """,
        "b.py": """
            from . import a  # relative, and a cycle a → b → a
            from .sub.c import helper  # a function of a module: the module
            """,
        "sub/__init__.py": "",
        "sub/c.py": """
            from ..b import something

            def helper():
                from pkg import d  # function-local: runs when called
                return d
            """,
        "d.py": "from pkg import not_a_module  # a name of pkg/__init__.py, not a module\n",
        "dyn/__init__.py": """
            import importlib

            def load(name):
                return importlib.import_module(f"{__name__}.{name}")
            """,
        "dyn/x.py": "",
        "dyn/y.py": "",
        "main.py": """
            from pkg.files import write

            def _helper():
                import pkg.dyn

            def cmd_run():
                from pkg import a
                _helper()

            def cmd_other():
                import pkg.d
            """,
        "files.py": "def write(): pass\n",
        "__pycache__/stale.py": "import pkg.d\n",
    }
    root = tmp_path / "pkg"
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(dedent(text))
    return root


def test_module_names(pkg: Path):
    assert set(module_files(pkg)) == {"pkg", "pkg.a", "pkg.b", "pkg.sub", "pkg.sub.c", "pkg.d", "pkg.dyn",
                                      "pkg.dyn.x", "pkg.dyn.y", "pkg.main", "pkg.files"}  # no __pycache__
    assert module_files(pkg)["pkg.sub"] == pkg / "sub" / "__init__.py"


def test_import_graph(pkg: Path):
    graph = import_graph(pkg)
    assert graph["pkg.a"] == {"pkg.b", "pkg.sub", "pkg.sub.c"}  # parents come with the closure
    assert graph["pkg.b"] == {"pkg", "pkg.a", "pkg.sub.c"}  # relative imports resolved
    assert graph["pkg.sub.c"] == {"pkg", "pkg.b", "pkg.d"}  # `..b`; and the import inside helper()
    assert graph["pkg.d"] == {"pkg"}  # not_a_module is not a module: only the package
    # a computed module name: every module of the importer's own folder
    assert graph["pkg.dyn"] == {"pkg.dyn.x", "pkg.dyn.y"}
    assert import_graph(pkg, lazy=False)["pkg.sub.c"] == {"pkg.b"}  # no function bodies


def test_closure_follows_cycles_and_parent_packages(pkg: Path):
    graph = import_graph(pkg)
    assert closure(graph, ["pkg.b"]) == {"pkg", "pkg.a", "pkg.b", "pkg.sub", "pkg.sub.c", "pkg.d"}
    assert closure(graph, ["pkg.dyn.x"]) == {"pkg", "pkg.dyn", "pkg.dyn.x", "pkg.dyn.y"}  # __init__ first
    assert closure(graph, []) == set()
    with pytest.raises(KeyError, match=r"no module 'pkg.bb' in the package \(did you mean 'pkg.b'\?\)"):
        closure(graph, ["pkg.bb"])


def test_source_files_are_sorted_paths(pkg: Path):
    assert source_files(pkg, ["pkg.d"]) == sorted([str(pkg / "__init__.py"), str(pkg / "d.py")])


def test_function_imports_follow_helpers(pkg: Path):
    assert function_imports(pkg, "pkg.main", "cmd_run") == {"pkg", "pkg.a", "pkg.dyn"}
    assert function_imports(pkg, "pkg.main", "cmd_other") == {"pkg.d"}
    with pytest.raises(KeyError, match="no function 'cmd_ruin' in main.py .did you mean 'cmd_run'"):
        function_imports(pkg, "pkg.main", "cmd_ruin")


def test_the_train_rule_depends_on_the_loop_and_its_own_objective(tmp_path: Path):
    """The real workflow: a training job's inputs include affsr/training/loop.py and its own objective's file,
    derived from `affsr train`'s imports, and no other objective's (a new objective file reruns nothing
    that does not run it)."""
    (tmp_path / "params.yaml").write_text((REPO / "params.yaml").read_text())
    methods = yaml.safe_load((REPO / "params.yaml").read_text())["methods"]
    method = next(iter(methods))
    result = subprocess.run(
        [str(BIN / "snakemake"), "--snakefile", str(REPO / "workflow" / "Snakefile"), "--directory", str(tmp_path),
         "-n", "--forceall", "--cores", "1", f"runs/grass/{method}/model.pt"],
        capture_output=True, text=True, timeout=300,
        env={**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"})
    assert result.returncode == 0, result.stderr[-3000:]
    block = result.stdout[result.stdout.index("rule train:"):]
    inputs = {Path(p.strip()) for p in block.split("input:", 1)[1].split("\n", 1)[0].split(",")}
    package = REPO / "affsr"
    assert package / "training" / "loop.py" in inputs and package / "cli.py" in inputs
    own = package / "methods" / f"{methods[method]['objective']}.py"
    assert {own, package / "methods" / "__init__.py", package / "methods" / "base.py"} <= inputs
    others = {package / "methods" / f"{m['objective']}.py" for m in methods.values()} - {own}
    assert others and not others & inputs
