"""Pair accuracy: the metric, the per-model record, the table, and the script's two subcommands."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd
import pytest

from prefsweep.config import job_config
from prefsweep.io import atomic_write_parquet
from prefsweep.eval.measures.pair_accuracy import accuracy_from_logps
from prefsweep.eval.pair_accuracy import (
    RESULT_KEYS, TABLE_COLUMNS, accuracy_table, read_results, result_record, score_model,
)
from prefsweep.train.reflogps import compute_ref_logps
from prefsweep.train.training import load_model_and_tokenizer
from tests.conftest import load_config
from tests.unit.train_helpers import HH, build_tiny_dir, load_script, make_pairs


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory) -> Path:
    return build_tiny_dir(tmp_path_factory.mktemp("tiny"))


def test_accuracy_counts_strict_wins_only():
    logps = pd.DataFrame({"ref_chosen_logps": [-1.0, -5.0, -2.0, -3.0],
                          "ref_rejected_logps": [-2.0, -4.0, -2.0, -9.0]})
    m = accuracy_from_logps(logps)
    assert m["n_pairs"] == 4
    assert m["accuracy"] == 0.5  # pairs 0 and 3; the tie (pair 2) counts as wrong
    assert m["mean_logp_margin"] == pytest.approx((1 - 1 + 0 + 6) / 4)
    empty = accuracy_from_logps(logps.iloc[:0])
    assert empty["n_pairs"] == 0 and math.isnan(empty["accuracy"]) and math.isnan(empty["mean_logp_margin"])


def test_score_model_is_the_dpo_log_prob_margin(tiny_dir):
    pairs = make_pairs(6)
    got = score_model(tiny_dir, pairs, max_length=64)
    model, tok = load_model_and_tokenizer(tiny_dir, dtype="float32")
    logps = compute_ref_logps(model, tok, pairs, max_length=64, key="dpo.max_length", batch_size=2)
    assert got == accuracy_from_logps(logps)
    assert got["n_pairs"] == 6 and 0.0 <= got["accuracy"] <= 1.0


def test_records_and_table():
    with pytest.raises(ValueError, match="model id"):
        result_record("not-a-model", "p.parquet", {"n_pairs": 1, "accuracy": 1.0, "mean_logp_margin": 1.0})
    metrics = {"n_pairs": 2, "accuracy": 0.5, "mean_logp_margin": 0.1}
    records = [result_record(mid, "p.parquet", metrics) for mid in
               ("dpo-sc-prompt-n64-seed2", "sft", "dpo-maj-shared-n64-seed1", "dpo-maj-shared-n16-seed1", "base")]
    assert list(records[0]) == list(RESULT_KEYS)
    table = accuracy_table(records)
    assert tuple(table.columns) == TABLE_COLUMNS
    assert list(table["model_id"]) == ["base", "dpo-maj-shared-n16-seed1", "dpo-maj-shared-n64-seed1",
                                       "dpo-sc-prompt-n64-seed2", "sft"]
    assert list(table["kind"]) == ["base", "dpo", "dpo", "dpo", "sft"]


def test_read_results_names_a_bad_file(tmp_path):
    (tmp_path / "x.json").write_text(json.dumps({"model_id": "sft"}))
    with pytest.raises(ValueError, match=r"x.json: not a pair-accuracy result, missing \['pairs'"):
        read_results([tmp_path / "x.json"])


def test_script_score_then_table(tiny_dir, tmp_path):
    """The command lines of the workflow's pair_accuracy and pair_accuracy_table rules."""
    atomic_write_parquet(tmp_path / "eval_pairs.parquet", make_pairs(4))
    config = json.dumps(job_config(load_config(), "pair_accuracy"))
    script = load_script("pair_accuracy")
    for model_id in ("sft", "base"):
        script.main(["score", "--config-json", config, "--model", str(tiny_dir), "--model-id", model_id,
                     "--pairs", str(tmp_path / "eval_pairs.parquet"), "--threads", "1",
                     "--out", str(tmp_path / "acc" / f"{model_id}.json")])
    result = json.loads((tmp_path / "acc" / "sft.json").read_text())
    assert set(result) == set(RESULT_KEYS) and result["n_pairs"] == 4
    script.main(["table", "--inputs", str(tmp_path / "acc" / "sft.json"), str(tmp_path / "acc" / "base.json"),
                 "--out", str(tmp_path / "pair_accuracy.csv")])
    table = pd.read_csv(tmp_path / "pair_accuracy.csv")
    assert list(table["model_id"]) == ["base", "sft"] and tuple(table.columns) == TABLE_COLUMNS
    assert table["accuracy"].iloc[0] == table["accuracy"].iloc[1]  # same weights, same accuracy


