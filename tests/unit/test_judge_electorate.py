"""The electorate judge: verdicts, group verdicts, both orders, FastChat's record format."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest_eval import load_script

from prefsweep.eval.judges.electorate import judge_pairs, pair_verdict

GROUPS = ["short", "short", "short", "long", "long"]


class FakeElectorate:
    """Three voters like short answers, two like long ones (utilities = +-word count)."""

    groups = GROUPS

    def utilities(self, texts, questions):
        n = np.array([len(t.split()) for t in texts], dtype=float)
        return np.stack([-n, -n, -n, n, n])


class FirstIsBest(FakeElectorate):
    """An order-dependent judge: everybody prefers whatever is shown first."""

    def utilities(self, texts, questions):
        return np.tile(np.array([1.0, 0.0]), (5, 1))


class AnswersTheQuestion(FakeElectorate):
    """Everybody prefers the answer that repeats the question's last word; records the questions."""

    def __init__(self):
        self.seen = []

    def utilities(self, texts, questions):
        self.seen.append(questions)
        word = questions.split()[-1]
        return np.tile(np.array([float(word in t) for t in texts]), (5, 1))


QUESTIONS = [{"question_id": f"q{i}", "category": "c", "turns": [f"question {i}"]} for i in range(3)]


def test_pair_verdict_weighted_majority_and_groups():
    util = np.array([[1, 0], [1, 0], [0, 0], [0, 2], [0, 1]], dtype=float)  # 2 for A, 1 indifferent, 2 for B
    verdict, share, gw, votes = pair_verdict(util, GROUPS)
    assert verdict == "tie" and share == {"first": 0.4, "second": 0.4, "tie": 0.2}
    assert gw == {"short": "first", "long": "second"} and votes == {"short": (2.0, 0.0), "long": (0.0, 2.0)}
    verdict, share, _, _ = pair_verdict(util, GROUPS, weights=np.array([1, 1, 1, 1, 3.0]))
    assert verdict == "second" and share["second"] == pytest.approx(4 / 7)


def test_pair_verdict_rejects_bad_shapes():
    with pytest.raises(ValueError, match="shape"):
        pair_verdict(np.zeros((5, 3)), GROUPS)
    with pytest.raises(ValueError, match="group labels"):
        pair_verdict(np.zeros((4, 2)), GROUPS)


def test_records_follow_fastchat_pair_schema():
    a1 = {"q0": "short", "q1": "a much longer answer than that", "q2": "same"}
    a2 = {"q0": "a longer baseline answer", "q1": "tiny", "q2": "same"}
    recs = judge_pairs(FakeElectorate(), QUESTIONS, a1, a2, "dpo-sc-prompt-n4-seed1", "sft", tstamp=2.0)
    assert [r["question_id"] for r in recs] == ["q0", "q1", "q2"]
    r0 = recs[0]
    # keys FastChat's load_pairwise_model_judgments and show_result read
    for key in ("question_id", "model_1", "model_2", "g1_winner", "g2_winner", "judge",
                "g1_user_prompt", "g1_judgment", "g2_user_prompt", "g2_judgment", "turn", "tstamp"):
        assert key in r0
    assert r0["model_1"] == "dpo-sc-prompt-n4-seed1" and r0["model_2"] == "sft" and r0["turn"] == 1
    assert [(r["g1_winner"], r["g2_winner"]) for r in recs] == [
        ("model_1", "model_1"), ("model_2", "model_2"), ("tie", "tie")]
    assert r0["g1_group_winners"] == r0["g2_group_winners"] == {"short": "model_1", "long": "model_2"}
    assert r0["g1_vote_share"] == {"model_1": 0.6, "model_2": 0.4, "tie": 0.0}
    assert recs[2]["g1_vote_share"]["tie"] == 1.0
    assert r0["g1_judgment"].endswith("[[A]]") and r0["g2_judgment"].endswith("[[B]]")
    assert "[Answer A]\nshort" in r0["g1_user_prompt"] and "[Answer A]\na longer" in r0["g2_user_prompt"]
    json.dumps(recs)  # plain JSON types only


def test_both_orders_are_judged_separately():
    a = {q["question_id"]: "x" for q in QUESTIONS}
    recs = judge_pairs(FirstIsBest(), QUESTIONS, a, a, "m", "b")
    assert {(r["g1_winner"], r["g2_winner"]) for r in recs} == {("model_1", "model_2")}


def test_the_judge_is_given_the_question():
    e = AnswersTheQuestion()
    a1 = {"q0": "about 0", "q1": "about 9", "q2": "about 2"}
    a2 = {"q0": "about 5", "q1": "about 1", "q2": "about 7"}
    recs = judge_pairs(e, QUESTIONS, a1, a2, "m", "b")
    assert e.seen == ["question 0", "question 0", "question 1", "question 1", "question 2", "question 2"]
    assert [r["g1_winner"] for r in recs] == ["model_1", "model_2", "model_1"]
    assert recs[1]["g1_user_prompt"].startswith("[Question]\nquestion 1\n")


