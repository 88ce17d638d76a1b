"""Dataset sources as ballots: each loader on a local copy in the dataset's own schema and layout
(tests/fixtures/datasets.py), through the same ``datasets.load_dataset`` call a run makes, and
the schema errors that name dataset, row and field."""

from __future__ import annotations

import copy
import gzip
import json
from pathlib import Path

import pytest

from prefsweep.data.ballots import BallotError
from prefsweep.data.sources import load_source
from prefsweep.data.sources.hf_dataset import text_id
from prefsweep.data.sources.hh import split_hh
from prefsweep.data.sources.registry import SOURCES, get_source
from tests.conftest import load_config
from tests.fixtures import datasets as fx


@pytest.fixture(scope="module")
def cfg() -> dict:
    return load_config()


@pytest.fixture(scope="module")
def cache(tmp_path_factory) -> str:
    return str(tmp_path_factory.mktemp("hf-cache"))


def spec(cfg: dict, source: str, path: Path, **over) -> dict:
    out = {**copy.deepcopy(cfg["data"][source]), "path": str(path), **over}
    if source == "hh" and "data_dir" not in over:
        out["data_dir"] = "helpful-base"
    return out


#: The sources read through ``datasets.load_dataset`` (their path may be a local copy).
DATASETS = tuple(name for name, s in SOURCES.items() if s.local_copy is not None)


def load(cfg, source, path, cache, **over):
    """The source's ballots from a local copy, through the registry as the ballots job reads
    them (``cache``: the hub cache, unused by a local copy)."""
    return get_source(source).load({"data": {source: spec(cfg, source, path, **over)}}, None).records


def test_every_dataset_source_has_a_config_section_and_a_fixture(cfg, tmp_path, cache):
    from prefsweep.config import schema_properties
    from prefsweep.data.sources import SOURCES

    assert set(DATASETS) == {"multipref", "helpsteer2", "ultrafeedback", "prism", "hh", "shp"}
    assert set(DATASETS) < set(SOURCES) and set(DATASETS) < set(schema_properties("data"))
    for source in DATASETS:
        assert "path" in cfg["data"][source]
        recs = load(cfg, source, fx.write_fixture(source, tmp_path / source, n_prompts=8), cache)
        assert len(recs) == 8, source


def test_multipref_one_vote_per_annotator_grouped_by_kind(cfg, tmp_path, cache):
    rows = fx.multipref_rows(12)
    recs = load(cfg, "multipref", fx.write_fixture("multipref", tmp_path / "mp", n_prompts=12), cache)
    by_id = {r["prompt_id"]: r for r in recs}
    assert list(by_id) == [f"p{i}" for i in range(12)]
    p0 = by_id["p0"]  # two comparisons: four candidates, 2 x (2 normal + 2 expert) votes
    assert p0["prompt"] == rows[0]["text"] and p0["topic"] == rows[0]["category"]
    assert [c["text"] for c in p0["candidates"]] == [rows[0]["completion_a"], rows[0]["completion_b"],
                                                    rows[1]["completion_a"], rows[1]["completion_b"]]
    assert len(p0["votes"]) == 8 and {v["group"] for v in p0["votes"]} == {"normal", "expert"}
    for v, ann in zip(p0["votes"][:4], rows[0]["normal_worker_annotations"] + rows[0]["expert_worker_annotations"]):
        kind = "normal" if ann["evaluator"].startswith("n") else "expert"
        assert v["voter"] == f"{kind}:{ann['evaluator']}" and v["pair"] == ["r1", "r2"]
        assert v["winner"] == {"a": "r1", "b": "r2", None: None}[
            {"A-is-clearly-better": "a", "A-is-slightly-better": "a", "Tie": None}.get(ann["overall_pref"], "b")]
    # another preference scale and only the experts
    helpful = load(cfg, "multipref", tmp_path / "mp", cache, preference="helpful", annotators=["expert"], max_prompts=3)
    assert len(helpful) == 3 and all(v["group"] == "expert" for r in helpful for v in r["votes"])
    assert helpful[1]["votes"][0]["winner"] == (None if rows[2]["expert_worker_annotations"][0]["helpful_pref"] == "Tie"
                                                else helpful[1]["votes"][0]["winner"])


def test_helpsteer2_one_voter_per_attribute_ranking_by_rating(cfg, tmp_path, cache):
    rows = fx.helpsteer2_rows(6)
    recs = load(cfg, "helpsteer2", fx.write_fixture("helpsteer2", tmp_path / "hs", n_prompts=6), cache)
    r0 = recs[0]
    assert r0["prompt_id"] == text_id("hs2", rows[0]["prompt"]) and r0["topic"] == "helpsteer2"
    assert [c["text"] for c in r0["candidates"]] == [rows[0]["response"], rows[1]["response"]]
    assert [v["voter"] for v in r0["votes"]] == list(cfg["data"]["helpsteer2"]["attributes"])
    for v in r0["votes"]:
        a, b = rows[0][v["voter"]], rows[1][v["voter"]]
        expected = [["r1", "r2"]] if a == b else ([["r1"], ["r2"]] if a > b else [["r2"], ["r1"]])
        assert v["ranking"] == expected and v["group"] == v["voter"]
    val = load(cfg, "helpsteer2", tmp_path / "hs", cache, split="validation", attributes=["helpfulness"])
    assert len(val) == 4 and all(len(r["votes"]) == 1 for r in val)