def test_script_score_names_too_long_prompts(tiny_dir, tmp_path):
    from prefsweep.data.prompts import render_prompt

    pairs = make_pairs(3)
    pairs.loc[0, "prompt"] = render_prompt("Explain it all to me please. " * 20, HH)
    atomic_write_parquet(tmp_path / "eval_pairs.parquet", pairs)
    config = json.dumps(job_config(load_config(), "pair_accuracy") | {"dpo": {"max_length": 32}})
    with pytest.raises(SystemExit, match=r"eval_pairs.parquet: 1 of 3 prompts .*dpo.max_length=32.*pair_id 'q0\|a>b'"):
        load_script("pair_accuracy").main(["score", "--config-json", config, "--model", str(tiny_dir),
                                           "--model-id", "sft", "--pairs", str(tmp_path / "eval_pairs.parquet"),
                                           "--out", str(tmp_path / "sft.json")])
    assert not (tmp_path / "sft.json").exists()


def test_per_group_accuracy_scores_each_groups_majority_pairs(tiny_dir, tmp_path):
    """score --group-pairs: the same metrics as without, plus each group's accuracy on its own
    pairs (one reversed: what one group prefers the model must rank the other way round)."""
    from prefsweep.eval.pair_accuracy import GROUP_KEYS, GROUP_TABLE_COLUMNS, score_model_with_groups

    pairs = make_pairs(4)
    flipped = pairs.iloc[:2].rename(columns={"chosen": "rejected", "rejected": "chosen"})
    flipped["pair_id"] = flipped["prompt_id"] + "|b>a"
    group_pairs = pd.concat([pairs.assign(group="x"), flipped.assign(group="y")], ignore_index=True)
    metrics, groups = score_model_with_groups(tiny_dir, pairs, group_pairs, max_length=64)
    assert metrics == score_model(tiny_dir, pairs, max_length=64)
    model, tok = load_model_and_tokenizer(tiny_dir, dtype="float32")
    margin = compute_ref_logps(model, tok, pairs, max_length=64, key="dpo.max_length", batch_size=2)
    m = (margin["ref_chosen_logps"] - margin["ref_rejected_logps"]).to_numpy()
    assert [g["group"] for g in groups] == ["x", "y"] and [g["n_pairs"] for g in groups] == [4, 2]
    assert groups[0]["accuracy"] == pytest.approx(float((m > 0).mean()))
    assert groups[1]["accuracy"] == pytest.approx(float((-m[:2] > 0).mean()))
    assert groups[0]["ci_low"] <= groups[0]["accuracy"] <= groups[0]["ci_high"]

    atomic_write_parquet(tmp_path / "eval_pairs.parquet", pairs)
    atomic_write_parquet(tmp_path / "by_group.parquet", group_pairs)
    config = json.dumps(job_config(load_config(), "pair_accuracy"))
    script = load_script("pair_accuracy")
    script.main(["score", "--config-json", config, "--model", str(tiny_dir), "--model-id", "sft",
                 "--pairs", str(tmp_path / "eval_pairs.parquet"), "--group-pairs", str(tmp_path / "by_group.parquet"),
                 "--out", str(tmp_path / "sft.json")])
    result = json.loads((tmp_path / "sft.json").read_text())
    assert [set(g) for g in result["groups"]] == [set(GROUP_KEYS)] * 2 and result["groups"][0]["accuracy"] == groups[0]["accuracy"]
    script.main(["table", "--inputs", str(tmp_path / "sft.json"), "--out", str(tmp_path / "pa.csv"),
                 "--groups-out", str(tmp_path / "pag.csv")])
    table = pd.read_csv(tmp_path / "pag.csv")
    assert tuple(table.columns) == GROUP_TABLE_COLUMNS and list(table["group"]) == ["x", "y"]
