"""The data-source registry (prefsweep/data/sources/registry.py): every built-in source meets the
contract, the schema and the registry name the same sources, and a source registered from outside
(a toy, here) goes through load_source, the ballots job's slice, the workflow's input and
fingerprint helpers, the config checks and the resource estimates like a built-in one."""

from __future__ import annotations

import copy
import json

import pytest

from prefsweep.config import ConfigError, job_config, load_schema
from prefsweep.cost import resources as R
from prefsweep.data.ballots import BallotError, validate_ballots
from prefsweep.data.sources import check_source, load_source, source_local_copy, source_user_file
from prefsweep.data.sources.registry import SOURCES, Source, SourceBallots, get_source, register
from prefsweep.experiment import check_experiment
from tests.conftest import load_config

BUILT_IN = ("synthetic", "jsonl", "shp", "multipref", "helpsteer2", "ultrafeedback", "prism", "hh")


@pytest.fixture(scope="module")
def default_config() -> dict:
    return load_config()


def data_schema() -> dict:
    return load_schema()["properties"]["data"]["properties"]


def with_source(config: dict, name: str, **section) -> dict:
    cfg = copy.deepcopy(config)
    cfg["data"]["source"] = name
    cfg["data"].setdefault(name, {}).update(section)
    return cfg


def test_all_eight_sources_are_registered_and_meet_the_contract(default_config):
    assert tuple(SOURCES) == BUILT_IN
    sections = data_schema()
    for name, source in SOURCES.items():
        assert isinstance(source, Source) and source.name == name and get_source(name) is source
        assert source.card.strip(), name
        assert callable(source.load) and callable(source.check), name
        keys = sections[name]["properties"]
        for key in (source.user_file, source.local_copy):  # keys of the source's own section
            assert key is None or key in keys, (name, key)
        data = with_source(default_config, name)["data"]
        for hint in (source.train_prompts, source.pairs_per_prompt):
            value = hint(data)
            assert value is None or (isinstance(value, int) and value > 0), (name, value)
        assert set(source.ballots_job) == {"mem_mb", "runtime"} and min(source.ballots_job.values()) > 0
    # the data sets carry a citation; the data made here do not need one
    assert all(SOURCES[n].citation for n in BUILT_IN[2:])


def test_the_schema_sections_are_registered_sources(default_config):
    """``data.source`` is open in the schema (a new source is one module; the experiment check
    refuses an unregistered name); every settings section ``data.<name>`` belongs to a registered
    source, and every built-in source has its section."""
    props = data_schema()
    assert "enum" not in props["source"] and props["source"]["default"] in SOURCES
    sections = {key for key, node in props.items() if node.get("type") == "object"}
    assert sections <= set(SOURCES) and set(BUILT_IN) <= sections


def test_the_ballots_slice_holds_only_the_chosen_sources_section(default_config):
    for name in SOURCES:
        cfg = with_source(default_config, name)
        data = job_config(cfg, "ballots")["data"]
        assert set(data) == {"source", "seed", name, "candidate_turn_markers"}, name
        assert data[name] == cfg["data"][name]
    # editing another source's section reruns no ballots job; editing the chosen one does
    changed = copy.deepcopy(default_config)
    changed["data"]["shp"]["max_posts"] = 7
    assert json.dumps(job_config(changed, "ballots")) == json.dumps(job_config(default_config, "ballots"))
    changed["data"]["synthetic"]["noise"] = 0.1
    assert job_config(changed, "ballots") != job_config(default_config, "ballots")


def test_workflow_input_and_fingerprint_come_from_the_registry(default_config, tmp_path):
    ballots = tmp_path / "mine.jsonl"
    assert source_user_file(with_source(default_config, "jsonl", path=str(ballots))) == str(ballots)
    assert source_local_copy(with_source(default_config, "jsonl", path=str(ballots))) is None
    assert source_user_file(default_config) is None and source_local_copy(default_config) is None
    for name in ("shp", "multipref", "helpsteer2", "ultrafeedback", "prism", "hh"):
        cfg = with_source(default_config, name, path=str(tmp_path / name))
        assert source_local_copy(cfg) == str(tmp_path / name) and source_user_file(cfg) is None


def test_resource_estimates_are_unchanged_for_the_built_in_sources(default_config):
    data = default_config["data"]
    k = data["synthetic"]["n_candidates"]
    assert R.default_n_pairs(default_config, "sft") == data["synthetic"]["n_prompts"] - data["n_eval_prompts"]
    assert R.default_n_pairs(default_config, "pair_accuracy") == data["n_eval_prompts"] * k * (k - 1) // 2
    shp = with_source(default_config, "shp", max_posts=321)
    assert R.default_n_pairs(shp, "sft") == 321
    assert R.default_n_pairs(with_source(default_config, "hh", max_prompts=55), "sft") == 55
    assert R.default_n_pairs(with_source(default_config, "jsonl"), "sft") == max(data["sizes"])
    assert R.default_n_pairs(shp, "pair_accuracy") == data["n_eval_prompts"] * R.EVAL_PAIRS_PER_PROMPT
    for name in SOURCES:
        cfg = with_source(default_config, name)
        assert [R.resource_function(cfg, "ballots", key)(None) for key in ("mem_mb", "runtime")] == [4000, 30]


