"""sft.data: the lab's own SFT file or HH's chosen responses, checked against the held-out eval
prompts; per-group majority pairs on the held-out prompts and the per-group accuracy."""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path

import pandas as pd
import pytest

from prefsweep.config import ConfigError, job_config
from prefsweep.eval.measures.pair_accuracy import group_accuracy, wilson_interval
from prefsweep.eval.pair_accuracy import GROUP_TABLE_COLUMNS, group_accuracy_table, result_record
from prefsweep.data.prompts import render_completion, render_prompt
from prefsweep.data.series import GROUP_PAIR_COLUMNS, build_group_pairs, build_pool, vote_groups
from prefsweep.experiment import check_experiment
from prefsweep.data.sft_data import SftDataError, check_no_eval_prompts, external_sft_corpus, read_sft_jsonl
from tests.conftest import load_config
from tests.fixtures import datasets as fx
from tests.unit.train_helpers import load_script

HH = {"style": "hh"}


def write(path: Path, rows) -> Path:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
    return path


def config_with(tmp_path, **sft_data) -> dict:
    cfg = copy.deepcopy(load_config())
    cfg["sft"]["data"].update(sft_data)
    return cfg


def test_jsonl_prompt_completion_and_messages(tmp_path):
    f = write(tmp_path / "sft.jsonl", [
        {"prompt": "How do I boil an egg?", "completion": "Put it in water.", "id": "egg"},
        "",
        {"messages": [{"role": "user", "content": "Hi?"}, {"role": "assistant", "content": "Hello."},
                      {"role": "user", "content": "Weather?"}, {"role": "assistant", "content": "Sunny."}]},
    ])
    ex = read_sft_jsonl(f)
    assert [e["id"] for e in ex] == ["egg", "sft-3"]
    assert ex[1]["prompt"] == "Hi?\n\nAssistant: Hello.\n\nHuman: Weather?" and ex[1]["completion"] == "Sunny."
    rows = external_sft_corpus(config_with(tmp_path, source="jsonl", path=str(f)), {"e1": "Other?"}, f)
    # style hh renders a messages dialogue as the HH transcript itself
    assert rows[1] == {"prompt": "\n\nHuman: Hi?\n\nAssistant: Hello.\n\nHuman: Weather?\n\nAssistant:",
                       "completion": " Sunny.", "prompt_id": "sft-3"}
    assert rows[0]["prompt"] == render_prompt("How do I boil an egg?", HH)


@pytest.mark.parametrize("row, match", [
    ({"prompt": "a", "completion": "b", "extra": 1}, r"line 1: extra: unknown field"),
    ({"prompt": "a"}, r"line 1: completion: expected a non-empty string"),
    ({"messages": [{"role": "user", "content": "a"}]}, r"line 1: messages: expected a list of at least"),
    ({"messages": [{"role": "user", "content": "a"}, {"role": "system", "content": "b"}]},
     r"line 1: messages\[1\].role: expected 'assistant'"),
    ({"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"},
                   {"role": "user", "content": "c"}]}, r"messages\[2\]: expected the last message to be the assistant's"),
    ("{not json", r"line 1: record: not valid JSON"),
])
def test_bad_sft_rows_name_file_line_and_field(tmp_path, row, match):
    f = write(tmp_path / "bad.jsonl", [row])
    with pytest.raises(SftDataError, match=match) as info:
        read_sft_jsonl(f)
    assert str(f) in str(info.value)


def test_an_eval_prompt_in_the_sft_data_is_an_error_naming_its_ids(tmp_path):
    examples = [{"id": "s1", "prompt": "Keep?", "completion": "x", "where": "line 1"},
                {"id": "s2", "prompt": " How do I cook rice? ", "completion": "y", "where": "line 2"}]
    with pytest.raises(SftDataError, match=r"my.jsonl: 1 SFT prompts are held-out eval prompts \(eval prompt ids "
                                           r"'p7'; SFT examples s2 \(line 2\)\)"):
        check_no_eval_prompts(examples, {"p7": "How do I cook rice?", "p8": "Other?"}, "my.jsonl")
    check_no_eval_prompts(examples[:1], {"p7": "How do I cook rice?"}, "my.jsonl")


