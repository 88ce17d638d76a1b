"""Win rates, CIs, flips, ties, validation, zero point, arm differences, groups, inputs, wandb."""

from __future__ import annotations

import copy
import io
import json
import re
from contextlib import redirect_stdout
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from conftest_eval import EvalRun, load_script, write_answers

from prefsweep.config import ConfigError, job_config
from prefsweep.paths import parse_model_id
from prefsweep.tracking import log_win_rates_to_wandb
from prefsweep.eval import measures
from prefsweep.eval.bootstrap import bootstrap_ci
from prefsweep.eval.inputs import FinalRun, InputError, ModelInputs
from prefsweep.eval.judgments import JudgmentError, judgment_frames, outcome
from prefsweep.eval.length import LC_L2_C, length_controlled_win_rate
from prefsweep.eval.table_io import DIFF_COLUMNS, GROUP_COLUMNS, WIN_RATE_COLUMNS, read_table
from prefsweep.eval.tables import arm_differences, win_rate_tables
from prefsweep.eval.welfare import WELFARE_COLUMNS
from tests.conftest import REPO, load_config


def _config(**eval_over) -> dict:
    cfg = job_config(load_config(), "win_rates")
    cfg["eval"]["bootstrap"]["n"] = 500
    cfg["eval"].update(eval_over)
    return cfg


CONFIG = _config()
#: What the win-rate job logs to wandb as summary values (scripts/win_rates.py)
METRICS = measures.logged_columns(measures.WIN_RATES)
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


def inputs_for(records, steps=None, n_pairs=None, lengths=None) -> ModelInputs:
    """Metadata for every model of ``records``: answers of 1 word (``lengths``: model -> words of
    each question's answer), all well formed, n_pairs = size unless given, final step 10 unless
    given."""
    ids = {r["model_1"] for r in records} | {r["model_2"] for r in records} | {"sft"}
    cells, finals = {}, {}
    for m in ids:
        if m == "reference":
            continue
        c = parse_model_id(m)
        if c.kind in ("dpo", "checkpoint"):
            cells[(c.arm, c.matching, c.size)] = (n_pairs or {}).get((c.arm, c.matching, c.size), c.size)
        if c.kind == "dpo":
            finals[m] = FinalRun(m, (steps or {}).get(m, 10), None, f"{m}/run_info.json")
    qids = sorted({r["question_id"] for r in records})
    lengths = {m: dict(zip(qids, (lengths or {}).get(m, [1] * len(qids)))) for m in ids}
    return ModelInputs({m: float(np.mean(list(v.values()))) for m, v in lengths.items()}, cells, finals, lengths,
                       dict.fromkeys(ids, 1.0))


def tables(records, config=CONFIG, inputs=None, **kw):
    q, g = judgment_frames(records)
    return win_rate_tables(q, g, config, inputs or inputs_for(records), **kw)


def test_outcome_follows_fastchat():
    assert outcome(*W) == "win" and outcome(*L) == "loss" and outcome(*T) == "tie"
    assert outcome(*FLIP) == "tie" and outcome("tie", "model_1") == "tie"
    assert outcome(*ERR) == "error" and outcome("model_1", "inconsistent") == "error"


def test_known_table():
    table, _ = tables(TABLE_A + TABLE_B)
    assert tuple(table.columns) == WIN_RATE_COLUMNS
    a = table[table.model_id == A].iloc[0]
    assert (a.wins, a.ties, a.losses, a.errors, a.n) == (1, 2, 1, 0, 4)
    assert a.win_rate == 0.5 and a.flip_rate == 0.25
    assert (a.kind, a.arm, a.matching, a["size"], a.seed, a.step) == ("dpo", "maj", "shared", 4, 1, 10)
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


