"""Welfare and distortion from the synthetic world's utilities: hand-computed cases, the table,
the win_rates script's --welfare-out."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from conftest_eval import EvalRun, load_script

from prefsweep.eval.welfare import (
    WELFARE_COLUMNS,
    ballot_floor_and_best,
    group_means,
    ratio_of_sums,
    shifted_welfare,
    welfare_rows,
    welfare_table,
)
from prefsweep.eval.bootstrap import bootstrap_ci
from prefsweep.eval.inputs import InputError
from prefsweep.eval.table_io import WIN_RATE_COLUMNS, read_table

GROUPS = ["a", "b"]  # voter 0 is in group a, voter 1 in group b
#: Two questions; per question the [n_voters, K] utilities of its ballot's candidates.
CANDIDATES = [np.array([[0.0, 2.0], [1.0, 3.0]]), np.array([[1.0, 4.0], [0.0, 0.0]])]
#: [n_voters, n_questions] utilities of two models' answers.
X = np.array([[1.0, 3.0], [2.0, 0.0]])
Y = np.array([[5.0, -3.0], [5.0, -1.0]])


def by_measure(rows):
    return {(r["measure"], r["group"]): r for r in rows}


def test_group_means_and_shifted_welfare_by_hand():
    np.testing.assert_array_equal(group_means(X, GROUPS, ["a", "b"]), X)
    np.testing.assert_array_equal(group_means(np.array([[1.0], [3.0], [5.0]]), ["a", "a", "b"], ["b", "a"]),
                                  [[5.0], [2.0]])
    floor, best = ballot_floor_and_best(CANDIDATES)
    # voters' worst candidates: q0 (0, 1), q1 (1, 0); best shifted candidate: q0 (2+2)/2, q1 (3+0)/2
    np.testing.assert_array_equal(floor, [[0.0, 1.0], [1.0, 0.0]])
    np.testing.assert_array_equal(best, [2.0, 1.5])
    # X: q0 (1-0, 2-1) -> 1; q1 (3-1, 0-0) -> 1. Y: q0 (5, 4) -> 4.5; q1 below every candidate -> 0.
    np.testing.assert_array_equal(shifted_welfare(X, floor), [1.0, 1.0])
    np.testing.assert_array_equal(shifted_welfare(Y, floor), [4.5, 0.0])
    with pytest.raises(ValueError, match=r"groups \['c'\] have no voters"):
        group_means(X, GROUPS, ["a", "c"])


def test_ratio_of_sums():
    assert ratio_of_sums(np.array([6.0]), np.array([2.0])) == 3.0
    assert ratio_of_sums(np.array([1.0, 2.0]), np.array([0.0, 0.0])) == np.inf
    assert np.isnan(ratio_of_sums(np.array([0.0]), np.array([0.0])))
    np.testing.assert_array_equal(ratio_of_sums(np.array([[2.0, 2.0], [1.0, 1.0]]), np.array([[1.0, 1.0], [2.0, 0.0]])),
                                  [2.0, 1.0])


def test_welfare_and_distortion_by_hand():
    rows = welfare_rows({"sft": X, "dpo": Y}, CANDIDATES, GROUPS, ["a", "b"], "sft", n_boot=200, seed=0)
    x, y = by_measure(rows["sft"]), by_measure(rows["dpo"])
    # utilitarian: X (1.5 + 1.5) / 2 = 1.5; Y (5 + -2) / 2 = 1.5
    assert x[("utilitarian", "")]["value"] == 1.5 == y[("utilitarian", "")]["value"]
    # groups: X a (1+3)/2 = 2, b (2+0)/2 = 1; Y a (5-3)/2 = 1, b (5-1)/2 = 2; egalitarian: the minimum, 1 each
    assert (x[("group", "a")]["value"], x[("group", "b")]["value"]) == (2.0, 1.0)
    assert (y[("group", "a")]["value"], y[("group", "b")]["value"]) == (1.0, 2.0)
    assert x[("egalitarian", "")]["value"] == 1.0 == y[("egalitarian", "")]["value"]
    # best achievable: q0 max(ballot 2, X 1, Y 4.5) = 4.5; q1 max(1.5, 1, 0) = 1.5; sum 6
    assert x[("distortion", "")]["value"] == 6.0 / 2.0
    assert y[("distortion", "")]["value"] == pytest.approx(6.0 / 4.5)
    assert y[("distortion", "")]["vs_zero"] == pytest.approx(6.0 / 4.5 - 3.0)
    for r in rows["sft"]:  # the zero point against itself
        assert (r["vs_zero"], r["vs_zero_ci_low"], r["vs_zero_ci_high"]) == (0.0, 0.0, 0.0)
        assert r["n_questions"] == 2
    assert [(r["measure"], r["group"]) for r in rows["sft"]] == [
        ("utilitarian", ""), ("egalitarian", ""), ("group", "a"), ("group", "b"), ("distortion", "")]


def test_intervals_are_the_win_rates_bootstrap():
    rng = np.random.default_rng(0)
    u = {"sft": rng.normal(size=(3, 40)), "m": rng.normal(size=(3, 40)) + 0.5}
    cands = [rng.normal(size=(3, 4)) for _ in range(40)]
    rows = welfare_rows(u, cands, ["a", "a", "b"], ["a", "b"], "sft", n_boot=300, seed=5)
    m = by_measure(rows["m"])
    util = m[("utilitarian", "")]
    assert (util["ci_low"], util["ci_high"]) == pytest.approx(bootstrap_ci(u["m"].mean(axis=0), 300, 5))
    diff = u["m"].mean(axis=0) - u["sft"].mean(axis=0)  # paired: the same questions resampled
    assert (util["vs_zero_ci_low"], util["vs_zero_ci_high"]) == pytest.approx(bootstrap_ci(diff, 300, 5))
    assert util["vs_zero"] == pytest.approx(diff.mean())
    for r in rows["m"]:
        assert r["ci_low"] <= r["value"] <= r["ci_high"]
    assert m[("distortion", "")]["value"] >= 1.0
    # No zero point among the models: no comparison.
    assert np.isnan(welfare_rows({"m": u["m"]}, cands, ["a", "a", "b"], ["a", "b"], "sft", 50, 0)["m"][0]["vs_zero"])


def test_an_answer_below_every_candidate_has_infinite_distortion():
    rows = welfare_rows({"sft": X, "garbage": np.full((2, 2), -9.0)}, CANDIDATES, GROUPS, ["a", "b"], "sft", 50, 0)
    assert by_measure(rows["garbage"])[("distortion", "")]["value"] == np.inf


def test_welfare_table_follows_the_win_rate_table():
    wr = pd.DataFrame([
        {"model_id": "sft", "kind": "sft", "init": "sft", "arm": "maj", "matching": "shared", "size": 0, "n_pairs": 0,
         "seed": None, "step": None, "zero_point": True, "judge": "electorate"},
        {"model_id": "sft", "kind": "sft", "init": "sft", "arm": "sc", "matching": "prompt", "size": 0, "n_pairs": 0,
         "seed": None, "step": None, "zero_point": True, "judge": "electorate"},
        {"model_id": "dpo", "kind": "dpo", "init": "sft", "arm": "maj", "matching": "shared", "size": 64, "n_pairs": 64,
         "seed": 1, "step": 8, "zero_point": False, "judge": "electorate"},
    ])
    rows = welfare_rows({"sft": X, "dpo": Y}, CANDIDATES, GROUPS, ["a", "b"], "sft", 50, 0)
    table = welfare_table(wr, rows)
    assert tuple(table.columns) == WELFARE_COLUMNS
    assert len(table) == 3 * 5 and list(table.model_id[::5]) == ["sft", "sft", "dpo"]
    assert list(table.arm[::5]) == ["maj", "sc", "maj"] and table.zero_point[:10].all()
    with pytest.raises(InputError, match="model dpo: no welfare computed"):
        welfare_table(wr, {"sft": rows["sft"]})


# --------------------------------------------------------------------------------------------
# scripts/win_rates.py --welfare-out


def welfare_slice(run: EvalRun) -> dict:
    """The win_rates job's slice with the electorate's keys (data.source, data.seed,
    data.synthetic), which the welfare table needs."""
    from prefsweep.config import job_config

    cfg = job_config(run.config, "win_rates")
    cfg["data"].update({k: run.config["data"][k] for k in ("source", "seed", "synthetic")})
    return cfg


def write_eval_ballots(run: EvalRun, path) -> list[dict]:
    """Ballots whose prompt ids are the run's question ids (q0, ...), cast by its electorate."""
    from prefsweep.data.ballots import write_ballots
    from prefsweep.io import read_jsonl
    from prefsweep.data.synthetic import Electorate

    questions = read_jsonl(run.questions)
    records = Electorate.from_config(run.config).make_ballots(len(questions), 4, seed=0)
    for rec, q in zip(records, questions):
        rec["prompt_id"] = q["question_id"]
    write_ballots(path, records)
    return records


