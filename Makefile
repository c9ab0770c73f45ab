# The two commands of the README:
#   make study   # create .venv if missing, install, run the whole default study (Snakemake), record it for DVC
#   make test    # same venv, run the test suite
#
# Installing (docs/running.md, "Installing"): a new venv gets requirements/lock.txt exactly (every package
# but torch and affsr: exact versions, each file checked against its sha256), then torch, then affsr.
#   make venv                     torch 2.13.0, CPU build, from PyTorch's CPU index (the default; CI)
#   make venv TORCH_BUILD=cu130   torch 2.13.0, CUDA 13.0 build (pulls its own nvidia/cuda wheels, triton)
#   make lock                     remake requirements/lock.txt after editing pyproject.toml
# To switch builds in an existing venv, `rm -rf .venv` first: pip keeps the torch 2.13.0 it has.

PYTHON ?= python3
VENV   ?= .venv
# torch is pinned here, not in the lock: its wheel differs by build. TORCH_BUILD picks PyTorch's index:
# cpu (CPU only: ≈ 1.7 GB venv) or a CUDA build such as cu130 (the CUDA of PyPI's own Linux wheel of
# torch 2.13.0, which is a CUDA build: 18 nvidia/cuda wheels and triton besides torch; issue 25 measured
# a ≈ 5.8 GB venv).
TORCH       ?= torch==2.13.0
TORCH_BUILD ?= cpu
TORCH_INDEX ?= https://download.pytorch.org/whl/$(TORCH_BUILD)
LOCK   := requirements/lock.txt
CORES  ?= all
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
LOCKED := $(VENV)/.lock-sha256

# after a study: its results into dvc.lock, the outputs DVC tracks as they are (no stage is run)
DVC_RECORD := if git rev-parse --is-inside-work-tree >/dev/null 2>&1 && test -d .dvc; then \
	$(BIN)/dvc commit --force --quiet && echo "recorded in dvc.lock: dvc status is clean"; \
	else echo "not a git clone with .dvc/: no DVC record (dvc.lock) made"; fi

.PHONY: study study-cpu study-box test venv dry-run lint report report-cpu publish publish-cpu repro clean-results

# (0) pip as the lock pins it (the lock's own lines for pip, hashes included): with the pip a new venv
#     comes with (23.2 on Python 3.11) step 1 takes ≈ 30 s longer;
# (1) the lock, in pip's hash-checking mode: every file must match a sha256 in the lock, and a dependency
#     the lock lacks is an error;
# (2) torch from $(TORCH_INDEX): its CPU dependencies are already there from the lock; a CUDA build adds
#     its own, as torch's metadata pins them (most to an exact version, none by hash). The index comes
#     before $(TORCH), so the older form TORCH="torch==2.13.0 --index-url URL" still wins. Where PyTorch's
#     index cannot be reached (the machines this is built on), pip warns, retries five times (≈ 8 s) and
#     takes the 2.13.0+cpu wheel from the machine's own wheel folder (PIP_FIND_LINKS), if it has one;
# (3) affsr, editable, --no-deps (its dependencies are the lock's) and --no-build-isolation (built with
#     the locked setuptools: nothing unlocked is fetched);
# (4) pip check: every requirement of everything installed is met.
# It reruns when pyproject.toml is newer than the stamp or the lock's content changed ($(LOCKED) below).
$(STAMP): pyproject.toml $(LOCKED)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	awk '/^pip==/ {pin = 1} pin {print} pin && !/\\$$/ {exit}' $(LOCK) | \
		$(BIN)/python -m pip install --quiet --require-hashes -r /dev/stdin
	$(BIN)/python -m pip install --quiet --require-hashes -r $(LOCK)
	$(BIN)/python -m pip install --quiet --index-url $(TORCH_INDEX) $(TORCH)
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .
	$(BIN)/python -m pip check
	touch $(STAMP)

venv: $(STAMP)

# The sha256 of the lock, rewritten only when it differs: a new lock reinstalls the venv, while a copy of
# the same lock with a newer time (a fresh clone, a checkout) does not.
$(LOCKED): FORCE
	@mkdir -p $(VENV) && digest=$$($(PYTHON) -c "import hashlib, sys; \
		print(hashlib.sha256(open(sys.argv[1], 'rb').read()).hexdigest())" $(LOCK)) && \
	if [ "$$(cat $@ 2>/dev/null)" != "$$digest" ]; then echo "$$digest" > $@; fi
