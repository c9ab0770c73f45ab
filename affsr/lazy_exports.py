"""A subpackage's public names, imported from their modules on first use (PEP 562).

Each subpackage's ``__init__`` hands on its public names — ``from affsr.operators import AffineProjection``
— without importing its modules up front, for three measured reasons:

* a command imports only what it uses: ``affsr aggregate`` or the CLI's parser need no torch (2 s per
  process, ``benchmarks/startup.py``), which every module of ``affsr.operators`` imports;
* the workflow reruns exactly what an edit affects: a rule's code inputs are the modules its command
  imports (:mod:`affsr.code_graph`), and an ``__init__`` that imported every module of its package
  would make each training depend on the downloader;
* no import cycles through an ``__init__`` that is still being run.

Inside affsr, modules import from the module that defines a name (``affsr.operators.downsampling``),
never through a package (tests/test_layers.py checks it): the package names are for users.
"""

from __future__ import annotations

import importlib
import sys
from typing import Any, Callable


def exports(package: str, names: dict[str, str]) -> tuple[Callable[[str], Any], Callable[[], list[str]], list[str]]:
    """``(__getattr__, __dir__, __all__)`` for the ``__init__`` of ``package``: ``names`` maps each public
    name to the module of the package that defines it (``{"Downsampling": "downsampling"}``). A name that
    is also a module of the package (``affsr.evaluation.c2st``) is not handed on: which of the two
    ``from package import name`` returned would depend on what was imported before."""

    def __getattr__(name: str) -> Any:
        if name not in names:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(f"{package}.{names[name]}"), name)
        setattr(sys.modules[package], name, value)  # found directly from now on
        return value

    def __dir__() -> list[str]:
        return sorted(set(names) | set(vars(sys.modules[package])))

    return __getattr__, __dir__, sorted(names)
