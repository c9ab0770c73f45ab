"""The install is reproducible (docs/running.md, "Installing"): requirements/lock.txt pins, with hashes,
exactly what is installed (torch and affsr aside); pyproject.toml declares every package the code imports
and the lock satisfies it; the Makefile installs from the lock, then torch of the build it names; the
provenance records the lock's digest; the install text of the docs names what is installed."""

from __future__ import annotations

import ast
import hashlib
import os
import re
import shutil
import subprocess
import sys
import tomllib
from importlib import metadata
from pathlib import Path

import pandas as pd
import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from affsr.report.provenance import LOCK, install_record, lock_differences, write_provenance

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
CUDA_ONLY = ROOT / "requirements" / "torch-cuda-only.txt"
#: The folders whose imports must be declared: the package, and what the tests and CI run.
SCANNED = ("affsr", "tests", "scripts", "benchmarks")


def requirement_lines(text: str) -> list[str]:
    """The logical lines of a requirements file: continuations joined, comments and blanks dropped."""
    joined = re.sub(r"\\\n", " ", text)
    lines = (re.sub(r"(^|\s)#.*", "", line).strip() for line in joined.splitlines())
    return [line for line in lines if line]


def lock_entries(text: str) -> list[tuple[Requirement, list[str]]]:
    """Each pin of a lock with its ``--hash`` values, e.g. (Requirement('numpy==2.4.6'), ['sha256:…'])."""
    entries = []
    for line in requirement_lines(text):
        requirement, *hashes = re.split(r"\s+--hash=", line)
        entries.append((Requirement(requirement), hashes))
    return entries


def pinned_version(requirement: Requirement) -> str:
    (spec,) = requirement.specifier  # exactly one `==` (checked below)
    return spec.version


LOCKED = lock_entries(LOCK.read_text(encoding="utf-8"))
#: The pins whose markers hold here (a universal lock also pins pywin32 for Windows, …).
HERE = {canonicalize_name(r.name): pinned_version(r) for r, _ in LOCKED if r.marker is None or r.marker.evaluate()}


def declared(*groups: str) -> list[Requirement]:
    """pyproject's requirements: ``dependencies`` and the named optional groups."""
    project = PYPROJECT["project"]
    lines = list(project["dependencies"])
    for group in groups:
        lines += project["optional-dependencies"][group]
    return [Requirement(line) for line in lines]


def makefile_variable(name: str) -> str:
    match = re.search(rf"^{name}\s*[?:]?=\s*(.+)$", (ROOT / "Makefile").read_text(encoding="utf-8"), re.M)
    assert match, f"no {name} in the Makefile"
    return match[1].strip()


def torch_owned() -> set[str]:
    """Installed distributions that torch requires, transitively, and the lock lacks (a CUDA build's)."""
    owned, todo = set(), ["torch"]
    while todo:
        name = canonicalize_name(todo.pop())
        if name in owned or name in HERE:
            continue
        try:
            requires = metadata.requires(name) or []
        except metadata.PackageNotFoundError:
            continue
        owned.add(name)
        todo += [Requirement(r).name for r in requires if "extra" not in str(Requirement(r).marker or "")]
    return owned - {"torch"}


# --- the lock --------------------------------------------------------------------------------------------

def test_the_lock_pins_each_package_exactly_with_sha256_hashes():
    bad = []
    for requirement, hashes in LOCKED:
        if requirement.url or len(requirement.specifier) != 1 or next(iter(requirement.specifier)).operator != "==":
            bad.append(f"{requirement}: not one exact `==` pin")
        if not hashes or not all(re.fullmatch(r"sha256:[0-9a-f]{64}", h) for h in hashes):
            bad.append(f"{requirement}: needs --hash=sha256:… for each file ({hashes[:1]})")
    assert not bad, "\n".join(bad)
    names = [canonicalize_name(r.name) for r, _ in LOCKED if r.marker is None or r.marker.evaluate()]
    assert len(names) == len(set(names)), "a package pinned twice for this machine"
    assert len(LOCKED) > 100  # the whole environment, not a few top-level names