def answer_with_candidates(run: EvalRun, model: str, records: list[dict], k: int) -> None:
    """Make ``model``'s answers candidate ``k`` of each ballot (well formed, unlike the run's)."""
    from prefsweep.io import atomic_write_jsonl

    atomic_write_jsonl(run.answers[model], [
        {"question_id": r["prompt_id"], "answer_id": f"{model}-{i}", "model_id": model,
         "choices": [{"index": 0, "turns": [r["candidates"][k]["text"]]}], "tstamp": 0.0}
        for i, r in enumerate(records)])


def test_script_writes_the_welfare_table(tmp_path):
    run = EvalRun(tmp_path / "run")
    ballots = tmp_path / "ballots.jsonl"
    records = write_eval_ballots(run, ballots)
    # The zero point answers with ballot candidates; the DPO models' answers are not well formed.
    answer_with_candidates(run, run.zero, records, 0)
    out = tmp_path / "eval"
    argv = run.argv(run.finals, out)
    argv[argv.index("--config-json") + 1] = json.dumps(welfare_slice(run))
    load_script("win_rates").main([*argv, "--welfare-out", str(out / "welfare.csv"), "--ballots", str(ballots)])
    table = read_table(out / "welfare.csv", WELFARE_COLUMNS)
    wr = read_table(out / "win_rates.csv", WIN_RATE_COLUMNS)
    assert len(table) == len(wr) * (3 + len(run.config["data"]["synthetic"]["voter_groups"]))
    assert set(table.measure) == {"utilitarian", "egalitarian", "group", "distortion"}
    distortion = table[table.measure == "distortion"]
    assert (distortion.value >= 1).all()
    zero = table[table.zero_point]
    assert (zero.vs_zero == 0).all() and set(zero.model_id) == {run.zero}
    assert np.isfinite(distortion[distortion.zero_point].value).all()
    dpo = table[(table.kind == "dpo") & (table.measure == "utilitarian")]
    assert (dpo.vs_zero < 0).all() and (dpo.vs_zero_ci_high < 0).all()  # worse than candidates, surely
    assert (wr[wr.zero_point].well_formed == 1).all() and (wr[wr.kind == "dpo"].well_formed < 1).all()
    first = (out / "welfare.csv").read_bytes()
    load_script("win_rates").main([*argv, "--welfare-out", str(out / "welfare.csv"), "--ballots", str(ballots)])
    assert (out / "welfare.csv").read_bytes() == first


