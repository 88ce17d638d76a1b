"""Shared test setup: the repo root, the venv's executables, an offline HF hub."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
#: The smallest full experiment (merged over config/config.yaml): the e2e and reliability runs.
E2E_CONFIG = REPO / "tests" / "e2e" / "config.yaml"

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("WANDB_MODE", "disabled")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture(scope="session")
def repo() -> Path:
    return REPO


@pytest.fixture(scope="session")
def default_config() -> dict:
    """config/config.yaml validated and filled with the schema's defaults."""
    return load_config()


def load_config(*extra: str) -> dict:
    """``config/config.yaml`` with ``extra`` (paths relative to the repo) merged over it,
    validated and filled with the schema's defaults (:func:`prefsweep.config.load_config`)."""
    from prefsweep.config import load_config as load

    return load(*(REPO / path for path in extra), check=False)


@pytest.fixture(scope="session")
def e2e_run(tmp_path_factory) -> Path:
    """One real, uninterrupted run of the e2e experiment (data to plots) in a temp working
    directory, shared by tests/e2e and tests/reliability."""
    from tests.test_dag import snakemake

    d = tmp_path_factory.mktemp("e2e")
    snakemake("--cores", "2", "--configfile", str(E2E_CONFIG), cwd=d)
    return d


@pytest.fixture(scope="session")
def scale_run(tmp_path_factory):
    """One run of the scale experiment (tests/scale/: the paper config's code path on a
    Pythia-shaped model, the LLM judge on a loopback server, a canary API key in the
    environment), shared by tests/scale and tests/reliability."""
    from tests.scale.run import run

    return run(tmp_path_factory.mktemp("scale"))


@pytest.fixture(scope="session", autouse=True)
def one_torch_thread():
    """Tiny models run fastest on one thread; two threads on a busy 2-core machine are several
    times slower (measured). Scripts run as subprocesses set their own thread count."""
    import torch

    torch.set_num_threads(1)


#: Tests moved to the start and to the end of the session (by function name): the Slurm test's
#: runs start first and are checked last (tests/slurm/test_slurm.py: ``runs``), so that their
#: waiting on the scheduler overlaps the other tests.
FIRST = ("test_runs_start",)
LAST = ("test_reduced_experiment_through_slurm_equals_local_run",)


def pytest_collection_modifyitems(session, config, items):
    first = [i for i in items if getattr(i, "originalname", i.name) in FIRST]
    last = [i for i in items if getattr(i, "originalname", i.name) in LAST]
    items[:] = first + [i for i in items if i not in first and i not in last] + last
