"""What the report shows of how a study was made: its effective parameters, the software versions, and
which lock the software was installed from (and whether it still matches it)."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import platform
import re
from importlib import metadata
from pathlib import Path

import pandas as pd
import yaml

from affsr.atomic_files import write_csv, write_text
from affsr.config.study import Params

#: Distributions whose versions the report lists.
VERSIONED = ("affsr", "torch", "numpy", "pandas", "scikit-image", "pillow", "matplotlib", "seaborn", "pyyaml",
             "snakemake", "snakemake-executor-plugin-slurm", "dvc")

#: The lock `make` installs from (docs/running.md, "Installing"): every package but affsr and torch, with
#: exact versions and hashes. It exists in a source checkout (where `make` installs affsr editable), so it
#: is looked for beside the package.
ROOT = Path(__file__).resolve().parents[2]
LOCK = ROOT / "requirements" / "lock.txt"

#: Installed but never in the lock: the project itself and torch (installed from PyTorch's index after
#: the lock, since its wheel differs by build: CPU, CUDA). What torch requires and the lock lacks (a CUDA
#: build's nvidia/cuda wheels and triton) comes with torch: see :func:`lock_differences`.
NOT_LOCKED = ("affsr", "torch")

_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)\s*(;[^\\]*)?")
_NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")


def effective_params(params: Params) -> dict:
    """The validated params (the chosen study applied) as plain data, tuples as lists, for YAML."""
    return json.loads(json.dumps(dataclasses.asdict(params)))


def software_versions() -> pd.DataFrame:
    """Python, the platform and each of :data:`VERSIONED` (``not installed`` where absent)."""
    rows = [("python", platform.python_version()), ("platform", platform.platform())]
    for name in VERSIONED:
        try:
            rows.append((name, metadata.version(name)))
        except metadata.PackageNotFoundError:
            rows.append((name, "not installed"))
    return pd.DataFrame(rows, columns=["software", "version"])


def canonical(name: str) -> str:
    """A distribution name as PyPI compares them (PEP 503): ``zc.lockfile`` and ``ZC_Lockfile`` are
    ``zc-lockfile``."""
    return re.sub(r"[-_.]+", "-", name).lower()


def lock_pins(text: str) -> dict[str, tuple[str, bool]]:
    """The pins of a lock (requirements format, as ``make lock`` writes it): canonical name → (version,
    conditional), where conditional means the line has an environment marker (e.g. pywin32 on Windows
    only), so the package may rightly be absent here."""
    pins = {}
    for line in text.splitlines():
        match = _PIN.match(line)
        if match:
            pins[canonical(match[1])] = (match[2], match[3] is not None)
    return pins


def installed_versions() -> dict[str, str]:
    """Canonical name → version of every distribution Python sees (the first one where it sees two)."""
    versions: dict[str, str] = {}
    for dist in metadata.distributions():
        name = dist.metadata["Name"]
        if name:
            versions.setdefault(canonical(name), dist.version)
    return versions


def _requirement_closure(roots: tuple[str, ...], installed: dict[str, str]) -> set[str]:
    """The installed distributions that ``roots`` require, transitively (markers other than extras are
    ignored: this only excuses packages, so erring towards more is safe)."""
    seen, todo = set(), [canonical(root) for root in roots]
    while todo:
        name = todo.pop()
        if name in seen or name not in installed:
            continue
        seen.add(name)
        for requirement in metadata.requires(name) or []:
            if not re.search(r"\bextra\s*==", requirement):  # an optional extra of it: not installed for it
                todo.append(canonical(_NAME.match(requirement)[1]))
    return seen


def lock_differences(lock_text: str, installed: dict[str, str] | None = None) -> list[str]:
    """How what is installed differs from the lock, one line each (empty: installed as locked).

    A pin must be installed at its version (a conditional one only if installed at all); a package must
    be pinned unless it is one of :data:`NOT_LOCKED` or something torch requires (a CUDA build's own
    wheels)."""
    installed = installed_versions() if installed is None else installed
    pins = lock_pins(lock_text)
    differences = []
    for name, (version, conditional) in sorted(pins.items()):
        if name not in installed:
            if not conditional:
                differences.append(f"{name}=={version} missing")
        elif installed[name].lower() != version.lower():
            differences.append(f"{name} {installed[name]} installed, {version} locked")
    excused = _requirement_closure(("torch",), installed) | set(NOT_LOCKED)
    for name in sorted(set(installed) - set(pins) - excused):
        differences.append(f"{name} {installed[name]} installed, not in the lock")
    return differences


def torch_build() -> str:
    """Which build of torch is installed, from its metadata alone (no import): a CUDA build requires
    nvidia/cuda wheels, a CPU build requires none."""
    try:
        version, requires = metadata.version("torch"), metadata.requires("torch") or []
    except metadata.PackageNotFoundError:
        return "not installed"
    cuda = sorted({_NAME.match(r)[1] for r in requires if re.match(r"\s*(nvidia-|cuda-)", r)})
    if "+rocm" in version:
        return f"{version}: ROCm build"
    if cuda:
        return f"{version}: CUDA build (requires {', '.join(cuda)})"
    return f"{version}: CPU build (requires no nvidia/cuda wheels)"


def install_record(lock: Path = LOCK) -> pd.DataFrame:
    """The lock the software came from: its path, sha256 digest, whether what is installed matches it
    (or how it differs) and the torch build, as ``item, value`` rows."""
    if not lock.is_file():
        return pd.DataFrame([("lock", f"{lock} not found (affsr not installed from a source checkout)"),
                             ("lock sha256", "none"), ("installed as locked", "unknown"),
                             ("torch build", torch_build())], columns=["item", "value"])
    data = lock.read_bytes()
    differences = lock_differences(data.decode("utf-8"))
    matches = "yes" if not differences else "no: " + "; ".join(differences)
    shown = lock.resolve().relative_to(ROOT) if lock.resolve().is_relative_to(ROOT) else lock  # same in any clone
    return pd.DataFrame([("lock", str(shown)), ("lock sha256", hashlib.sha256(data).hexdigest()),
                         ("installed as locked", matches), ("torch build", torch_build())],
                        columns=["item", "value"])


def write_provenance(out_dir: Path, settings: dict, lock: Path = LOCK) -> None:
    """``out_dir``/params.yaml (the effective parameters), ``out_dir``/versions.csv and
    ``out_dir``/install.csv (the lock's digest, whether the installed packages match it, the torch build)."""
    write_text(Path(out_dir) / "params.yaml",
               "# effective parameters of this study (params.yaml with the chosen study applied)\n"
               + yaml.safe_dump(settings, sort_keys=False, allow_unicode=True))
    write_csv(Path(out_dir) / "versions.csv", software_versions())
    write_csv(Path(out_dir) / "install.csv", install_record(lock))