def test_ultrafeedback_aspects_rank_completions_and_na_is_left_out(cfg, tmp_path, cache):
    rows = fx.ultrafeedback_rows(8)
    recs = load(cfg, "ultrafeedback", fx.write_fixture("ultrafeedback", tmp_path / "uf", n_prompts=8), cache)
    r0 = recs[0]
    assert r0["topic"] == rows[0]["source"] and len(r0["candidates"]) == 4
    hon = next(v for v in r0["votes"] if v["voter"] == "honesty")
    ratings = {f"r{j + 1}": int(c["annotations"]["honesty"]["Rating"]) for j, c in enumerate(rows[0]["completions"])}
    assert [sorted(t) for t in hon["ranking"]] == [sorted(c for c in ratings if ratings[c] == r)
                                                   for r in sorted(set(ratings.values()), reverse=True)]
    # row 3: completion 3 is "N/A" on truthfulness: pairwise votes among the other three
    truth = [v for v in recs[3]["votes"] if v["voter"] == "truthfulness"]
    assert len(truth) == 3 and all("pair" in v and "r3" not in v["pair"] for v in truth)


def test_prism_participant_ranks_opening_turn_grouped_by_survey_field(cfg, tmp_path, cache):
    convs, survey = fx.prism_files(8)
    d = fx.write_fixture("prism", tmp_path / "prism", n_prompts=8)
    recs = load(cfg, "prism", d, cache)
    r0 = recs[0]
    assert r0["prompt_id"] == "c0" and r0["prompt"] == convs[0]["opening_prompt"] and r0["topic"] == "unguided"
    assert len(r0["candidates"]) == 4  # turn 1 is not a candidate
    (vote,) = r0["votes"]
    assert vote["voter"] == "user0" and vote["group"] == survey[0]["age"]
    scores = [t["score"] for t in convs[0]["conversation_history"] if t["role"] == "model"]
    assert vote["ranking"][0] == [f"r{scores.index(max(scores)) + 1}"]
    nested = load(cfg, "prism", d, cache, group_by="location.reside_region")
    assert {v["group"] for r in nested for v in r["votes"]} == {"region0", "region1"}
    assert all("group" not in v for r in load(cfg, "prism", d, cache, group_by=None) for v in r["votes"])
    with pytest.raises(BallotError, match=r"data.prism.group_by: 'agee' is not a survey field"):
        load(cfg, "prism", d, cache, group_by="agee")


def test_hh_groups_rows_by_dialogue_prefix_and_renders_back_exactly(cfg, tmp_path, cache):
    from prefsweep.data.prompts import render_completion, render_prompt

    rows = fx.hh_rows(10)
    recs = load(cfg, "hh", fx.write_fixture("hh", tmp_path / "hh", n_prompts=10), cache)
    assert len(recs) == 10 and recs[0]["topic"] == "helpful-base"
    assert len(recs[0]["votes"]) == 2 and len(recs[0]["candidates"]) == 4  # prompt 0 appears twice
    assert recs[0]["votes"][0] == {"pair": ["r1", "r2"], "winner": "r1", "weight": 1.0}
    fmt = cfg["prompt_format"]  # style hh: the dataset's own strings come back
    for r, row in zip([recs[0], recs[1]], [rows[0], rows[2]]):
        assert render_prompt(r["prompt"], fmt) + render_completion(r["candidates"][0]["text"], fmt) == row["chosen"]
    assert "\n\nAssistant: " in recs[1]["prompt"]  # a two-turn dialogue stays one prompt
    assert len(load(cfg, "hh", tmp_path / "hh", cache, split="test")) == 4
    assert split_hh("no marker", "x") == "chosen"
    assert split_hh("\n\nHuman: a\n\nAssistant: b", "\n\nHuman: other\n\nAssistant: c") == "rejected"


def test_shp_filters_score_ratio_and_pairs_per_post(cfg, tmp_path, cache):
    rows = fx.shp_rows(6)
    d = fx.write_fixture("shp", tmp_path / "shp", n_prompts=6)
    every = load(cfg, "shp", d, cache)
    assert sum(len(r["votes"]) for r in every) == len(rows)
    ratio = load(cfg, "shp", d, cache, min_score_ratio=2)
    kept = [r for r in rows if max(r["score_A"], r["score_B"]) / min(r["score_A"], r["score_B"]) >= 2]
    assert sum(len(r["votes"]) for r in ratio) == len(kept) < len(rows)
    capped = load(cfg, "shp", d, cache, max_pairs_per_post=1, domains=["cooking_train"])
    assert {r["topic"] for r in capped} == {"cooking_train"} and all(len(r["votes"]) == 1 for r in capped)


