"""Split, pools, nested matched series, SFT corpus, eval questions; the data scripts end to end."""

from __future__ import annotations

import copy
import importlib.util
import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from prefsweep.data.ballot_table import read_ballots_table
from prefsweep.io import sha256_file
from prefsweep.paths import arm_rules
from prefsweep.data.prompts import render_completion, render_prompt
from prefsweep.data.series import (
    SERIES_COLUMNS, SeriesError, build_pool, build_series, eval_questions, make_split, select_topics,
    sft_corpus,
)
from prefsweep.data.synthetic import Electorate

REPO = Path(__file__).resolve().parents[2]
SIZES = [32, 64, 128]

CONFIG = {
    "experiment": "test",
    "data": {
        "source": "synthetic", "seed": 0, "topics": "all", "n_eval_prompts": 16, "reference_arm": "maj",
        "sizes": [0, *SIZES], "matchings": ["prompt", "size"],
        "synthetic": {"n_prompts": 240, "n_candidates": 4, "noise": 0.6, "jitter": 0.1,
                      "quality": {"well_formed": 4.0, "answers_question": 4.0}, "voter_groups": [
            {"name": "concise", "size": 5, "length": {"target": 12, "penalty": 1.0},
             "weights": {"politeness": 0.3, "detail": 0.2}},
            {"name": "thorough", "size": 2, "length": {"target": 40, "penalty": 0.5},
             "weights": {"detail": 1.2, "humour": -0.2}},
            {"name": "playful", "size": 2, "length": {"target": 25, "penalty": 0.2},
             "weights": {"politeness": -0.2, "humour": 1.5}},
        ]},
    },
    "sc": {"rule": "borda", "pairs": "winner_loser"},
    "prompt_format": {"style": "hh"},
    # the sft_corpus step's slice also carries sft.data
    "sft": {"data": {"source": "best_response", "path": None, "data_dir": None, "split": "train", "max_examples": None}},
}
#: The list form of sc.rule: one arm per rule, named by it (a probabilistic rule among them).
RULES = ["borda", "copeland", "maximal_lottery"]
RULES_CONFIG = {**copy.deepcopy(CONFIG), "sc": {"rule": RULES, "pairs": "winner_loser"}}
#: (stage fixture, rule arm): the series invariants hold for the one-rule arm sc and every rule.
RULE_ARMS = [("stage", "sc")] + [("rules_stage", rule) for rule in RULES]