.PHONY: FORCE
FORCE:

# Remake requirements/lock.txt from pyproject.toml (dependencies, extras workflow and test) and
# requirements/lock.in, from PyPI, with uv: one universal lock (Linux, macOS, Windows; Python >= 3.11)
# with the sha256 of every file of each pinned release. torch is left out (above) and so are its CUDA
# requirements (requirements/torch-cuda-only.txt), so the lock holds torch's CPU dependencies. Pins already
# in the lock are kept where they still fit: `make lock UPGRADE=--upgrade` moves every pin to the newest
# release, `make lock UPGRADE="--upgrade-package numpy"` one. uv runs from a throwaway venv; commit the lock.
UV      := uv==0.13.10
UPGRADE ?=
.PHONY: lock
lock:
	tmp=$$(mktemp -d) && trap 'rm -rf "$$tmp"' EXIT && $(PYTHON) -m venv "$$tmp" && \
	"$$tmp/bin/python" -m pip install --quiet $(UV) && \
	"$$tmp/bin/uv" pip compile pyproject.toml requirements/lock.in --extra workflow --extra test \
		--universal --python-version 3.11 --generate-hashes --no-emit-package torch \
		--excludes requirements/torch-cuda-only.txt --custom-compile-command "make lock" $(UPGRADE) \
		--output-file $(LOCK)

# Snakemake runs the study; then `dvc commit` records its results in dvc.lock (hashes; data/ and runs/
# also go into the local cache .dvc/cache), so `dvc status` is clean and `dvc repro` agrees (dvc.yaml).
# dvc.lock stays uncommitted (it records results git does not hold). DVC needs a git clone: elsewhere
# the record is skipped.
study: $(STAMP)
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/snakemake --snakefile workflow/Snakefile --cores $(CORES)
	$(BIN)/affsr summary results/metrics.csv
	@$(DVC_RECORD)

# the CPU realism tier (params.yaml `cpu:`), written to studies/cpu/
study-cpu: $(STAMP)
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/snakemake --snakefile workflow/Snakefile --cores $(CORES) --config study=cpu
	$(BIN)/affsr summary studies/cpu/results/metrics.csv

# the default study with the box-constrained projection (params.yaml `box:`), written to studies/box/
study-box: $(STAMP)
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/snakemake --snakefile workflow/Snakefile --cores $(CORES) --config study=box
	$(BIN)/affsr summary studies/box/results/metrics.csv

test: $(STAMP)
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/python -m pytest -q

# the paper-scale smoke study (params.yaml `smoke:` over `paper:`): every paper-scale network, shape and
# rule, on stand-in archives served over HTTP, in studies/smoke/ (≈ 15 min on 2 cores; CI runs it)
.PHONY: smoke
smoke: $(STAMP)
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/python scripts/smoke_study.py --cores 2

publish: $(STAMP)
	$(BIN)/affsr publish --results results --to docs/results --root .

report-cpu: $(STAMP)
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/snakemake --snakefile workflow/Snakefile --config study=cpu --report results/report.html
	@echo "open studies/cpu/results/report.html in a browser"

publish-cpu: $(STAMP)
	$(BIN)/affsr publish --results studies/cpu/results --to docs/results --tier cpu --root .

# DVC's view of the same workflow (dvc.yaml's stages call Snakemake): `dvc repro` with the venv on PATH.
# Same results as `make study` (either one after the other finds nothing to do).
repro: $(STAMP)
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/dvc repro

# remove the default study's outputs (data/ and runs/ stay): the next `make study` re-evaluates everything
clean-results:
	find results -mindepth 1 -maxdepth 1 ! -name README.md -exec rm -rf {} +

report: $(STAMP)
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/snakemake --snakefile workflow/Snakefile --report results/report.html
	@echo "open results/report.html in a browser"

dry-run: $(STAMP)
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/snakemake --snakefile workflow/Snakefile -n --cores 1

lint: $(STAMP)
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/snakemake --snakefile workflow/Snakefile --lint
