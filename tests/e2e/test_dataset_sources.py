"""Each dataset source through the workflow: a local copy in the dataset's own schema
(tests/fixtures/datasets.py) through the data stage (``data_all``: ballots, split, pools,
series, SFT corpus, eval questions, group pairs) for every source, and from there through DPO
on a tiny model, answers, the LLM judge on a loopback server and the win-rate table for
:data:`FULL_RUNS` (the jobs after the ballots are the same code for every source).

Kept cheap: one size (4 pairs), one seed, size matching only, no checkpoints, DPO from the base
model (no SFT job), the runs sharing one tiny base model (``model.preset: hf`` pointing at a
directory built once per module) and one judge server. Measured on the 2-core machine: the data
stage 12-14 s a source (``make test``, quiet machine); from data to win rates 85-96 s a source
for helpsteer2, ultrafeedback, prism, hh and shp, 256 s for multipref while other tests shared
the machine (all six: ``PREFSWEEP_E2E_FULL_SOURCES=multipref,helpsteer2,ultrafeedback,prism,hh,shp
pytest tests/e2e/test_dataset_sources.py -k win_rates``, 6 passed in 753 s). Nine minutes is
more than ``make test`` has room for, so the full runs are opt-in (:data:`FULL_RUNS`).
"""

from __future__ import annotations

import json
import os
import time

import pandas as pd
import pytest

from prefsweep.data.sources.registry import SOURCES as REGISTRY
from prefsweep.paths import Layout
from tests.fixtures import datasets as fx
from tests.test_dag import snakemake

pytestmark = pytest.mark.e2e

#: The series size: every fixture's rule arm reaches it on the prompts where maj has a pair (the
#: only prompts another arm may use; multipref's fixture has 7 such sc pairs).
SIZE = 4
#: Every source read through ``datasets.load_dataset`` (a local copy may stand in for the hub):
#: a new one without a fixture in tests/fixtures/datasets.py fails here.
SOURCES = tuple(name for name, s in REGISTRY.items() if s.local_copy is not None)
#: Sources also run from the data stage to the win-rate table: opt-in (``make test`` has no room
#: for them; see the module doc for the cost), e.g. ``PREFSWEEP_E2E_FULL_SOURCES=multipref,hh``.
FULL_RUNS = tuple(s for s in os.environ.get("PREFSWEEP_E2E_FULL_SOURCES", "").split(",") if s)


@pytest.fixture(scope="module")
def tiny_base(tmp_path_factory):
    from tests.unit.train_helpers import build_tiny_dir

    return build_tiny_dir(tmp_path_factory.mktemp("tiny-base"))


@pytest.fixture(scope="module")
def judge():
    from tests.fixtures.judge_server import JudgeServer

    with JudgeServer() as server:
        yield server


def source_config(source: str, data_dir, tiny_base, api_base: str) -> str:
    """The run's config (YAML as JSON) merged over config/config.yaml."""
    spec = {"path": str(data_dir)}
    if source == "hh":
        spec["data_dir"] = "helpful-base"
    cfg = {
        "experiment": f"{source}-e2e",
        "data": {"source": source, source: spec, "n_eval_prompts": 4, "sizes": [0, SIZE], "matchings": ["size"]},
        "model": {"preset": "hf", "name_or_path": str(tiny_base)},
        "dpo": {"init": "base", "seeds": [1], "per_device_train_batch_size": 8, "num_train_epochs": 1,
                "max_length": 128, "save_steps": 100, "learning_rate": 2.0e-3},
        "eval": {"baseline": "reference", "checkpoints": False, "generation": {"max_new_tokens": 8},
                 "bootstrap": {"n": 100},
                 "judge": {"type": "llm", "api_base": api_base, "api_key_env": None, "parallel": 2,
                           "max_retries": 1, "timeout": 20}},
        "wandb": {"mode": "disabled"},
    }
    if source == "hh":  # SFT data: HH's chosen responses of another split
        cfg["sft"] = {"data": {"source": "hh", "path": str(data_dir), "data_dir": "helpful-base", "split": "test"},
                      "num_train_epochs": 1, "max_length": 128}
    return json.dumps(cfg)


def prepare(tmp_path, source, tiny_base, api_base):
    data_dir = fx.write_fixture(source, tmp_path / "dataset", n_prompts=20)
    config = tmp_path / "config.yaml"
    config.write_text(source_config(source, data_dir, tiny_base, api_base))
    run = tmp_path / "run"
    run.mkdir()
    return config, run, Layout(f"{source}-e2e")


@pytest.mark.parametrize("source", SOURCES)
def test_source_data_stage(tmp_path, tiny_base, judge, source):
    config, run, L = prepare(tmp_path, source, tiny_base, judge.api_base)
    t0 = time.perf_counter()
    snakemake("data_all", "--cores", "2", "--configfile", str(config), cwd=run)
    print(f"{source}: data stage in {time.perf_counter() - t0:.1f} s")
    ballots = [json.loads(line) for line in open(run / L.ballots())]
    assert len(ballots) == 20
    split = json.loads((run / L.split()).read_text())
    assert len(split["eval_prompt_ids"]) == 4 and len(split["train_order"]) == 16
    for arm, matching in (("maj", "shared"), ("sc", "size")):
        manifest = json.loads((run / L.series_manifest(arm, matching, SIZE)).read_text())
        assert manifest["n_pairs"] == SIZE
    groups = pd.read_parquet(run / L.eval_group_pairs())
    voted = {v.get("group") for r in ballots if r["prompt_id"] in split["eval_prompt_ids"] for v in r["votes"]} - {None}
    assert set(groups["group"]) <= voted and (len(groups) > 0) == bool(voted)
    if source in ("multipref", "helpsteer2", "ultrafeedback", "prism"):
        assert len(groups) > 0
    sft = [json.loads(line) for line in open(run / L.sft_corpus())]
    if source == "hh":  # sft.data hh: the test split's chosen responses, none an eval prompt
        assert len(sft) == len(fx.hh_rows(4, 1, start=1000)) and all(r["prompt_id"].startswith("hh-") for r in sft)
    else:
        assert len(sft) == 16


@pytest.mark.parametrize("source", FULL_RUNS or [pytest.param("multipref", marks=pytest.mark.skip(
    reason="opt-in: PREFSWEEP_E2E_FULL_SOURCES=multipref,... (about 90 s a source on 2 cores)"))])
def test_source_runs_from_data_to_win_rates(tmp_path, tiny_base, judge, source):
    assert source in SOURCES, f"PREFSWEEP_E2E_FULL_SOURCES: unknown source {source!r} (one of {SOURCES})"
    config, run, L = prepare(tmp_path, source, tiny_base, judge.api_base)
    t0 = time.perf_counter()
    snakemake(L.table("win_rates"), "--cores", "2", "--configfile", str(config), cwd=run)
    print(f"{source}: data to win rates in {time.perf_counter() - t0:.1f} s")
    table = pd.read_csv(run / L.table("win_rates"))
    assert len(table[table["kind"] == "dpo"]) == 2  # maj shared, sc size
    assert table["win_rate"].between(0, 1).all() and (table["baseline"] == "reference").all()
    assert judge.n_requests > 0