# -- a source from outside the package --------------------------------------------------------


def toy_records(n: int) -> list[dict]:
    recs = []
    for i in range(n):
        cands = [{"id": "a", "text": f"answer a{i}"}, {"id": "b", "text": f"answer b{i}"},
                 {"id": "c", "text": f"answer c{i}\n\nHuman: and now?"}]  # a turn marker of style hh
        recs.append({"prompt_id": f"toy{i}", "prompt": f"question {i}", "topic": "toy", "candidates": cands,
                     "votes": [{"ranking": [["c"], ["a"], ["b"]], "weight": 1.0, "voter": "v", "group": "g"}]})
    return recs


def toy_load(config: dict, source_file) -> SourceBallots:
    n = config["data"]["toy"]["n"]
    where = f"toy ballots ({n})"
    return SourceBallots(validate_ballots(toy_records(n), where, unit="record", distinct_texts=True), where, "record")


def toy_check(data) -> None:
    if data["toy"]["n"] > 10:
        raise ConfigError(f"data.toy.n: {data['toy']['n']} is more than the toy has (10)")


@pytest.fixture
def toy():
    """A source registered for the test only (removed from the registry after it)."""
    source = register(Source(name="toy", card="tests/unit/test_source_registry.py", load=toy_load, check=toy_check,
                             train_prompts=lambda data: data["toy"]["n"], pairs_per_prompt=lambda data: 3,
                             ballots_job={"mem_mb": 9000, "runtime": 45}))
    yield source
    del SOURCES["toy"]


def toy_config(default_config: dict, n: int = 3, mode: str = "drop") -> dict:
    cfg = with_source(default_config, "toy", n=n)
    cfg["data"]["candidate_turn_markers"] = mode
    return cfg


def test_a_registered_toy_source_is_loaded_and_screened_through_load_source(toy, default_config):
    cfg = toy_config(default_config)
    records = load_source(job_config(cfg, "ballots"), None)
    assert [r["prompt_id"] for r in records] == ["toy0", "toy1", "toy2"]
    # the candidate with a turn marker is screened out with the vote's tier that named it
    assert all([c["id"] for c in r["candidates"]] == ["a", "b"] for r in records)
    assert records[0]["votes"][0]["ranking"] == [["a"], ["b"]]
    with pytest.raises(BallotError, match=r"toy ballots \(3\): record 1 \(prompt_id 'toy0'\): candidates\[2\]\.text"):
        load_source(toy_config(default_config, mode="error"), None)
    with pytest.raises(ValueError, match=r"--source-file x.jsonl: data.source is 'toy'; .* only for data.source 'jsonl'"):
        load_source(cfg, "x.jsonl")


def test_a_registered_toy_source_reaches_slice_checks_and_resources(toy, default_config):
    cfg = toy_config(default_config)
    assert job_config(cfg, "ballots")["data"]["toy"] == {"n": 3}
    assert "synthetic" not in job_config(cfg, "ballots")["data"]
    assert source_user_file(cfg) is None and source_local_copy(cfg) is None
    check_source(cfg)
    with pytest.raises(ConfigError, match=r"data\.toy\.n: 11"):
        check_source(toy_config(default_config, n=11))
    assert R.default_n_pairs(cfg, "sft") == 3 and R.default_n_pairs(cfg, "pair_accuracy") == 3 * cfg["data"]["n_eval_prompts"]
    assert R.resource_function(cfg, "ballots", "mem_mb")(None) == 9000
    assert R.resource_function(cfg, "ballots", "runtime")(None) == 45


def test_registering_twice_or_asking_for_an_unknown_source_names_it(toy):
    with pytest.raises(ValueError, match="'toy' is registered twice"):
        register(toy)
    with pytest.raises(ValueError, match=r"data.source: unknown source 'nope' \(expected one of 'synthetic', 'jsonl', .*, 'toy';"):
        get_source("nope")


def test_source_checks_run_with_the_experiments(default_config, tmp_path):
    """The checks that were config-layer branches on the source name now live with their source."""
    small = copy.deepcopy(default_config)
    small["data"]["sizes"] = [0, 10**6]
    with pytest.raises(ConfigError, match=r"data\.sizes: \[1000000\] cannot be reached.*data\.synthetic\.n_prompts"):
        check_experiment(small)
    missing = with_source(default_config, "jsonl", path=str(tmp_path / "nowhere.jsonl"))
    missing["eval"]["judge"]["type"] = "llm"
    with pytest.raises(ConfigError, match=r"data\.jsonl\.path: .*nowhere\.jsonl: no such file"):
        check_experiment(missing)
