"""Training objectives: one module per objective, found by name (no registry to edit).

A module ``affsr/methods/<objective>.py`` defines

* ``Options`` — a frozen dataclass of the objective's own knobs (validated from params.yaml), and
* ``Objective`` — built as ``Objective(context)`` from a :class:`~affsr.methods.base.Context`; it exposes
  ``networks`` (every module it trains, by name) and ``phases`` (the optimiser steps of one training
  step, in order). The shared loop in :mod:`affsr.training` does everything else.

Optional, each read with ``getattr`` by whoever needs it:

* ``SUPER_RESOLVES = False`` (module level) — an auxiliary objective (denoiser, density model): its
  runs train one network, make no SR outputs and are not evaluated as methods;
* ``GUIDED_BY = "<objective>"`` (module level) — the objective needs ``context.guides``: snapshots of a
  run of that auxiliary objective, named by the method's ``guide`` setting;
* ``Objective.snapshot_points`` (progress fractions in (0, 1]) and ``Objective.snapshot_label(progress)``
  — the loop keeps labelled copies of the networks there (the snapshot curriculum of App. D);
* ``Objective.noise_std(progress)`` — logged as ``instance_noise``.

Which objective × which constraint (projected / soft / none) a method uses is set in params.yaml, so
AffGAN and SoftGAN, MSE and AffMSE share one file.
"""

from __future__ import annotations

import importlib
import pkgutil
from types import ModuleType

_NOT_OBJECTIVES = {"base"}


def available_objectives() -> list[str]:
    """Names of the objective modules in this package."""
    return sorted(m.name for m in pkgutil.iter_modules(__path__) if m.name not in _NOT_OBJECTIVES)


def _module(name: str) -> ModuleType:
    if name not in available_objectives():
        raise ValueError(f"unknown objective '{name}'; available: {', '.join(available_objectives())}")
    return importlib.import_module(f"{__name__}.{name}")


def options_class(name: str) -> type:
    """The ``Options`` dataclass of objective ``name``."""
    return _module(name).Options


def super_resolves(name: str) -> bool:
    """False for auxiliary objectives (a denoiser, a density model): their runs make no SR outputs
    to evaluate. Declared as ``SUPER_RESOLVES = False`` in the objective's module."""
    return getattr(_module(name), "SUPER_RESOLVES", True)


def guided_by(name: str) -> str:
    """The auxiliary objective whose snapshots objective ``name`` needs as guides ("" for none)."""
    return getattr(_module(name), "GUIDED_BY", "")


def objective_class(name: str) -> type:
    """The ``Objective`` class of objective ``name``."""
    return _module(name).Objective