def test_the_lock_holds_no_torch_and_nothing_of_cuda():
    """torch comes from the build the Makefile names; the lock must not drag in PyPI's CUDA wheels."""
    names = {canonicalize_name(r.name) for r, _ in LOCKED}
    cuda_only = {canonicalize_name(line) for line in requirement_lines(CUDA_ONLY.read_text(encoding="utf-8"))}
    assert "torch" not in names
    assert not names & cuda_only
    assert not [n for n in names if n.startswith(("nvidia-", "cuda-"))]
    assert "setuptools" in names and "pip" in names  # the build backend (--no-build-isolation) and the installer


def test_the_installed_environment_is_the_lock():
    """Every pin that applies here is installed at its version, and nothing else is installed but affsr,
    torch and what torch itself brings (a CUDA build's wheels). A fresh `make venv` gives exactly this."""
    installed = {}
    for dist in metadata.distributions():
        installed.setdefault(canonicalize_name(dist.metadata["Name"]), dist.version)
    wrong = [f"{name}: {installed.get(name, 'missing')} installed, {version} locked"
             for name, version in sorted(HERE.items()) if installed.get(name) != version]
    owned = torch_owned()
    extra = sorted(set(installed) - set(HERE) - {"affsr", "torch"} - owned)
    assert not [n for n in owned if not n.startswith(("nvidia-", "cuda-", "triton"))], \
        f"torch brought packages the lock should hold (its CPU dependencies): {sorted(owned)}"
    assert not wrong, "\n".join(wrong) + "\n(a fresh venv: rm -rf .venv && make venv)"
    assert not extra, (f"installed but not in requirements/lock.txt: {extra}; declare them in pyproject.toml "
                       f"and `make lock`, or uninstall them")


def test_the_lock_satisfies_pyproject():
    """Each declared requirement (torch aside) is pinned at a version it allows: `make lock` was rerun
    after pyproject.toml changed."""
    extras = tuple(PYPROJECT["project"]["optional-dependencies"])
    lock_in = [Requirement(line) for line in requirement_lines((ROOT / "requirements/lock.in").read_text())]
    missing = []
    for requirement in declared(*extras) + lock_in:
        name = canonicalize_name(requirement.name)
        if name == "torch":
            continue
        if name not in HERE or not requirement.specifier.contains(HERE[name], prereleases=True):
            missing.append(f"{requirement} (locked: {HERE.get(name, 'nothing')})")
    assert not missing, "not in requirements/lock.txt as pyproject.toml asks (`make lock`):\n" + "\n".join(missing)


def test_the_lock_says_how_it_was_made():
    assert "#    make lock" in LOCK.read_text(encoding="utf-8").splitlines()[1]


# --- imports are declared --------------------------------------------------------------------------------

