# prefsweep: `make run` runs the default experiment end to end, `make test` runs the tests.
# Both bootstrap .venv from pyproject.toml on first use (and again when it changes).

SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
CORES ?= 2
SNAKEMAKE_ARGS ?=
export PATH := $(CURDIR)/$(BIN):$(PATH)
export HF_HUB_OFFLINE ?= 1
export TOKENIZERS_PARALLELISM := false

.PHONY: run test reliability bench dag report help slurm-deps plan gpu-check

help:
	@echo "make run          - bootstrap .venv, run the default experiment (config/config.yaml) and its report"
	@echo "make test         - bootstrap .venv, run the test suite"
	@echo "make reliability  - the reliability suite alone, with its table of cases"
	@echo "make bench        - run the benchmarks in benchmarks/, write benchmarks/RESULTS.md (BENCH_ARGS=...)"
	@echo "make dag          - print the job DAG of the default experiment (dot format)"
	@echo "make plan         - jobs, GPU memory, GPU-hours, judge calls and cost, disk of an experiment (CONFIG=file GPU=type)"
	@echo "make gpu-check    - the e2e experiment on CUDA (bf16), its tables compared with a CPU run's shape"
	@echo "make report       - the HTML report of the default experiment's results"
	@echo "make slurm-deps   - install the Debian packages the Slurm test runs (if missing)"

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	# torch is pinned to the CPU build on disk here; on a GPU node install the CUDA build first.
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

REPORT = $$($(BIN)/python -c "from prefsweep.config import load_config; from prefsweep.paths import layout; print(layout(load_config(check=False)).report())")

run: $(STAMP)
	$(BIN)/snakemake --profile profiles/local --cores $(CORES) $(SNAKEMAKE_ARGS)
	$(MAKE) --no-print-directory report

report: $(STAMP)
	$(BIN)/snakemake --profile profiles/local --cores $(CORES) --report $(REPORT) $(SNAKEMAKE_ARGS)

test: $(STAMP) slurm-deps
	$(BIN)/python -m pytest -q

reliability: $(STAMP) slurm-deps
	$(BIN)/python -m pytest -q tests/reliability

# tests/slurm/ starts a one-node Slurm from these Debian packages. Quiet when they are installed;
# without apt-get or root (and no sudo) it says so and the Slurm test skips, naming the packages.
SLURM_DEBS := slurm-wlm munge slurmdbd mariadb-server
slurm-deps:
	@missing=$$(for p in $(SLURM_DEBS); do dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  sudo=$$([ "$$(id -u)" = 0 ] || { command -v sudo >/dev/null && echo sudo -n; }); \
	  if command -v apt-get >/dev/null && { [ "$$(id -u)" = 0 ] || [ -n "$$sudo" ]; }; then \
	    echo "Installing $$missing (Debian packages for tests/slurm/)"; \
	    { $$sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y -qq --no-install-recommends $$missing >/dev/null; } \
	      || echo "Installing $$missing failed: the Slurm test will skip"; \
	  else \
	    echo "Cannot install $$missing (needs apt-get and root or sudo): the Slurm test will skip"; \
	  fi; \
	fi

# BENCH_ARGS: e.g. --reuse-run . (after make run), --only bench_dag, --scale small (see benchmarks/run_all.py)
BENCH_ARGS ?=
bench: $(STAMP)
	$(BIN)/python benchmarks/run_all.py $(BENCH_ARGS)

dag: $(STAMP)
	$(BIN)/snakemake --dag $(SNAKEMAKE_ARGS)

# What an experiment costs before it runs (nothing is trained or sent): `make plan` for the
# default experiment, `make plan CONFIG=config/pythia-2.8b-shp.yaml GPU=h100-80gb` for another.
CONFIG ?=
GPU ?=
plan: $(STAMP)
	PYTHONPATH=$(CURDIR) $(BIN)/python scripts/plan.py $(if $(CONFIG),--configfile $(CONFIG)) $(if $(GPU),--gpu $(GPU))

# The e2e experiment on a CUDA GPU (bf16 training, answers on the GPU) in a scratch directory,
# its tables compared with a CPU run's (same rows and columns). Fails at once without CUDA.
gpu-check: $(STAMP)
	PYTHONPATH=$(CURDIR) $(BIN)/python scripts/gpu_check.py