def test_the_real_electorate_prefers_an_answer_to_the_question():
    from prefsweep.eval.judges.electorate import electorate_from_config
    from tests.conftest import load_config

    cfg = load_config()
    e = electorate_from_config({"data": {k: cfg["data"][k] for k in ("source", "seed", "synthetic")}})
    q = [{"question_id": "q0", "category": "computers", "turns": ["How do I back up my files?"]}]
    right = {"q0": "To back up your files, keep things updated and backed up. Keep 3 backups in different places."}
    wrong = {"q0": "To cook rice, keep the heat low and stay close. Cook it for 3 minutes."}
    assert judge_pairs(e, q, right, wrong, "m", "b")[0]["g1_vote_share"]["model_1"] == 1.0


def test_missing_answer_names_the_model():
    with pytest.raises(ValueError, match=r"sft: no answer to 1 question\(s\), e.g. \['q2'\]"):
        judge_pairs(FakeElectorate(), QUESTIONS, {"q0": "a", "q1": "b", "q2": "c"}, {"q0": "a", "q1": "b"}, "m", "sft")


CONFIG = {
    "experiment": "t",
    "data": {"source": "synthetic", "seed": 0, "synthetic": {
        "n_prompts": 10, "n_candidates": 3, "noise": 0.5, "jitter": 0.1,
        "quality": {"well_formed": 4.0, "answers_question": 4.0},
        "voter_groups": [
            {"name": "polite", "size": 3, "length": {"target": 12, "penalty": 0.1}, "weights": {"politeness": 1.0}},
            {"name": "funny", "size": 2, "length": {"target": 12, "penalty": 0.1}, "weights": {"humour": 1.0}}]}},
    "eval": {"judge": {"type": "electorate"}, "baseline": "zero"},
}


def _answers(path, model, texts):
    path.write_text("".join(json.dumps({"question_id": q, "answer_id": "x", "model_id": model,
                                        "choices": [{"index": 0, "turns": [t]}], "tstamp": 0.0}) + "\n"
                            for q, t in texts.items()))
    return path


BREAD = "To bake bread, follow a simple recipe first."


def _files(tmp_path):
    (tmp_path / "q.jsonl").write_text("".join(json.dumps(q) + "\n" for q in QUESTIONS))
    m = _answers(tmp_path / "dpo-sc-size-n4-seed2.jsonl", "dpo-sc-size-n4-seed2",
                 {"q0": f"Happy to help. {BREAD}", "q1": f"{BREAD} Haha, it gets easier.", "q2": BREAD})
    b = _answers(tmp_path / "sft.jsonl", "sft", {"q0": BREAD, "q1": f"Great question! {BREAD} Good luck!", "q2": BREAD})
    return m, b, tmp_path / "q.jsonl"


def test_script_with_the_real_electorate(tmp_path, monkeypatch, capsys):
    # The electorate needs no client settings, no cache (a --cache given by a shared rule is unused).
    monkeypatch.delenv("PREFSWEEP_JUDGE_CLIENT", raising=False)
    m, b, q = _files(tmp_path)
    out = tmp_path / "judgment" / "electorate_pair" / "dpo-sc-size-n4-seed2.jsonl"
    load_script("judge").main(["--config-json", json.dumps(CONFIG), "--answers", str(m),
                               "--baseline-answers", str(b), "--questions", str(q),
                               "--out", str(out), "--cache", str(tmp_path / "unused")])
    recs = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["model_1"] for r in recs] == ["dpo-sc-size-n4-seed2"] * 3 and recs[0]["model_2"] == "sft"
    assert recs[0]["g1_winner"] == "model_1"  # polite majority
    assert recs[1]["g1_winner"] == "model_2" and recs[1]["g1_group_winners"]["funny"] == "model_1"
    assert recs[2]["g1_winner"] == recs[2]["g2_winner"] == "tie"
    assert recs[0]["judge"] == ["electorate", "weighted-majority"]
    assert f"wrote 3 judgments to {out}: 1 wins, 1 losses, 1 ties" in capsys.readouterr().out
    assert not (tmp_path / "unused").exists()


def test_script_errors_name_the_key_or_the_model(tmp_path):
    m, b, q = _files(tmp_path)
    argv = ["--answers", str(m), "--baseline-answers", str(b), "--questions", str(q), "--out", str(tmp_path / "o.jsonl")]
    no_seed = {**CONFIG, "data": {k: v for k, v in CONFIG["data"].items() if k != "seed"}}
    with pytest.raises(SystemExit, match="judge: error: data.seed: missing from the judge job's config slice"):
        load_script("judge").main(["--config-json", json.dumps(no_seed), *argv])
    b.write_text(b.read_text().splitlines(keepends=True)[0])
    with pytest.raises(SystemExit, match=r"judge: error: sft: no answer to 2 question\(s\), e.g. \['q1', 'q2'\]"):
        load_script("judge").main(["--config-json", json.dumps(CONFIG), *argv])
    assert not (tmp_path / "o.jsonl").exists()
