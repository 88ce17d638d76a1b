# prefsweep: `make run` runs the default experiment end to end, `make test` runs the tests.
# Both bootstrap .venv from pyproject.toml on first use (and again when it changes).

SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
CORES ?= 2
SNAKEMAKE_ARGS ?=
# CONFIG: the experiment's config files, merged over config/config.yaml in that order, e.g.
# CONFIG="config/paper/base.yaml config/paper/shp.yaml" (one --configfile: a second
# --configfile option would replace the first). run, report, dag, plan and rerun all follow it,
# and the report goes to that experiment's results/<experiment>/report.html. A --configfile in
# SNAKEMAKE_ARGS is read the same way; giving both is an error (scripts/make_config.py).
CONFIG ?=
CONFIG_ARGS = $(if $(strip $(CONFIG)),--configfile $(CONFIG))
# $(call q,TEXT): TEXT as one single-quoted shell word
q = '$(subst ','\'',$(1))'
MAKE_CONFIG = PYTHONPATH=$(call q,$(CURDIR)) $(BIN)/python scripts/make_config.py --config=$(call q,$(CONFIG)) \
	--snakemake-args=$(call q,$(SNAKEMAKE_ARGS))
# Computed once, when a recipe first uses it (also under make -n); empty when the config is given
# twice or is broken.
REPORT = $(eval REPORT := $(shell $(MAKE_CONFIG) report-path))$(REPORT)
export PATH := $(CURDIR)/$(BIN):$(PATH)
export HF_HUB_OFFLINE ?= 1
export TOKENIZERS_PARALLELISM := false

.PHONY: run test reliability bench dag report help slurm-deps plan gpu-check rerun

help:
	@echo "make run          - bootstrap .venv, run the default experiment (config/config.yaml) and its report (CONFIG=files)"
	@echo "make test         - bootstrap .venv, run the test suite"
	@echo "make reliability  - the reliability suite alone, with its table of cases"
	@echo "make bench        - run the benchmarks in benchmarks/, write benchmarks/RESULTS.md (BENCH_ARGS=...)"
	@echo "make dag          - print the job DAG of the experiment (dot format; CONFIG=files)"
	@echo "make plan         - jobs, GPU memory, GPU-hours, judge calls and cost, disk of an experiment (CONFIG=files GPU=type)"
	@echo "make gpu-check    - the e2e experiment on CUDA (bf16), its tables compared with a CPU run's shape"
	@echo "make report       - the HTML report of the experiment's results, in results/<experiment>/ (CONFIG=files)"
	@echo "make rerun        - retrain TARGET=results/<exp>/train/<run>/final (or TARGET=dpo) from scratch, checkpoints moved aside"
	@echo "make slurm-deps   - install the Debian packages the Slurm test runs (if missing)"

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	# torch is pinned to the CPU build on disk here; on a GPU node install the CUDA build first.
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

run: $(STAMP)
	@$(MAKE_CONFIG) check
	$(BIN)/snakemake --profile profiles/local --cores $(CORES) $(CONFIG_ARGS) $(SNAKEMAKE_ARGS)
	$(MAKE) --no-print-directory report

report: $(STAMP)
	$(if $(REPORT),,$(error make report: no report path for this config (see the message above)))
	$(BIN)/snakemake --profile profiles/local --cores $(CORES) $(CONFIG_ARGS) --report $(call q,$(REPORT)) $(SNAKEMAKE_ARGS)

# A forced rerun (snakemake -f / -R) resumes from the run's checkpoints and ends with the same
# weights; this moves them aside first (never deletes them) and reruns from scratch:
# make rerun TARGET=results/default/train/dpo/sc/size/n64/seed1/final, or TARGET=dpo (every DPO job).
TARGET ?=
rerun: $(STAMP)
	@test -n $(call q,$(TARGET)) || { echo "make rerun: give TARGET=results/<experiment>/train/<run>/final (or a training rule: base_model, sft, sft_baseline, dpo)" >&2; exit 2; }
	@$(MAKE_CONFIG) check
	PYTHONPATH=$(call q,$(CURDIR)) $(BIN)/python scripts/rerun_fresh.py $(call q,$(TARGET)) $(CONFIG_ARGS) -- --profile profiles/local --cores $(CORES) $(SNAKEMAKE_ARGS)

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
	@$(MAKE_CONFIG) check
	@$(BIN)/snakemake --dag $(CONFIG_ARGS) $(SNAKEMAKE_ARGS)

# What an experiment costs before it runs (nothing is trained or sent): `make plan` for the
# default experiment, `make plan CONFIG="config/paper/base.yaml config/paper/shp.yaml" GPU=h100-80gb`
# for another.
GPU ?=
PLAN_FILES = $(shell $(MAKE_CONFIG) configfiles)
plan: $(STAMP)
	@$(MAKE_CONFIG) check
	PYTHONPATH=$(call q,$(CURDIR)) $(BIN)/python scripts/plan.py $(if $(PLAN_FILES),--configfile $(PLAN_FILES)) $(if $(GPU),--gpu $(GPU))

# The e2e experiment on a CUDA GPU (bf16 training, answers on the GPU) in a scratch directory,
# its tables compared with a CPU run's (same rows and columns). Fails at once without CUDA.
gpu-check: $(STAMP)
	PYTHONPATH=$(call q,$(CURDIR)) $(BIN)/python scripts/gpu_check.py
