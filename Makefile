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

.PHONY: run test bench dag report clean-results help

help:
	@echo "make run    - bootstrap .venv, run the default experiment (config/config.yaml)"
	@echo "make test   - bootstrap .venv, run the test suite"
	@echo "make bench  - run the benchmarks in benchmarks/"
	@echo "make dag    - print the job DAG of the default experiment (dot format)"

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	# torch is pinned to the CPU build on disk here; on a GPU node install the CUDA build first.
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/snakemake --cores $(CORES) $(SNAKEMAKE_ARGS)
	$(BIN)/snakemake --cores $(CORES) --report results/$$($(BIN)/python -c "import yaml;print(yaml.safe_load(open('config/config.yaml'))['experiment'])")/report.html $(SNAKEMAKE_ARGS)

test: $(STAMP)
	$(BIN)/python -m pytest -q

bench: $(STAMP)
	@for b in benchmarks/bench_*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

dag: $(STAMP)
	$(BIN)/snakemake --dag $(SNAKEMAKE_ARGS)