@pytest.mark.parametrize("copy_of_eval", ["how do i cook RICE?", "How do I  cook rice?", "How do I\ncook\trice? ",
                                          "HOW  DO I COOK RICE?"])
def test_an_eval_prompt_up_to_case_and_spacing_is_refused(copy_of_eval):
    # the same normalize_text that keeps a prompt's candidates distinct (issue 22)
    examples = [{"id": "s1", "prompt": copy_of_eval, "completion": "x", "where": "line 1"}]
    with pytest.raises(SftDataError, match=r"eval prompt ids 'p7'; SFT examples s1 \(line 1\)"):
        check_no_eval_prompts(examples, {"p7": "How do I cook rice?"}, "my.jsonl")
    # negative control: another question is trained on
    check_no_eval_prompts([{**examples[0], "prompt": "How do I cook brown rice?"}], {"p7": "How do I cook rice?"}, "x")


def test_hh_chosen_responses_as_sft_data(tmp_path):
    d = fx.write_fixture("hh", tmp_path / "hh", n_prompts=6)
    cfg = config_with(tmp_path, source="hh", path=str(d), data_dir="helpful-base", max_examples=4)
    rows = external_sft_corpus(cfg, {}, None)
    chosen = [r["chosen"] for r in fx.hh_rows(6)][:4]
    assert [r["prompt"] + r["completion"] for r in rows] == chosen
    first = rows[0]["prompt"][len("\n\nHuman: "):-len("\n\nAssistant:")]
    with pytest.raises(SftDataError, match=r"held-out eval prompts \(eval prompt ids 'e1'"):
        external_sft_corpus(cfg, {"e1": first}, None)


def test_config_checks_and_the_corpus_slice(tmp_path):
    cfg = config_with(tmp_path, source="jsonl")
    with pytest.raises(ConfigError, match=r"sft.data.path: required when sft.data.source is 'jsonl'"):
        check_experiment(cfg)
    cfg["sft"]["data"]["path"] = str(tmp_path / "missing.jsonl")
    with pytest.raises(ConfigError, match=r"sft.data.path: .*missing.jsonl: no such file"):
        check_experiment(cfg)
    assert job_config(cfg, "sft_corpus")["sft"] == {"data": cfg["sft"]["data"]}
    assert "sft" not in job_config(cfg, "data")  # pools and series do not rerun for sft.data


def test_sft_corpus_script_reads_the_file_and_refuses_eval_prompts(tmp_path):
    from tests.unit.test_series import CONFIG, run_data_stage

    work = run_data_stage(tmp_path / "w", CONFIG)
    split = json.loads((work / "data" / "split.json").read_text())
    eval_text = next(json.loads(line)["prompt"] for line in (work / "data" / "ballots.jsonl").read_text().splitlines()
                     if json.loads(line)["prompt_id"] == split["eval_prompt_ids"][0])
    cfg = {**CONFIG, "sft": {"data": {"source": "jsonl", "path": None, "data_dir": None, "split": "train",
                                      "max_examples": None}}}
    (work / "c.json").write_text(json.dumps(cfg))
    mod = load_script("sft_corpus")
    args = ["--config-json", str(work / "c.json"), "--ballots", str(work / "data" / "ballots.jsonl"),
            "--split", str(work / "data" / "split.json"), "--out", str(work / "sft.jsonl")]
    ok = write(tmp_path / "ok.jsonl", [{"prompt": "A question of our own?", "completion": "Our answer."}])
    mod.main([*args, "--sft-data", str(ok)])
    assert [json.loads(x) for x in (work / "sft.jsonl").read_text().splitlines()] == [
        {"prompt": render_prompt("A question of our own?", HH), "completion": render_completion("Our answer.", HH),
         "prompt_id": "sft-1"}]
    bad = write(tmp_path / "bad.jsonl", [{"prompt": eval_text, "completion": "Leak."}])
    with pytest.raises(SystemExit, match=rf"eval prompt ids '{split['eval_prompt_ids'][0]}'"):
        mod.main([*args, "--sft-data", str(bad)])