def test_matches_fastchat_show_result_on_electorate_judgments(tmp_path):
    """The real electorate judge's files, read by FastChat and by us: the same win rates."""
    from fastchat.llm_judge.show_result import display_result_pairwise

    run = EvalRun(tmp_path / "run")
    models = run.finals[:4]
    path = tmp_path / "all.jsonl"
    path.write_text("".join(run.judgments[m].read_text() for m in models))
    buf = io.StringIO()
    # Long model ids: keep FastChat's printed table on one line per model.
    with redirect_stdout(buf), pd.option_context("display.width", 1000, "display.max_columns", 20):
        display_result_pairwise(SimpleNamespace(input_file=str(path), baseline_model=run.baseline, model_list=None,
                                                bench_name="x", judge_model="x"))
    theirs = {m[1]: float(m[2]) for m in re.finditer(r"^(\S+)\s+\d+\s+\d+\s+\d+\s+\S+\s+\S+\s+(\S+)$",
                                                     buf.getvalue(), re.M)}
    out = tmp_path / "eval"
    load_script("win_rates").main(run.argv(models, out))
    table = read_table(out / "win_rates.csv", WIN_RATE_COLUMNS)
    ours = dict(zip(table.model_id, table.win_rate))
    assert theirs == pytest.approx({m: ours[m] for m in models})


def test_bootstrap_ci_known_values():
    assert bootstrap_ci(np.ones(10), 100, 0) == (1.0, 1.0)
    assert all(np.isnan(bootstrap_ci(np.array([]), 100, 0)))
    scores = np.array([1.0, 0.0] * 100)  # p = 0.5, n = 200: normal CI 0.5 +- 0.069
    lo, hi = bootstrap_ci(scores, 4000, 0)
    assert lo == pytest.approx(0.5 - 1.96 * np.sqrt(0.25 / 200), abs=0.01)
    assert hi == pytest.approx(0.5 + 1.96 * np.sqrt(0.25 / 200), abs=0.01)
    assert bootstrap_ci(scores, 500, 3) == bootstrap_ci(scores, 500, 3)


def test_length_controlled_win_rate_hand_cases():
    # Longer answers win: 6 questions +10 words (5 wins, 1 loss), 2 questions -10 words (1 win, 1 loss).
    # tanh(d / sd(d)) takes two values +-a, so the unpenalized fit saturates both groups:
    # sigmoid(theta + phi a) = 5/6, sigmoid(theta - phi a) = 1/2, theta = ln(5) / 2, and the win rate at
    # zero length difference is sigmoid(ln(5) / 2) = sqrt(5) / (1 + sqrt(5)) = 0.691 (raw: 0.75).
    y = np.array([1, 1, 1, 1, 1, 0, 1, 0], dtype=float)
    d = np.array([10] * 6 + [-10] * 2, dtype=float)
    lc, lo, hi = length_controlled_win_rate(y, d, 500, 0, l2_c=1e9)
    assert lc == pytest.approx(np.sqrt(5) / (1 + np.sqrt(5)), abs=1e-6)
    assert lc == pytest.approx(length_controlled_win_rate(y, d, 500, 0)[0], abs=0.002)  # the weak default penalty
    assert lo < lc < hi
    # Wins exactly when longer, as many longer as shorter: 0.5 at zero length difference.
    assert length_controlled_win_rate(np.array([1, 1, 0, 0.0]), np.array([5, 5, -5, -5.0]), 100, 0)[0] == \
        pytest.approx(0.5)
    # No length difference: the intercept-only fit, 4 (0.75 - p) = logit(p) / C, p = 0.7473 for C = 100.
    lc = length_controlled_win_rate(np.array([1, 1, 0.5, 0.5]), np.zeros(4), 100, 0)[0]
    assert 4 * (0.75 - lc) == pytest.approx(np.log(lc / (1 - lc)) / LC_L2_C, abs=1e-9) and lc == pytest.approx(0.7473, abs=1e-4)
    # All wins: finite and close to 1 (the penalty keeps theta finite).
    assert 0.99 < length_controlled_win_rate(np.ones(48), np.arange(48.0), 100, 0)[0] < 1
    assert all(np.isnan(length_controlled_win_rate(np.array([]), np.array([]), 100, 0)))