def script(name: str):
    spec = importlib.util.spec_from_file_location(f"script_{name}", REPO / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


def run_data_stage(work: Path, config: dict) -> Path:
    """Every data script, as the workflow runs them, into ``work``; returns ``work``."""
    work.mkdir(parents=True, exist_ok=True)
    cfg = work / "config.json"
    cfg.write_text(json.dumps(config))
    c = ["--config-json", str(cfg)]
    d = work / "data"
    ballots, split = str(d / "ballots.jsonl"), str(d / "split.json")
    script("ballots").main([*c, "--out", ballots])
    script("split").main([*c, "--ballots", ballots, "--out", split])
    rule_arms = list(arm_rules(config))
    for arm in ("maj", *rule_arms):
        script("pool").main([*c, "--ballots", ballots, "--split", split, "--arm", arm,
                             "--out", str(d / "pool" / f"{arm}.parquet")])
    series = script("series")
    for size in SIZES:
        for arm, matching in (("maj", "shared"), *((a, m) for a in rule_arms for m in ("prompt", "size"))):
            series.main([*c, "--ref-pool", str(d / "pool" / "maj.parquet"),
                         "--pool", str(d / "pool" / f"{arm}.parquet"), "--arm", arm, "--matching", matching,
                         "--size", str(size), "--pairs-out", str(d / arm / matching / f"n{size}" / "pairs.parquet"),
                         "--manifest-out", str(d / arm / matching / f"n{size}" / "manifest.json")])
    script("sft_corpus").main([*c, "--ballots", ballots, "--split", split, "--out", str(d / "sft.jsonl")])
    script("sft_corpus").main([*c, "--ballots", ballots, "--split", split, "--all-candidates",
                               "--out", str(d / "pretrain.jsonl")])
    script("eval_questions").main([*c, "--ballots", ballots, "--split", split,
                                   "--questions", str(work / "eval" / "question.jsonl"),
                                   "--reference", str(work / "eval" / "reference_answer" / "reference.jsonl")])
    return work


@pytest.fixture(scope="module")
def stage(tmp_path_factory) -> Path:
    return run_data_stage(tmp_path_factory.mktemp("data") / "run", CONFIG)


@pytest.fixture(scope="module")
def rules_stage(tmp_path_factory) -> Path:
    return run_data_stage(tmp_path_factory.mktemp("data") / "rules", RULES_CONFIG)


def pairs(stage: Path, arm: str, matching: str, size: int):
    return pq.read_table(stage / "data" / arm / matching / f"n{size}" / "pairs.parquet").to_pandas()


def test_same_seed_byte_identical_other_seed_other_order(stage, tmp_path):
    again = run_data_stage(tmp_path / "again", CONFIG)
    files = sorted(p.relative_to(stage) for p in stage.rglob("*") if p.is_file() and p.name != "config.json")
    assert len(files) == 2 + 2 + 2 * 3 * len(SIZES) + 2 + 2  # ballots, split; pools; series; sft+pretrain; eval
    for f in files:
        assert sha256_file(stage / f) == sha256_file(again / f), f
    other = copy.deepcopy(CONFIG)
    other["data"]["seed"] = 1
    records = read_ballots_table(stage / "data" / "ballots.jsonl")
    a = make_split(records, CONFIG["data"])
    b = make_split(records, other["data"])
    assert a["train_order"] != b["train_order"] and a["eval_prompt_ids"] != b["eval_prompt_ids"]


def test_eval_prompts_never_in_training_files(stage):
    split = json.loads((stage / "data" / "split.json").read_text())
    held = set(split["eval_prompt_ids"])
    assert len(held) == 16 and not held & set(split["train_order"])
    records = read_ballots_table(stage / "data" / "ballots.jsonl")
    texts = dict(zip(records.column("prompt_id").to_pylist(), records.column("prompt").to_pylist()))
    held_texts = {render_prompt(texts[p], {"style": "hh"}) for p in held}
    training = [pq.read_table(p).to_pandas() for p in (stage / "data").rglob("*.parquet")]
    for df in training:
        assert not held & set(df["prompt_id"]) and not held_texts & set(df["prompt"])
    sft = [json.loads(line) for line in (stage / "data" / "sft.jsonl").read_text().splitlines()]
    assert [r["prompt_id"] for r in sft] == split["train_order"]
    assert not held_texts & {r["prompt"] for r in sft}
    # the base model's pretraining text: every candidate of every training prompt, none held out
    pretrain = [json.loads(line) for line in (stage / "data" / "pretrain.jsonl").read_text().splitlines()]
    assert list(dict.fromkeys(r["prompt_id"] for r in pretrain)) == split["train_order"]
    assert len(pretrain) == CONFIG["data"]["synthetic"]["n_candidates"] * len(split["train_order"])
    assert not held_texts & {r["prompt"] for r in pretrain}
    questions = [json.loads(line) for line in (stage / "eval" / "question.jsonl").read_text().splitlines()]
    assert [q["question_id"] for q in questions] == split["eval_prompt_ids"]
    # the eval set is balanced over the 8 topics
    assert sorted({q["category"] for q in questions}) == split["topics"] and len(split["topics"]) == 8


@pytest.mark.parametrize("fixture, arm", RULE_ARMS)
def test_series_sizes_matching_and_nesting(request, fixture, arm):
    stage = request.getfixturevalue(fixture)
    rule_arm = arm
    for size in SIZES:
        ref = pairs(stage, "maj", "shared", size)
        by_prompt = pairs(stage, rule_arm, "prompt", size)
        by_size = pairs(stage, rule_arm, "size", size)
        assert list(ref.columns) == list(SERIES_COLUMNS)
        assert len(ref) == size and len(by_size) == size
        # prompt-matched: exactly the reference arm's prompts (one sc pair each here)
        assert set(by_prompt["prompt_id"]) == set(ref["prompt_id"])
        assert len(by_prompt) == ref["prompt_id"].nunique() < size
        # size-matched: those prompts first, then the next ones in train order
        n = len(by_prompt)
        assert by_size.iloc[:n].equals(by_prompt) and (np.diff(by_size["order"]) >= 0).all()
        manifest = json.loads((stage / "data" / rule_arm / "size" / f"n{size}" / "manifest.json").read_text())
        assert manifest["n_pairs"] == size and manifest["matching"] == "size" and manifest["arm"] == rule_arm
        assert sum(manifest["topics"].values()) == size
        assert manifest["sha256"] == sha256_file(stage / "data" / rule_arm / "size" / f"n{size}" / "pairs.parquet")
        # the rule's statistics over the series' prompts
        per_prompt = by_size.groupby("prompt_id", sort=False).agg(
            cw=("condorcet", "any"), won=("chosen_condorcet", "any"), cycle=("cycle", "any"), tie=("tie_broken", "any"))
        assert manifest["n_prompts"] == len(per_prompt) and manifest["condorcet_prompts"] == per_prompt["cw"].sum()
        assert manifest["winner_is_condorcet"] == (per_prompt["cw"] & per_prompt["won"]).sum() <= manifest["condorcet_prompts"]
        assert manifest["share_cycles"] == pytest.approx(per_prompt["cycle"].mean())
        assert manifest["share_ties_broken"] == pytest.approx(per_prompt["tie"].mean())
        assert manifest["share_winner_is_condorcet"] == pytest.approx(
            manifest["winner_is_condorcet"] / manifest["condorcet_prompts"])
    for arm, matching in (("maj", "shared"), (rule_arm, "prompt"), (rule_arm, "size")):
        for small, big in zip(SIZES, SIZES[1:]):
            a, b = pairs(stage, arm, matching, small), pairs(stage, arm, matching, big)
            assert b.iloc[: len(a)].equals(a), (arm, matching, small)


def test_reference_series_truncates_the_last_prompt_deterministically(stage):
    pool = pq.read_table(stage / "data" / "pool" / "maj.parquet").to_pandas()
    ref = pairs(stage, "maj", "shared", 64)
    assert ref.equals(pool.iloc[:64].reset_index(drop=True))
    last = ref["prompt_id"].iloc[-1]
    assert (pool["prompt_id"] == last).sum() > (ref["prompt_id"] == last).sum()  # truncated
    within = ref[ref["prompt_id"] == last]["margin"].to_numpy()
    assert (np.diff(within) <= 0).all()  # the clearest pairs are kept
    row = ref.iloc[0]
    assert row["pair_id"] == f"{row['prompt_id']}|{row['chosen_id']}>{row['rejected_id']}"
    assert row["prompt"].startswith("\n\nHuman: ") and row["prompt"].endswith("\n\nAssistant:")


def test_unreachable_size_and_bad_matching_errors(stage):
    ref = pq.read_table(stage / "data" / "pool" / "maj.parquet")
    sc = pq.read_table(stage / "data" / "pool" / "sc.parquet")
    with pytest.raises(SeriesError, match=rf"arm maj, matching shared, size 999999: unreachable; the reference arm maj has only {ref.num_rows} pairs"):
        build_series(ref, ref, "maj", "shared", 999_999, "maj")
    with pytest.raises(SeriesError, match=rf"arm sc, matching size, size 500: unreachable; arm sc has only {sc.num_rows} pairs over {sc.num_rows} training prompts"):
        build_series(ref, sc, "sc", "size", 500, "maj")
    assert build_series(ref, sc, "sc", "prompt", 500, "maj").num_rows < 500  # prompt matching always fits
    with pytest.raises(SeriesError, match="maj is the reference arm"):
        build_series(ref, ref, "maj", "prompt", 32, "maj")
    with pytest.raises(SeriesError, match="expected matching prompt or size"):
        build_series(ref, sc, "sc", "shared", 32, "maj")


def test_sft_corpus_and_reference_answers_hold_the_borda_winner(stage):
    records = read_ballots_table(stage / "data" / "ballots.jsonl")
    split = json.loads((stage / "data" / "split.json").read_text())
    sc_pool = pq.read_table(stage / "data" / "pool" / "sc.parquet").to_pandas()
    sft = sft_corpus(records, split, CONFIG)
    chosen = dict(zip(sc_pool["prompt_id"], sc_pool["chosen"]))
    assert all(r["completion"] == chosen[r["prompt_id"]] for r in sft)
    questions, answers = eval_questions(records, split, CONFIG)
    assert questions[0].keys() == {"question_id", "category", "turns"}
    a = answers[0]
    assert a["model_id"] == "reference" and a["question_id"] == questions[0]["question_id"]
    assert a["choices"][0]["index"] == 0 and render_completion(a["choices"][0]["turns"][0], {"style": "hh"}).startswith(" ")
    saved = [json.loads(line) for line in (stage / "eval" / "reference_answer" / "reference.jsonl").read_text().splitlines()]
    assert saved == answers


def test_topic_selection():
    avail = ["b", "a", "c", "d"]
    assert select_topics(avail, "all", 0) == ["a", "b", "c", "d"]
    assert select_topics(avail, ["d", "a"], 0) == ["a", "d"]
    two = select_topics(avail, {"n": 2}, 0)
    assert len(two) == 2 and two == select_topics(avail, {"n": 2}, 0)
    assert {tuple(select_topics(avail, {"n": 2}, s)) for s in range(10)} != {tuple(two)}
    with pytest.raises(ValueError, match=r"data.topics: unknown topic\(s\) \['x'\] \(the ballots have: a, b, c, d\)"):
        select_topics(avail, ["a", "x"], 0)
    with pytest.raises(ValueError, match="data.topics"):
        select_topics(avail, {"n": 5}, 0)


def test_selected_topics_restrict_every_file():
    config = copy.deepcopy(CONFIG)
    config["data"]["topics"] = ["cooking", "pets"]
    records = Electorate.from_config(config).make_ballots(120, 4, 0)
    split = make_split(records, config["data"])
    topic = {r["prompt_id"]: r["topic"] for r in records}
    assert split["topics"] == ["cooking", "pets"]
    assert {topic[p] for p in split["train_order"] + split["eval_prompt_ids"]} == {"cooking", "pets"}
    pool = build_pool(records, split, "maj", config)
    assert set(pool.column("topic").to_pylist()) == {"cooking", "pets"}
    with pytest.raises(ValueError, match="n_eval_prompts"):
        make_split(records, {**config["data"], "n_eval_prompts": 1000})


def _ranked(pid: str, rankings: list[str]) -> dict:
    cands = sorted(set("".join(rankings)))
    return {"prompt_id": pid, "prompt": f"question {pid}", "topic": "t",
            "candidates": [{"id": c, "text": f"answer {c} to {pid}"} for c in cands],
            "votes": [{"ranking": [[c] for c in r], "weight": 1.0} for r in rankings]}


@pytest.mark.parametrize("rule", ["borda", "maximal_lottery"])
def test_prompts_without_a_reference_pair_are_left_out_of_every_arm(tmp_path, rule):
    """The first prompt in train order has no maj pair (every pairwise comparison tied); the
    rule still gives it a tie-broken pair, which no series of the rule's arm takes."""
    from prefsweep.data.ballots import write_ballots

    records = [_ranked("tied", ["abc", "cba"])] + [_ranked(f"p{i}", ["abc", "abc", "bca"]) for i in range(6)]
    path = tmp_path / "ballots.jsonl"
    write_ballots(path, records)
    ballots = read_ballots_table(path)
    split = {"seed": 0, "topics": ["t"], "eval_prompt_ids": [], "train_order": [r["prompt_id"] for r in records]}
    config = {**copy.deepcopy(RULES_CONFIG), "sc": {"rule": [rule], "pairs": "winner_loser"}}
    ref = build_pool(ballots, split, "maj", config)
    pool = build_pool(ballots, split, rule, config)
    assert "tied" not in set(ref.column("prompt_id").to_pylist())  # no maj pair
    assert pool.column("prompt_id")[0].as_py() == "tied" and pool.column("tie_broken")[0].as_py()
    for size in (1, 3, 4, 6):
        ref_s = build_series(ref, ref, "maj", "shared", size, "maj").to_pandas()
        by_prompt = build_series(ref, pool, rule, "prompt", size, "maj").to_pandas()
        by_size = build_series(ref, pool, rule, "size", size, "maj").to_pandas()
        # prompt-matched: exactly the reference series' prompts; size-matched: N pairs from
        # the reference pool's prompts, those of the reference series first
        assert list(dict.fromkeys(by_prompt["prompt_id"])) == list(dict.fromkeys(ref_s["prompt_id"]))
        assert len(by_size) == size and "tied" not in set(by_size["prompt_id"])
        assert by_size.iloc[: len(by_prompt)].equals(by_prompt)
    # 6 prompts with a maj pair give the rule 6 pairs: size 7 cannot be size-matched
    with pytest.raises(SeriesError, match=rf"arm {rule}, matching size, size 7: unreachable; arm {rule} has only 6 "
                                          "pairs over 6 training prompts where the reference arm maj has a pair"):
        build_series(ref, pool, rule, "size", 7, "maj")