def test_script_welfare_errors(tmp_path):
    run = EvalRun(tmp_path / "run")
    out = tmp_path / "eval"
    argv = run.argv(run.finals, out)
    script = load_script("win_rates")
    with pytest.raises(SystemExit):  # argparse: --welfare-out needs --ballots
        script.main([*argv, "--welfare-out", str(out / "welfare.csv")])
    ballots = tmp_path / "ballots.jsonl"
    write_eval_ballots(run, ballots)
    # A hand-made slice without the electorate: the welfare needs data.source/seed/synthetic.
    i = argv.index("--config-json") + 1
    no_electorate = json.loads(argv[i])
    no_electorate["data"].pop("source")
    with pytest.raises(SystemExit, match="config key data.source: missing"):
        script.main([*argv[:i], json.dumps(no_electorate), *argv[i + 1:], "--welfare-out", str(out / "w.csv"),
                     "--ballots", str(ballots)])
    argv[i] = json.dumps(welfare_slice(run))
    lines = ballots.read_text().splitlines(keepends=True)
    ballots.write_text("".join(lines[1:]))
    with pytest.raises(SystemExit, match=rf"{ballots}: no ballot for 1 eval question\(s\), e.g. \['q0'\]"):
        script.main([*argv, "--welfare-out", str(out / "w.csv"), "--ballots", str(ballots)])
    assert not (out / "w.csv").exists()
