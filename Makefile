# The two commands of the README:
#   make study   # create .venv if missing, install, run the whole default study (Snakemake), record it for DVC
#   make test    # same venv, run the test suite
# CPU default: torch 2.13.0 CPU. For a GPU: `make venv TORCH="torch==2.13.0 --index-url ..."` (README).

PYTHON ?= python3
VENV   ?= .venv
TORCH  ?= torch==2.13.0
CORES  ?= all
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

# after a study: its results into dvc.lock, the outputs DVC tracks as they are (no stage is run)
DVC_RECORD := if git rev-parse --is-inside-work-tree >/dev/null 2>&1 && test -d .dvc; then \
	$(BIN)/dvc commit --force --quiet && echo "recorded in dvc.lock: dvc status is clean"; \
	else echo "not a git clone with .dvc/: no DVC record (dvc.lock) made"; fi

.PHONY: study study-cpu study-box test venv dry-run lint report report-cpu publish publish-cpu repro clean-results

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet $(TORCH)
	$(BIN)/python -m pip install --quiet -e ".[workflow,test]"
	touch $(STAMP)

venv: $(STAMP)

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
