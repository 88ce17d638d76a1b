"""Win rates, CIs, flips, ties, validation, zero point, arm differences, groups, wandb."""

from __future__ import annotations

import io
import json
import re
from contextlib import redirect_stdout
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from conftest_eval import load_script

from prefsweep.winrate import (
    JudgmentError,
    arm_differences,
    bootstrap_ci,
    judgment_frames,
    log_to_wandb,
    outcome,
    win_rate_tables,
)

CONFIG = {"experiment": "t", "data": {"reference_arm": "maj"}, "dpo": {"init": "sft"},
          "eval": {"baseline": "zero", "judge": {"type": "electorate"}, "bootstrap": {"n": 500, "seed": 0}},
          "wandb": {"mode": "disabled"}}
JUDGE = ["electorate", "weighted-majority"]
A, B = "dpo-maj-shared-n4-seed1", "dpo-sc-prompt-n4-seed1"


def rec(model, qid, g1, g2, baseline="sft", groups=None):
    r = {"question_id": qid, "model_1": model, "model_2": baseline, "g1_winner": g1, "g2_winner": g2,
         "judge": JUDGE, "g1_user_prompt": "", "g1_judgment": "", "g2_user_prompt": "", "g2_judgment": "",
         "turn": 1, "tstamp": 0.0}
    if groups:
        r["g1_group_winners"], r["g2_group_winners"] = groups
    return r


def recs(model, verdicts, **kw):
    return [rec(model, f"q{i}", g1, g2, **kw) for i, (g1, g2) in enumerate(verdicts)]


W, L, T = ("model_1", "model_1"), ("model_2", "model_2"), ("tie", "tie")
FLIP = ("model_1", "model_2")
ERR = ("error", "model_1")

TABLE_A = recs(A, [W, FLIP, T, L])  # 1 win, 2 ties (one a flip), 1 loss
TABLE_B = recs(B, [W, W, ERR, W])  # 3 wins, 1 error


def tables(records, config=CONFIG, **kw):
    q, g = judgment_frames(records)
    return win_rate_tables(q, g, config, **kw)


def test_outcome_follows_fastchat():
    assert outcome(*W) == "win" and outcome(*L) == "loss" and outcome(*T) == "tie"
    assert outcome(*FLIP) == "tie" and outcome("tie", "model_1") == "tie"
    assert outcome(*ERR) == "error" and outcome("model_1", "inconsistent") == "error"


def test_known_table():
    table, _ = tables(TABLE_A + TABLE_B)
    a = table[table.model_id == A].iloc[0]
    assert (a.wins, a.ties, a.losses, a.errors, a.n) == (1, 2, 1, 0, 4)
    assert a.win_rate == 0.5 and a.flip_rate == 0.25
    assert (a.kind, a.arm, a.matching, a["size"], a.seed) == ("dpo", "maj", "shared", 4, 1)
    assert a.baseline == "sft" and a.judge == "electorate" and a.judge_prompt == "weighted-majority"
    b = table[table.model_id == B].iloc[0]
    assert (b.wins, b.ties, b.losses, b.errors, b.n) == (3, 0, 0, 1, 3)
    assert (b.win_rate, b.ci_low, b.ci_high, b.flip_rate) == (1.0, 1.0, 1.0, 0.0)
    assert a.ci_low <= a.win_rate <= a.ci_high


def test_matches_fastchat_show_result(tmp_path):
    from fastchat.llm_judge.show_result import display_result_pairwise

    path = tmp_path / "all.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in TABLE_A + TABLE_B))
    buf = io.StringIO()
    with redirect_stdout(buf):
        display_result_pairwise(SimpleNamespace(input_file=str(path), baseline_model="sft", model_list=None,
                                                bench_name="x", judge_model="x"))
    theirs = {m[1]: float(m[2]) for m in re.finditer(r"^(\S+)\s+\d+\s+\d+\s+\d+\s+\S+\s+\S+\s+(\S+)$",
                                                     buf.getvalue(), re.M)}
    table, _ = tables(TABLE_A + TABLE_B)
    ours = dict(zip(table.model_id, table.win_rate))
    assert theirs == {A: ours[A], B: ours[B]}


def test_bootstrap_ci_known_values():
    assert bootstrap_ci(np.ones(10), 100, 0) == (1.0, 1.0)
    assert all(np.isnan(bootstrap_ci(np.array([]), 100, 0)))
    scores = np.array([1.0, 0.0] * 100)  # p = 0.5, n = 200: normal CI 0.5 +- 0.069
    lo, hi = bootstrap_ci(scores, 4000, 0)
    assert lo == pytest.approx(0.5 - 1.96 * np.sqrt(0.25 / 200), abs=0.01)
    assert hi == pytest.approx(0.5 + 1.96 * np.sqrt(0.25 / 200), abs=0.01)
    assert bootstrap_ci(scores, 500, 3) == bootstrap_ci(scores, 500, 3)