def test_lc_columns_and_well_formed_in_the_table():
    records = recs(A, [W, W, W, W, W, L, W, L])
    table, _ = tables(records, inputs=inputs_for(records, lengths={A: [11] * 6 + [1] * 2, "sft": [1] * 6 + [11] * 2}))
    a = table[table.model_id == A].iloc[0]
    assert a.win_rate == 0.75 and a.lc_win_rate == pytest.approx(0.691, abs=0.002)
    assert a.lc_ci_low < a.lc_win_rate < a.lc_ci_high and a.well_formed == a.baseline_well_formed == 1.0
    zero = table[table.model_id == "sft"].iloc[0]  # the baseline against itself
    assert (zero.lc_win_rate, zero.lc_ci_low, zero.lc_ci_high) == (0.5, 0.5, 0.5)


def test_well_formed_column_from_the_answers(tmp_path):
    from prefsweep.data.synthetic import well_formedness

    good = "Happy to help. To cook rice, follow a simple recipe first."
    texts = {A: [good, good + " Keep Keep", ""], "sft": [good, good, good]}
    paths = []
    for model, answers in texts.items():
        path = tmp_path / f"{model}.jsonl"
        path.write_text("".join(json.dumps({"question_id": f"q{i}", "answer_id": "a", "model_id": model,
                                            "choices": [{"index": 0, "turns": [t]}], "tstamp": 0.0}) + "\n"
                                for i, t in enumerate(answers)))
        paths.append(path)
    inputs = ModelInputs.from_files(paths, [], [])
    assert inputs.well_formed["sft"] == 1.0
    assert inputs.well_formed[A] == pytest.approx((1 + 11 / 13 + 0) / 3) == np.mean([well_formedness(t) for t in texts[A]])
    assert inputs.answer_lengths[A] == {"q0": 11, "q1": 13, "q2": 0} and inputs.answer_words[A] == pytest.approx(8)


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
    (recs(A, [ERR] * 4), f"no valid verdicts for model {A} in judgments: 4 of 4 judgments malformed"),
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


def test_zero_point_is_size_zero_on_every_line(tmp_path):
    """Metadata from real files: manifests (their own fields), run_info (job, global_step), answers."""
    from prefsweep.io import save_run_info

    manifests = []
    for arm, matching, size, n in [("maj", "shared", 4, 4), ("sc", "prompt", 4, 2)]:
        p = tmp_path / f"m-{arm}.json"  # any name: the fields say which series it is
        p.write_text(json.dumps({"arm": arm, "matching": matching, "size": size, "n_pairs": n}))
        manifests.append(p)
    runs = []
    for model, step in ((A, 6), (B, 7)):
        c = parse_model_id(model)
        d = tmp_path / "runs" / model
        d.mkdir(parents=True)
        runs.append(save_run_info(d, {}, job={"arm": c.arm, "matching": c.matching, "size": c.size, "seed": c.seed},
                                  global_step=step, wandb_run_id=None))
    ans = tmp_path / "answers"
    for model, n in ((A, 1), (B, 2), ("sft", 3)):
        write_answers(ans / f"{model}.jsonl", model, n, n_questions=4)
    inputs = ModelInputs.from_files(sorted(ans.iterdir()), manifests, runs)
    table, _ = tables(TABLE_A + TABLE_B, inputs=inputs)
    zero = table[table.zero_point]
    assert list(zip(zero.arm, zero.matching)) == [("maj", "shared"), ("sc", "prompt")]
    assert (zero["size"] == 0).all() and (zero.n_pairs == 0).all() and (zero.model_id == "sft").all()
    assert (zero.win_rate == 0.5).all() and (zero.n == 4).all() and (zero.ties == 4).all()
    assert zero.step.isna().all()
    a, b = (table[table.model_id == m].iloc[0] for m in (A, B))
    assert (a.n_pairs, a.step, b.n_pairs, b.step) == (4, 6, 2, 7)
    words = {m: np.mean([len(r["choices"][0]["turns"][0].split()) for r in map(json.loads, open(ans / f"{m}.jsonl"))])
             for m in (A, "sft")}
    assert a.mean_words == pytest.approx(words[A]) and a.baseline_mean_words == pytest.approx(words["sft"])
    assert list(table.columns[:9]) == ["model_id", "kind", "init", "arm", "matching", "size", "n_pairs", "seed", "step"]