def _rewrite_jsonl(path: Path, edit, gz: bool = False) -> None:
    opener = gzip.open if gz else open
    with opener(path, "rt") as fh:
        rows = [json.loads(line) for line in fh]
    edit(rows)
    with opener(path, "wt") as fh:
        fh.writelines(json.dumps(r) + "\n" for r in rows)


@pytest.mark.parametrize("source, edit, match", [
    ("helpsteer2", lambda rows: rows[5].update(correctness=7),
     r"split train\): row 6 \(prompt_id 'hs2-[0-9a-f]+'\): correctness: expected an integer from 0 to 4, got 7"),
    ("ultrafeedback", lambda rows: rows[2]["completions"][1]["annotations"]["honesty"].update(Rating="six"),
     r"row 3 \(prompt_id 'uf-[0-9a-f]+'\): completions\[1\]\.annotations\.honesty\.Rating: expected an integer "
     r"from 1 to 5 or 'N/A', got 'six'"),
    ("prism", lambda rows: rows[1]["conversation_history"][2].update(score=250),
     r"conversations \(split train\): row 2 \(conversation_id 'c1'\): conversation_history\[2\]\.score: "
     r"expected a number from 1 to 100, got 250"),
    ("hh", lambda rows: rows[3].update(rejected="\n\nHuman: something else\n\nAssistant: no"),
     r"row 4: rejected: expected the same dialogue prefix as chosen"),
    ("shp", lambda rows: rows[4].update(labels=2), r"row 5 \(post_id 'post1'\): labels: expected 1"),
])
def test_a_record_that_breaks_the_schema_names_dataset_row_and_field(cfg, tmp_path, cache, source, edit, match):
    d = fx.write_fixture(source, tmp_path / source, n_prompts=6)
    name = {"helpsteer2": "train.jsonl.gz", "ultrafeedback": "train.jsonl", "prism": "conversations.jsonl",
            "hh": "helpful-base/train.jsonl.gz", "shp": "train.jsonl"}[source]
    _rewrite_jsonl(d / name, edit, gz=name.endswith(".gz"))
    with pytest.raises(BallotError, match=match) as info:
        load(cfg, source, d, cache)
    assert str(d) in str(info.value)


def test_multipref_bad_preference_value_names_the_annotation(cfg, tmp_path, cache):
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = fx.multipref_rows(5)
    rows[3]["expert_worker_annotations"][1]["overall_pref"] = "A-wins"
    d = tmp_path / "mp-bad" / "data"
    d.mkdir(parents=True)
    pq.write_table(pa.Table.from_pylist(rows), d / "train-00000-of-00001.parquet")
    with pytest.raises(BallotError, match=r"row 4 \(comparison_id 'c2-0'\): expert_worker_annotations\[1\]\.overall_pref: "
                                          r"expected one of 'A-is-clearly-better'.*got 'A-wins'"):
        load(cfg, "multipref", d.parent, cache)


def test_missing_columns_and_unloadable_paths_are_named(cfg, tmp_path, cache):
    d = fx.write_fixture("helpsteer2", tmp_path / "hs", n_prompts=4)
    with pytest.raises(BallotError, match=r"columns \['source', 'instruction', 'completions'\] missing; expected the UltraFeedback schema"):
        load(cfg, "ultrafeedback", d, cache)
    with pytest.raises(BallotError, match=r"data.hh.path: .*nowhere.*cannot be loaded by datasets.load_dataset"):
        load(cfg, "hh", tmp_path / "nowhere", cache)


def test_an_edited_local_copy_is_read_again(cfg, tmp_path, cache):
    d = fx.write_fixture("helpsteer2", tmp_path / "hs", n_prompts=3)
    before = load(cfg, "helpsteer2", d, cache)
    _rewrite_jsonl(d / "train.jsonl.gz", lambda rows: rows[0].update(response="An edited answer."), gz=True)
    after = load(cfg, "helpsteer2", d, cache)
    assert after[0]["candidates"][0]["text"] == "An edited answer." != before[0]["candidates"][0]["text"]


def test_load_source_dispatches_on_data_source(cfg, tmp_path):
    config = copy.deepcopy(cfg)
    config["data"]["source"] = "helpsteer2"
    config["data"]["helpsteer2"]["path"] = str(fx.write_fixture("helpsteer2", tmp_path / "hs", n_prompts=5))
    assert len(load_source(config, None)) == 5