def test_group_pairs_are_each_groups_own_majority(tmp_path):
    cfg = load_config()
    recs = [{"prompt_id": "p1", "prompt": "Q?", "topic": "t",
             "candidates": [{"id": "a", "text": "A"}, {"id": "b", "text": "B"}, {"id": "c", "text": "C"}],
             "votes": [{"ranking": [["a"], ["b"], ["c"]], "weight": 1.0, "voter": "x1", "group": "x"},
                       {"ranking": [["a"], ["c"], ["b"]], "weight": 1.0, "voter": "x2", "group": "x"},
                       {"ranking": [["c"], ["b"], ["a"]], "weight": 1.0, "voter": "y1", "group": "y"},
                       {"pair": ["a", "b"], "winner": "a", "weight": 5.0}]},
            {"prompt_id": "p2", "prompt": "R?", "topic": "t",
             "candidates": [{"id": "a", "text": "A2"}, {"id": "b", "text": "B2"}],
             "votes": [{"pair": ["a", "b"], "winner": "b", "weight": 1.0, "voter": "y1", "group": "y"}]}]
    assert vote_groups(recs) == ["x", "y"]
    t = build_group_pairs(recs, ["p1", "p2"], cfg).to_pandas()
    assert tuple(t.columns) == GROUP_PAIR_COLUMNS
    got = {(g, p, c, r) for g, p, c, r in zip(t["group"], t["prompt_id"], t["chosen_id"], t["rejected_id"])}
    # x: a > b, a > c (2-0), b-c tied (1-1): no pair; y (only its own voter): c > b > a, and b > a on p2
    assert got == {("x", "p1", "a", "b"), ("x", "p1", "a", "c"), ("y", "p1", "c", "b"), ("y", "p1", "c", "a"),
                   ("y", "p1", "b", "a"), ("y", "p2", "b", "a")}
    # the group's pairs are the maj arm over the group's votes alone
    only_y = [{**recs[0], "votes": recs[0]["votes"][2:3]}]
    assert len(build_pool(only_y, {"train_order": ["p1"]}, "maj", cfg)) == 3
    empty = build_group_pairs([{**recs[1], "votes": [{"pair": ["a", "b"], "winner": "a"}]}], ["p2"], cfg)
    assert empty.num_rows == 0 and tuple(empty.column_names) == GROUP_PAIR_COLUMNS


def test_group_accuracy_and_its_table():
    pairs = pd.DataFrame({"group": ["x", "x", "x", "y"], "pair_id": ["1", "2", "3", "4"], "prompt_id": ["a", "a", "b", "c"]})
    g = group_accuracy(pairs, {"1": 0.5, "2": -1.0, "3": 0.0, "4": 2.0})
    assert [r["group"] for r in g] == ["x", "y"]
    assert g[0]["n_pairs"] == 3 and g[0]["n_prompts"] == 2 and g[0]["accuracy"] == pytest.approx(1 / 3)  # a tie is wrong
    lo, hi = wilson_interval(1, 3)
    assert (g[0]["ci_low"], g[0]["ci_high"]) == (lo, hi) and lo < 1 / 3 < hi
    assert wilson_interval(3, 3)[1] == 1.0 and all(math.isnan(v) for v in wilson_interval(0, 0))
    metrics = {"n_pairs": 1, "accuracy": 1.0, "mean_logp_margin": 0.1}
    table = group_accuracy_table([result_record("dpo-maj-shared-n8-seed1", "p", metrics, g),
                                  result_record("sft", "p", metrics, g), result_record("base", "p", metrics)])
    assert tuple(table.columns) == GROUP_TABLE_COLUMNS
    assert list(zip(table["model_id"], table["group"])) == [
        ("dpo-maj-shared-n8-seed1", "x"), ("dpo-maj-shared-n8-seed1", "y"), ("sft", "x"), ("sft", "y")]