def test_ci_does_not_depend_on_record_order():
    t1, _ = tables(TABLE_A)
    t2, _ = tables(TABLE_A[::-1])
    pd.testing.assert_frame_equal(t1, t2)


@pytest.mark.parametrize("bad, message", [
    (TABLE_A + [rec(A, "q0", *W)], f"model {A} .*1 question\\(s\\) judged more than once, e.g. q0 \\(2x\\)"),
    (TABLE_A + TABLE_B[:3], f"model {B} .*1 question\\(s\\) not judged, e.g. \\['q3'\\]"),
    (TABLE_A + TABLE_B + [rec(B, "q9", *W)], f"model {B} .*unexpected question|model {A} .*not judged"),
    (TABLE_A[:3] + [rec(A, "q3", *W, baseline="base")], f"model {A} .*several baselines"),
    (recs(A, [W, W, W, W], baseline="base"), f"model {A} .*expected baseline 'sft'"),
])
def test_bad_counts_rejected_with_model_named(bad, message):
    with pytest.raises(JudgmentError, match=message):
        tables(bad)


def test_missing_order_rejected():
    r = rec(A, "q0", *W)
    del r["g2_winner"]
    with pytest.raises(JudgmentError, match=f"model {A}: question 'q0' .*lacks g1_winner or g2_winner"):
        judgment_frames([r])


def test_questions_file_sets_the_expected_set():
    with pytest.raises(JudgmentError, match=r"not judged, e.g. \['q4'\]"):
        tables(TABLE_A, questions=["q0", "q1", "q2", "q3", "q4"])


def _manifests(tmp_path, cells):
    for arm, matching, size, n in cells:
        d = tmp_path / "data" / arm / matching / f"n{size}"
        d.mkdir(parents=True)
        (d / "manifest.json").write_text(json.dumps({"arm": arm, "matching": matching, "size": size, "n_pairs": n}))
    return tmp_path / "data"


def _answers(d, model, texts):
    d.mkdir(parents=True, exist_ok=True)
    (d / f"{model}.jsonl").write_text("".join(
        json.dumps({"question_id": f"q{i}", "answer_id": "x", "model_id": model,
                    "choices": [{"index": 0, "turns": [t]}], "tstamp": 0}) + "\n" for i, t in enumerate(texts)))


def test_zero_point_is_size_zero_on_every_line(tmp_path):
    data = _manifests(tmp_path, [("maj", "shared", 4, 4), ("sc", "prompt", 4, 2)])
    ans = tmp_path / "eval" / "model_answer"
    _answers(ans, A, ["one two", "one two three", "a", "b"])
    _answers(ans, B, ["x"] * 4)
    _answers(ans, "sft", ["a b c d"] * 4)
    table, _ = tables(TABLE_A + TABLE_B, answers_dir=ans, manifests_dir=data)
    zero = table[table.zero_point]
    assert list(zip(zero.arm, zero.matching)) == [("maj", "shared"), ("sc", "prompt")]
    assert (zero["size"] == 0).all() and (zero.n_pairs == 0).all() and (zero.model_id == "sft").all()
    assert (zero.win_rate == 0.5).all() and (zero.n == 4).all() and (zero.ties == 4).all()
    a = table[table.model_id == A].iloc[0]
    assert a.n_pairs == 4 and table[table.model_id == B].iloc[0].n_pairs == 2
    assert a.mean_words == pytest.approx(7 / 4) and a.baseline_mean_words == 4.0
    assert list(table.columns[:8]) == ["model_id", "kind", "arm", "matching", "size", "n_pairs", "seed", "step"]


def test_zero_point_judged_against_reference(tmp_path):
    cfg = {**CONFIG, "eval": {**CONFIG["eval"], "baseline": "reference"}}
    records = recs(A, [W, W, L, L], baseline="reference") + recs("sft", [L, L, T, W], baseline="reference")
    data = _manifests(tmp_path, [("maj", "shared", 4, 4)])
    table, _ = tables(records, config=cfg, manifests_dir=data)
    z = table[table.model_id == "sft"].iloc[0]
    assert z.zero_point and z["size"] == 0 and z.arm == "maj" and z.win_rate == 0.375


def test_missing_manifest_is_an_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="manifest.json: series manifest not found"):
        tables(TABLE_A, manifests_dir=tmp_path)


def test_checkpoint_rows_carry_step(tmp_path):
    data = _manifests(tmp_path, [("maj", "shared", 4, 4)])
    table, _ = tables(recs(A + "-step20", [W, W, W, L]), manifests_dir=data)
    row = table[table.kind == "checkpoint"].iloc[0]
    assert row.step == 20 and row.win_rate == 0.75