def test_zero_point_judged_against_reference():
    cfg = _config(baseline="reference")
    records = recs(A, [W, W, L, L], baseline="reference") + recs("sft", [L, L, T, W], baseline="reference")
    table, _ = tables(records, config=cfg)
    z = table[table.model_id == "sft"].iloc[0]
    assert z.zero_point and z["size"] == 0 and z.arm == "maj" and z.win_rate == 0.375
    with pytest.raises(JudgmentError, match="expected baseline 'reference'"):
        tables(recs(A, [W] * 4, baseline="sft"), config=cfg)


def test_missing_inputs_name_the_model_and_the_flag():
    inputs = inputs_for(TABLE_A + TABLE_B)
    bare = ModelInputs({"sft": 1.0}, {}, {}, {}, {})
    with pytest.raises(InputError) as err:
        tables(TABLE_A + TABLE_B, inputs=bare)
    msg = str(err.value)
    for model in (A, B):
        assert f"model {model}: no series manifest" in msg and "--manifests" in msg
        assert f"model {model}: no run_info.json among --run-info" in msg
        assert f"model {model}: no answers file {model}.jsonl among --answers" in msg
    no_baseline = ModelInputs({A: 1.0, B: 1.0}, inputs.n_pairs, inputs.finals, inputs.answer_lengths,
                              inputs.well_formed)
    with pytest.raises(InputError, match=r"model sft \(the baseline\): no answers file sft.jsonl among --answers"):
        tables(TABLE_A + TABLE_B, inputs=no_baseline)


def test_missing_config_key_is_named():
    cfg = copy.deepcopy(CONFIG)
    del cfg["eval"]["bootstrap"]["n"]
    with pytest.raises(ConfigError, match="config key eval.bootstrap.n: missing"):
        tables(TABLE_A, config=cfg)
    q, _ = judgment_frames(TABLE_A)
    del cfg["data"]["reference_arm"]
    cfg["eval"]["bootstrap"]["n"] = 500
    with pytest.raises(ConfigError, match="config key data.reference_arm"):
        arm_differences(q, cfg)


def test_checkpoint_rows_carry_step():
    table, _ = tables(recs(A + "-step20", [W, W, W, L]))
    row = table[table.kind == "checkpoint"].iloc[0]
    assert row.step == 20 and row.win_rate == 0.75


def test_checkpoint_at_the_final_step_is_the_final_model():
    """Both judged (an old run): one row at that step, the final model's; earlier ones stay."""
    records = recs(A, [W, W, W, W]) + recs(A + "-step10", [W, W, W, W]) + recs(A + "-step5", [L, L, W, W])
    g = ({"concise": "model_1"}, {"concise": "model_1"})
    records = [{**r, "g1_group_winners": g[0], "g2_group_winners": g[1]} for r in records]
    table, groups = tables(records, inputs=inputs_for(records, steps={A: 10}))
    assert [m for m in table.model_id if m != "sft"] == [A + "-step5", A]
    assert table.set_index("model_id").loc[A, "step"] == 10
    assert not table.duplicated(["arm", "matching", "size", "seed", "step"]).any()
    assert A + "-step10" not in set(groups.model_id)