def top_level_imports(folder: Path) -> dict[str, str]:
    """Top-level module name → the first file importing it (absolute imports only)."""
    found = {}
    for path in sorted(folder.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                found.setdefault(name.split(".")[0], str(path.relative_to(ROOT)))
    return found


def local_modules() -> set[str]:
    """Modules of this repository imported by plain name (tests' helpers, scripts, benchmarks)."""
    return {p.stem for folder in SCANNED for p in (ROOT / folder).rglob("*.py")} | {"affsr"}


@pytest.mark.parametrize("folder", SCANNED)
def test_every_third_party_import_is_declared(folder):
    """Each module imported in ``folder`` is the standard library's, this repository's, or comes from a
    distribution pyproject.toml declares: the package's own in ``dependencies``, the tests' and scripts'
    there or in an extra. (Imports are mapped to distributions by what is installed.)"""
    groups = () if folder == "affsr" else tuple(PYPROJECT["project"]["optional-dependencies"])
    allowed = {canonicalize_name(r.name) for r in declared(*groups)}
    providers = metadata.packages_distributions()
    undeclared = []
    for module, where in top_level_imports(ROOT / folder).items():
        if module in sys.stdlib_module_names or module in local_modules():
            continue
        dists = {canonicalize_name(d) for d in providers.get(module, [])}
        if not dists & allowed:
            undeclared.append(f"{module} ({where}): from {sorted(dists) or 'nothing installed'}")
    assert not undeclared, "imported but not declared in pyproject.toml:\n" + "\n".join(undeclared)


def test_the_import_scan_sees_third_party_imports():
    imports = top_level_imports(ROOT / "affsr")
    assert {"torch", "numpy", "yaml", "PIL", "skimage", "imagecodecs"} <= set(imports)
    assert canonicalize_name(metadata.packages_distributions()["yaml"][0]) == "pyyaml"


# --- the Makefile and CI install from the lock -----------------------------------------------------------

def make_dry_run(tmp_path: Path, *args: str) -> list[str]:
    """The commands `make venv` would run for a venv that does not exist yet (`make -n`: nothing runs)."""
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL")}  # under `make test`
    out = subprocess.run(["make", "-n", "venv", f"VENV={tmp_path}/venv", *args], cwd=ROOT, text=True,
                         capture_output=True, check=True, env=env).stdout
    return [line.strip() for line in out.splitlines() if " -m pip " in line]


def test_make_installs_the_lock_then_torch_then_affsr(tmp_path):
    pip, lock, torch, affsr, check = make_dry_run(tmp_path)
    assert pip.endswith("install --quiet --require-hashes -r /dev/stdin")  # the lock's pip lines, piped
    assert lock.endswith("install --quiet --require-hashes -r requirements/lock.txt")
    assert torch.endswith(f"--index-url https://download.pytorch.org/whl/cpu {makefile_variable('TORCH')}")
    assert "--no-deps" in affsr and "--no-build-isolation" in affsr and affsr.endswith("-e .")
    assert check.endswith("pip check")


def test_one_switch_installs_the_cuda_build(tmp_path):
    torch = make_dry_run(tmp_path, "TORCH_BUILD=cu130")[2]
    assert "--index-url https://download.pytorch.org/whl/cu130 torch==" in torch
    # the older spelling, an index inside TORCH, still wins (pip takes the last --index-url)
    older = make_dry_run(tmp_path, "TORCH=torch==2.13.0 --index-url https://example.org/simple")[2]
    assert older.endswith("torch==2.13.0 --index-url https://example.org/simple")


def test_the_pip_step_pipes_exactly_the_locks_pip_with_its_hashes(tmp_path):
    """Step 0 runs awk on the lock: what it prints must be pip's pin and every hash line of it."""
    if shutil.which("awk") is None:
        pytest.skip("awk is not installed")
    program = re.search(r"awk '([^']+)'", (ROOT / "Makefile").read_text(encoding="utf-8"))[1].replace("$$", "$")
    out = subprocess.run(["awk", program, str(LOCK)], text=True, capture_output=True, check=True).stdout
    ((requirement, hashes),) = lock_entries(out)
    assert requirement.name == "pip" and (requirement, hashes) in LOCKED


def test_the_venv_is_reinstalled_when_the_locks_content_changes(tmp_path):
    """A copy of the same lock with a newer time (a fresh clone) installs nothing; a changed lock makes
    the stamp out of date. (Runs make for real on a fake venv whose python fails, so nothing installs.)"""
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    venv, lock = tmp_path / "venv", tmp_path / "lock.txt"
    (venv / "bin").mkdir(parents=True)
    (venv / "bin" / "python").write_text("#!/bin/sh\nexit 1\n")
    (venv / "bin" / "python").chmod(0o755)
    (venv / ".lock-sha256").write_text(hashlib.sha256(LOCK.read_bytes()).hexdigest() + "\n")
    (venv / ".installed").touch()
    lock.write_bytes(LOCK.read_bytes())  # the same lock, newer than the stamp
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL")}

    def make(*targets: str) -> subprocess.CompletedProcess:
        return subprocess.run(["make", *targets, f"VENV={venv}", f"LOCK={lock}", f"PYTHON={sys.executable}"],
                              cwd=ROOT, text=True, capture_output=True, env=env)

    same = make("venv")
    assert same.returncode == 0 and "pip" not in same.stdout, same.stdout + same.stderr
    stamp_time = (venv / ".installed").stat().st_mtime_ns
    lock.write_text(LOCK.read_text(encoding="utf-8") + "# changed\n")
    assert make(str(venv / ".lock-sha256")).returncode == 0
    assert (venv / ".lock-sha256").read_text().strip() == hashlib.sha256(lock.read_bytes()).hexdigest()
    assert (venv / ".lock-sha256").stat().st_mtime_ns > stamp_time  # so `make` reinstalls
    changed = make("venv")  # and it does: the fake python fails the first install step
    assert changed.returncode != 0 and "--require-hashes" in changed.stdout


def test_ci_installs_through_make_only():
    """CI's venv is the Makefile's: .ci/run installs nothing by hand."""
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert re.search(r"^make venv\b", ci, re.M)
    assert "pip install" not in ci


def test_the_torch_pin_is_what_is_installed():
    pin = makefile_variable("TORCH")
    assert re.fullmatch(r"torch==[\d.]+", pin)
    assert metadata.version("torch").split("+")[0] == pin.removeprefix("torch==")
    torch_requirement = next(r for r in declared() if r.name == "torch")
    assert torch_requirement.specifier.contains(pin.removeprefix("torch=="))


def test_the_install_text_names_what_is_installed():
    """README and docs/running.md say what `make` installs: the lock, the torch pin, the CPU default
    and the CUDA switch, and how to remake the lock."""
    version = makefile_variable("TORCH").removeprefix("torch==")
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    running = (ROOT / "docs" / "running.md").read_text(encoding="utf-8")
    for page, text in (("README.md", readme), ("docs/running.md", running)):
        for needed in ("requirements/lock.txt", f"torch {version}", "TORCH_BUILD=cu130"):
            assert needed in text, f"{page} does not mention {needed!r}"
    assert "make lock" in running and "UPGRADE=--upgrade" in running
    for page in ("README.md", "docs/running.md", "docs/studies.md", "docs/benchmarks.md"):
        text = (ROOT / page).read_text(encoding="utf-8")
        assert not re.search(r'^\s+make .*TORCH="', text, re.M), f"{page}: the switch is TORCH_BUILD now"


# --- provenance ------------------------------------------------------------------------------------------

def test_provenance_records_the_lock_digest(tmp_path):
    write_provenance(tmp_path, {"seed": 0})
    record = pd.read_csv(tmp_path / "install.csv", dtype=str)
    assert list(record.columns) == ["item", "value"]
    table = dict(zip(record.item, record.value))
    assert table["lock"] == "requirements/lock.txt"
    assert table["lock sha256"] == hashlib.sha256(LOCK.read_bytes()).hexdigest()
    assert table["installed as locked"] == "yes"  # as test_the_installed_environment_is_the_lock checks
    assert table["torch build"].startswith(metadata.version("torch") + ": ")
    assert (tmp_path / "versions.csv").exists() and (tmp_path / "params.yaml").exists()


def test_provenance_says_how_the_install_differs_from_the_lock(tmp_path):
    installed = {"numpy": "2.4.6", "pyyaml": "6.0.4", "ipython": "9.0", "affsr": "0.1.0", "torch": "2.13.0"}
    lock = ("numpy==2.4.5 \\\n    --hash=sha256:" + "0" * 64 + "\n"
            "PyYAML==6.0.4 \\\n    --hash=sha256:" + "1" * 64 + "\n"
            "scipy==1.17.1\n"
            "pywin32==312 ; sys_platform == 'win32' \\\n    --hash=sha256:" + "2" * 64 + "\n")
    assert lock_differences(lock, installed) == [
        "numpy 2.4.6 installed, 2.4.5 locked",
        "scipy==1.17.1 missing",  # pywin32 is conditional: absent is fine
        "ipython 9.0 installed, not in the lock",  # affsr and torch are never in it
    ]
    path = tmp_path / "lock.txt"
    path.write_text(lock)
    record = install_record(path)
    table = dict(zip(record.item, record.value))
    assert table["installed as locked"].startswith("no: ") and "numpy" in table["installed as locked"]
    assert table["lock sha256"] == hashlib.sha256(lock.encode()).hexdigest()
    missing = dict(install_record(tmp_path / "none.txt").itertuples(index=False))
    assert "not found" in missing["lock"] and missing["lock sha256"] == "none"
