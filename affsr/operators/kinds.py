"""The kinds of A that ``operator.kind`` names, one row each — and A built from its settings or rebuilt
from the description a data set's manifest records.

A kind is a kernel function (:mod:`affsr.operators.kernels`) and one row of :data:`KINDS`:

* ``details(settings)`` — the kind's own settings as its description records them (beyond name, scale,
  kernel_size and origin), read from either form they come in: the ``operator:`` section
  (:class:`affsr.config.OperatorConfig`, as a dict) or a recorded description;
* ``kernel(d)`` — the kernel and its origin tap from a description ``d`` (those details plus ``scale``,
  ``kernel_size`` and ``origin``), so that building from settings and rebuilding from a manifest are
  the same call;
* ``check(cfg)`` — what is wrong with the settings for this kind ("" if nothing), reported under
  ``operator.<key>`` when params.yaml is loaded.

Everything else reads the table: params.yaml's check, ``affsr upscale/downsample --operator``,
:func:`build_operator` and :func:`operator_from_description`. Adding a kind is a kernel function and a row.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Callable, Mapping

import torch

from affsr.config.data import OperatorConfig
from affsr.config.parse import check_choice
from affsr.errors import ConfigError
from affsr.operators import kernels, reflect
from affsr.operators.downsampling import Downsampling

def _no_problem(cfg: OperatorConfig) -> str:
    return ""


@dataclass(frozen=True)
class OperatorKind:
    """One kind of A (see the module docstring)."""

    details: Callable[[Mapping], dict]
    kernel: Callable[[dict], kernels.Kernel]
    check: Callable[[OperatorConfig], str] = _no_problem


def _gaussian_details(s: Mapping) -> dict:
    """σ for the isotropic Gaussian (equal sigmas), σx, σy and the angle otherwise (σx, σy = 0: σ)."""
    sigma_x = s.get("sigma_x") or s.get("sigma")
    sigma_y = s.get("sigma_y") or s.get("sigma")
    if sigma_x == sigma_y:
        return {"sigma": float(sigma_x)}
    return {"sigma_x": float(sigma_x), "sigma_y": float(sigma_y), "angle": float(s["angle"])}


def _gaussian_kernel(d: dict) -> kernels.Kernel:
    if "sigma" in d:
        return kernels.gaussian(d["sigma"], d["kernel_size"])
    return kernels.anisotropic_gaussian(d["sigma_x"], d["sigma_y"], d["angle"], d["kernel_size"])


def _file_details(s: Mapping) -> dict:
    """The kernel's (normalised) values themselves: a data set made with it is rebuilt without the file."""
    if "kernel" in s:  # a description
        return {"kernel": s["kernel"]}
    kernel, _ = kernels.from_file(s["kernel_file"], s["origin"])
    return {"kernel": kernel.tolist()}


def _file_kernel(d: dict) -> kernels.Kernel:
    kernel = torch.as_tensor(d["kernel"], dtype=torch.float64)
    origin = d["origin"]  # a description's int or [oy, ox]; the settings' [], [o] or [oy, ox]
    origin = [origin] if isinstance(origin, int) else list(origin)
    if not origin:
        origin = [(kernel.shape[0] - 1) // 2, (kernel.shape[1] - 1) // 2]
    return kernel, (int(origin[0]), int(origin[-1]))


def _needs(key: str, ok: Callable[[OperatorConfig], bool], need: str) -> Callable[[OperatorConfig], str]:
    """A check: ``key: must be <need>, got <value>`` unless ``ok(cfg)``."""
    return lambda cfg: "" if ok(cfg) else f"{key}: must be {need}, got {getattr(cfg, key)!r}"


#: Every kind of A, by its ``operator.kind`` name (kernels and their phase: :mod:`affsr.operators.kernels`).
KINDS: dict[str, OperatorKind] = {
    "gaussian": OperatorKind(_gaussian_details, _gaussian_kernel),
    "box": OperatorKind(lambda s: {}, lambda d: kernels.box(d["scale"])),
    "area": OperatorKind(lambda s: {}, lambda d: kernels.box(d["scale"])),  # PIL's BOX = the box
    "bicubic": OperatorKind(lambda s: {}, lambda d: kernels.bicubic(d["scale"])),
    "motion": OperatorKind(lambda s: {"length": float(s["length"]), "angle": float(s["angle"])},
                           lambda d: kernels.motion(d["length"], d["angle"]),
                           _needs("length", lambda cfg: cfg.length > 0, "> 0 for kind motion")),
    "file": OperatorKind(_file_details, _file_kernel,
                         _needs("kernel_file", lambda cfg: bool(cfg.kernel_file), "a .npy file for kind file")),
}


def check_operator(cfg: OperatorConfig, where: str = "operator") -> None:
    """ConfigError naming ``where``.<key> unless ``cfg`` names a kind of :data:`KINDS` with the settings it needs."""
    check_choice(cfg.kind, KINDS, f"{where}.kind")
    if problem := KINDS[cfg.kind].check(cfg):
        raise ConfigError(f"{where}.{problem}")


def _operator(kind: str, settings: Mapping) -> Downsampling:
    """A of ``kind`` from its settings or its description: its details, scale, kernel_size (a description)
    or size (the settings), origin and boundary."""
    details = KINDS[kind].details(settings)
    common = {"scale": settings["scale"], "kernel_size": settings.get("kernel_size", settings.get("size")),
              "origin": settings["origin"]}
    kernel, origin = KINDS[kind].kernel({**details, **common})
    return Downsampling(kernel, settings["scale"], origin, name=kind, details=details,
                        boundary=reflect.check(settings.get("boundary", "circular")))


def build_operator(cfg: OperatorConfig) -> Downsampling:
    """A from the ``operator`` settings (params.yaml, a run's settings or a checkpoint's) — the one place
    those settings become an operator. Kind ``file`` reads ``cfg.kernel_file`` (a ConfigError naming the
    file if it is not a usable kernel); an unknown kind or a missing setting is a ConfigError too."""
    check_operator(cfg)
    return _operator(cfg.kind, dataclasses.asdict(cfg))


def operator_from_description(description: dict) -> Downsampling:
    """A from the description a data set's manifest records (``Downsampling.describe()``): the operator
    the data were made with, with no default filled in. Kind ``file`` needs no file: its description
    holds the (normalised) kernel values themselves, so moving or editing the .npy cannot change A."""
    try:
        if description["name"] not in KINDS:
            raise ValueError(f"unknown kind {description['name']!r}")
        op = _operator(description["name"], description)
    except (KeyError, TypeError, ValueError) as err:
        raise ConfigError(f"not a description of an operator A: {description!r} ({err})") from None
    if op.describe() != description:  # e.g. another origin: not an operator affsr can rebuild
        raise ConfigError(f"operator {description!r} cannot be rebuilt (affsr builds {op.describe()!r})")
    return op
