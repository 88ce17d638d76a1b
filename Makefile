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

.PHONY: run test reliability bench dag report help

help:
	@echo "make run          - bootstrap .venv, run the default experiment (config/config.yaml) and its report"
	@echo "make test         - bootstrap .venv, run the test suite"
	@echo "make reliability  - the reliability suite alone, with its table of cases"
	@echo "make bench        - run the benchmarks in benchmarks/"
	@echo "make dag          - print the job DAG of the default experiment (dot format)"
	@echo "make report       - the HTML report of the default experiment's results"

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	# torch is pinned to the CPU build on disk here; on a GPU node install the CUDA build first.
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

REPORT = $$($(BIN)/python -c "from prefsweep.config import load_config; from prefsweep.paths import layout; print(layout(load_config(check=False)).report())")

run: $(STAMP)
	$(BIN)/snakemake --cores $(CORES) $(SNAKEMAKE_ARGS)
	$(MAKE) --no-print-directory report

report: $(STAMP)
	$(BIN)/snakemake --cores $(CORES) --report $(REPORT) $(SNAKEMAKE_ARGS)

test: $(STAMP)
	$(BIN)/python -m pytest -q

reliability: $(STAMP)
	$(BIN)/python -m pytest -q tests/reliability

bench: $(STAMP)
	@for b in benchmarks/bench_*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

dag: $(STAMP)
	$(BIN)/snakemake --dag $(SNAKEMAKE_ARGS)