def test_arm_differences_paired_over_questions_and_seeds():
    A2, B2 = "dpo-maj-shared-n4-seed2", "dpo-sc-prompt-n4-seed2"
    records = (recs(A, [W, FLIP, T, L]) + recs(B, [W, W, ERR, W])
               + recs(A2, [L, L, L, L]) + recs(B2, [W, W, W, W]))
    q, _ = judgment_frames(records)
    d = arm_differences(q, CONFIG).iloc[0]
    assert (d.arm, d.matching, d.ref_arm, d["size"], d.seeds, d.n_seeds) == ("sc", "prompt", "maj", 4, "1;2", 2)
    # seed 1: d = [0, .5, (error), 1]; seed 2: d = [1, 1, 1, 1]
    assert d["diff"] == pytest.approx(5.5 / 7) and d.n_questions == 4
    assert d.seed_sd == pytest.approx(np.std([0.5, 1.0], ddof=1))
    lo, hi = bootstrap_ci(np.array([0.5, 0.75, 1.0, 1.0]), 500, 0)  # seed-averaged d_q
    assert (d.ci_low, d.ci_high) == (lo, hi)


def test_arm_differences_skip_unpaired_seeds():
    q, _ = judgment_frames(recs(A, [W] * 4) + recs("dpo-sc-size-n4-seed3", [L] * 4))
    assert arm_differences(q, CONFIG).empty


def test_group_win_rates():
    g = ({"concise": "model_1", "playful": "model_2"}, {"concise": "model_1", "playful": "tie"})
    records = [rec(A, f"q{i}", *W, groups=g) for i in range(4)]
    _, groups = tables(records)
    c = groups[(groups.model_id == A) & (groups.group == "concise")].iloc[0]
    p = groups[(groups.model_id == A) & (groups.group == "playful")].iloc[0]
    assert c.win_rate == 1.0 and (p.win_rate, p.ties, p.flip_rate) == (0.5, 4, 1.0)
    zero = groups[groups.zero_point]
    assert set(zero.group) == {"concise", "playful"} and (zero.win_rate == 0.5).all()


def test_wandb_attaches_to_training_run(tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-very-secret-value")
    run = tmp_path / "dpo" / "maj" / "shared" / "n4" / "seed1" / "final"
    run.mkdir(parents=True)
    (run / "run_info.json").write_text(json.dumps({"wandb_run_id": "dpo-maj-shared-n4-seed1-abc"}))
    q, g = judgment_frames(TABLE_A + TABLE_B)
    data = _manifests(tmp_path, [("maj", "shared", 4, 4), ("sc", "prompt", 4, 2)])
    table, groups = win_rate_tables(q, g, CONFIG, manifests_dir=data)
    cfg = {**CONFIG, "wandb": {"mode": "offline", "project": "p"},
           "eval": {**CONFIG["eval"], "judge": {"type": "llm", "api_key": "sk-very-secret-value"}}}
    out = log_to_wandb(table, arm_differences(q, CONFIG), groups, cfg, wandb_dir=tmp_path / "wandb",
                       runs_dir=tmp_path / "dpo")
    assert out["attached"] == {A: "dpo-maj-shared-n4-seed1-abc"} and out["eval_run"]
    runs = sorted(p.name for p in (tmp_path / "wandb" / "wandb").glob("offline-run-*"))
    assert any(r.endswith("-dpo-maj-shared-n4-seed1-abc") for r in runs) and len(runs) == 2
    for f in (tmp_path / "wandb").rglob("*"):
        if f.is_file():
            assert b"sk-very-secret-value" not in f.read_bytes(), f


def test_script_end_to_end(tmp_path):
    data = _manifests(tmp_path, [("maj", "shared", 4, 4), ("sc", "prompt", 4, 2)])
    ans = tmp_path / "eval" / "model_answer"
    for m in (A, B, "sft"):
        _answers(ans, m, ["w"] * 4)
    jdir = tmp_path / "eval" / "model_judgment" / "electorate_pair"
    jdir.mkdir(parents=True)
    for m, rs in ((A, TABLE_A), (B, TABLE_B)):
        (jdir / f"{m}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rs))
    (tmp_path / "c.json").write_text(json.dumps(CONFIG))
    ev = tmp_path / "eval"
    argv = ["--config-json", str(tmp_path / "c.json"), "--judgments", *map(str, sorted(jdir.iterdir())),
            "--answers-dir", str(ans), "--manifests-dir", str(data), "--out", str(ev / "win_rates.csv"),
            "--diff-out", str(ev / "arm_differences.csv"), "--groups-out", str(ev / "win_rates_groups.csv"),
            "--no-wandb"]
    load_script("win_rates").main(argv)
    table = pd.read_csv(ev / "win_rates.csv")
    assert len(table) == 4 and set(table.model_id) == {A, B, "sft"}
    first = (ev / "win_rates.csv").read_bytes()
    load_script("win_rates").main(argv)
    assert (ev / "win_rates.csv").read_bytes() == first
    assert pd.read_csv(ev / "arm_differences.csv").shape[0] == 1
    (jdir / "dup.jsonl").write_text(json.dumps(TABLE_B[0]) + "\n")
    with pytest.raises(JudgmentError, match=f"model {B}"):
        load_script("win_rates").main([*argv[:3], *map(str, sorted(jdir.iterdir())), *argv[-13:]])