def test_arm_differences_paired_over_questions_and_seeds():
    A2, B2 = "dpo-maj-shared-n4-seed2", "dpo-sc-prompt-n4-seed2"
    records = (recs(A, [W, FLIP, T, L]) + recs(B, [W, W, ERR, W])
               + recs(A2, [L, L, L, L]) + recs(B2, [W, W, W, W]))
    q, _ = judgment_frames(records)
    diffs = arm_differences(q, CONFIG)
    assert tuple(diffs.columns) == DIFF_COLUMNS
    d = diffs.iloc[0]
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
    assert tuple(groups.columns) == GROUP_COLUMNS
    c = groups[(groups.model_id == A) & (groups.group == "concise")].iloc[0]
    p = groups[(groups.model_id == A) & (groups.group == "playful")].iloc[0]
    assert c.win_rate == 1.0 and (p.win_rate, p.ties, p.flip_rate) == (0.5, 4, 1.0)
    zero = groups[groups.zero_point]
    assert set(zero.group) == {"concise", "playful"} and (zero.win_rate == 0.5).all()


def test_wandb_attaches_to_training_run(tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-very-secret-value")
    q, g = judgment_frames(TABLE_A + TABLE_B)
    table, groups = win_rate_tables(q, g, CONFIG, inputs_for(TABLE_A + TABLE_B))
    cfg = {**CONFIG, "wandb": {"mode": "offline", "project": "p"},
           "eval": {**CONFIG["eval"], "judge": {"type": "llm", "api_key": "sk-very-secret-value"}}}
    out = log_win_rates_to_wandb(table, arm_differences(q, CONFIG), groups, cfg, wandb_dir=tmp_path / "wandb",
                                 run_ids={A: "dpo-maj-shared-n4-seed1-abc"}, metric_columns=METRICS)
    assert out["attached"] == {A: "dpo-maj-shared-n4-seed1-abc"} and out["eval_run"]
    runs = sorted(p.name for p in (tmp_path / "wandb" / "wandb").glob("offline-run-*"))
    assert any(r.endswith("-dpo-maj-shared-n4-seed1-abc") for r in runs) and len(runs) == 2
    for f in (tmp_path / "wandb").rglob("*"):
        if f.is_file():
            assert b"sk-very-secret-value" not in f.read_bytes(), f


def test_wandb_init_leaves_the_entity_to_the_environment(tmp_path, monkeypatch):
    """The workflow exports WANDB_ENTITY; wandb.init must not be handed another (or None)."""
    import wandb

    calls = []

    class FakeRun:
        id = "eval-id"
        summary = {}

        def log(self, payload):
            pass

        def finish(self):
            pass

    monkeypatch.setattr(wandb, "init", lambda **kw: calls.append(kw) or FakeRun())
    monkeypatch.setenv("WANDB_ENTITY", "my-team")
    table, groups = tables(TABLE_A)
    cfg = {**CONFIG, "wandb": {"mode": "offline", "project": "p"}}
    log_win_rates_to_wandb(table, arm_differences(judgment_frames(TABLE_A)[0], CONFIG), groups, cfg,
                           wandb_dir=tmp_path, run_ids={A: "rid"}, metric_columns=METRICS)
    assert len(calls) == 2 and all(c.get("entity") in (None, "my-team") for c in calls)
    monkeypatch.delenv("WANDB_ENTITY")
    calls.clear()
    log_win_rates_to_wandb(table, arm_differences(judgment_frames(TABLE_A)[0], CONFIG), groups, cfg,
                           wandb_dir=tmp_path, run_ids={}, metric_columns=METRICS)
    assert calls and all("entity" not in c for c in calls)


def test_script_end_to_end(tmp_path):
    """The real electorate's judgment files through scripts/win_rates.py main(): explicit files."""
    run = EvalRun(tmp_path / "run")
    out = tmp_path / "eval"
    argv = run.argv(run.finals, out)
    script = load_script("win_rates")
    script.main(argv)
    for name, columns in (("win_rates", WIN_RATE_COLUMNS), ("arm_differences", DIFF_COLUMNS),
                          ("win_rates_groups", GROUP_COLUMNS)):
        assert tuple(pd.read_csv(out / f"{name}.csv").columns) == columns
    table = read_table(out / "win_rates.csv", WIN_RATE_COLUMNS)
    dpo = table[table.kind == "dpo"]
    # base is always evaluated: one row off the lines (sft, the init, is the zero point of every line)
    assert set(dpo.model_id) == set(run.finals) - {"base"} and len(table) == len(run.finals) + 3
    assert (table[table.model_id == "base"].arm == "").all() and not table[table.model_id == "base"].zero_point.any()
    assert dict(zip(dpo.model_id, dpo.step)) == {m: run.final_steps[m] for m in run.finals if m != "base"}
    first = (out / "win_rates.csv").read_bytes()
    script.main(argv)
    assert (out / "win_rates.csv").read_bytes() == first
    assert len(pd.read_csv(out / "arm_differences.csv")) == 4  # sc prompt/size x 2 sizes
    dup = tmp_path / "dup.jsonl"
    dup.write_text(run.judgments[run.finals[0]].read_text().splitlines()[0] + "\n")
    i = argv.index("--answers")
    with pytest.raises(SystemExit, match=f"model {run.finals[0]} .*{dup}.*: 1 question\\(s\\) judged more than once"):
        script.main([*argv[:i], str(dup), *argv[i:]])


@pytest.mark.parametrize("flag, missing, message", [
    ("--manifests", "data/maj/shared/n64/manifest.json", "no series manifest for maj/shared/n64 among --manifests"),
    ("--run-info", "dpo/maj/shared/n64/seed1/final/run_info.json",
     "model dpo-maj-shared-n64-seed1: no run_info.json among --run-info"),
    ("--answers", "eval/model_answer/dpo-maj-shared-n64-seed1.jsonl",
     "model dpo-maj-shared-n64-seed1: no answers file dpo-maj-shared-n64-seed1.jsonl among --answers"),
])
def test_script_reads_only_the_files_it_is_given(tmp_path, flag, missing, message):
    """The files exist on disk beside the others, but a file left off the command line is missing."""
    run = EvalRun(tmp_path / "run")
    argv = [a for a in run.argv(run.finals, tmp_path / "eval") if a != str(tmp_path / "run" / missing)]
    assert (tmp_path / "run" / missing).is_file()
    with pytest.raises(SystemExit, match=re.escape(message)):
        load_script("win_rates").main(argv)


def test_evolution_has_final_models_at_their_step(tmp_path):
    run = EvalRun(tmp_path / "run")
    out = tmp_path / "eval"
    load_script("win_rates").main(run.argv(run.checkpoints + run.finals, out, name="evolution"))
    ev = read_table(out / "evolution.csv", WIN_RATE_COLUMNS)
    lines = ev[ev.arm != ""]
    assert not lines[lines.kind != "sft"].duplicated(["arm", "matching", "size", "seed", "step"]).any()
    finals = lines[lines.kind == "dpo"]
    assert dict(zip(finals.model_id, finals.step)) == run.final_steps
    for model, step in run.final_steps.items():
        run_rows = lines[lines.model_id.str.startswith(model)]
        assert run_rows.step.max() == step  # the curve ends at the final model
        assert f"{model}-step{step}" not in set(lines.model_id)  # the same model, kept once
        assert f"{model}-step{step // 2}" in set(lines.model_id)


@pytest.mark.parametrize("caption, columns", [
    ("win_rates.rst", WIN_RATE_COLUMNS), ("win_rates_groups.rst", GROUP_COLUMNS),
    ("arm_differences.rst", DIFF_COLUMNS), ("welfare_table.rst", WELFARE_COLUMNS),
])
def test_report_caption_names_every_column(caption, columns):
    text = (REPO / "workflow" / "report" / caption).read_text()
    assert [c for c in columns if f"``{c}``" not in text] == []


def test_logged_metrics_are_the_statistics_and_mean_words():
    """What goes to wandb did not change when the columns moved into the measures registry."""
    assert METRICS == ("wins", "ties", "losses", "errors", "n", "win_rate", "ci_low", "ci_high", "flip_rate",
                       "mean_words")


def test_old_column_name_is_gone():
    for path in (Path(REPO) / "prefsweep").rglob("*.py"):
        assert "mean_length" not in path.read_text(), path
