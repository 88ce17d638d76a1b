"""Degenerate text cannot win: adversarial answers against the electorate judge.

On the default world (config/config.yaml, validated with the schema's defaults) and on another
electorate (other groups, sizes, weights, length targets and seed), every answer below, given for
every eval question, must LOSE against that question's best response (the reference answer as
:func:`prefsweep.data.series.eval_questions` makes it: the ``sc.rule`` winner of its ballot) on at
least 95% of the eval questions, judged by :func:`prefsweep.eval.judges.electorate.judge_pairs` (the
judge job's code, both answer orders):

* an empty answer;
* random characters (letters, digits, punctuation and spaces);
* marker spam: politeness, humour and detail markers without an answer;
* one sentence repeated for every question ("To start sets.", what a collapsed model wrote);
* a fluent answer to a different question: the best response of an eval question of another
  topic.
"""

from __future__ import annotations

import copy
import string

import numpy as np
import pytest

from prefsweep.eval.judges.electorate import electorate_from_config, judge_pairs
from prefsweep.data.series import eval_questions, make_split
from prefsweep.eval.judgments import outcome
from tests.conftest import load_config

#: Share of questions an adversarial answer must lose at least.
MIN_LOSS_SHARE = 0.95
#: Eval questions per world (more than the default 48, so 95% is a meaningful bar).
N_EVAL = 120
SPAM = "Thanks! Happy to help. lol haha 5 7 9 for example, specifically 3."
REPEATED = "To start sets."


def default_world() -> dict:
    cfg = load_config()
    cfg["data"]["n_eval_prompts"] = N_EVAL
    return cfg


def other_world() -> dict:
    """Another electorate: four groups of other sizes, other tastes and length targets, another
    seed, noisier voters."""
    cfg = copy.deepcopy(default_world())
    syn = cfg["data"]["synthetic"]
    syn["noise"] = 1.0
    syn["jitter"] = 0.3
    syn["n_prompts"] = 600
    syn["voter_groups"] = [
        {"name": "verbose", "size": 4, "length": {"target": 38, "penalty": 0.8},
         "weights": {"politeness": 0.0, "detail": 1.5, "humour": 0.4}},
        {"name": "jokers", "size": 3, "length": {"target": 20, "penalty": 0.5},
         "weights": {"politeness": 0.2, "detail": -0.3, "humour": 2.0}},
        {"name": "polite", "size": 3, "length": {"target": 25, "penalty": 1.0},
         "weights": {"politeness": 1.5, "detail": 0.2, "humour": -0.5}},
        {"name": "terse", "size": 1, "length": {"target": 10, "penalty": 3.0},
         "weights": {"politeness": -0.5, "detail": 0.0, "humour": 0.0}},
    ]
    cfg["data"]["seed"] = 7
    return cfg


WORLDS = {"default": default_world, "other": other_world}


def world(name: str):
    """(electorate, questions, reference answers by question id) of one world."""
    from prefsweep.data.sources import load_source

    cfg = WORLDS[name]()
    records = load_source(cfg, None)
    questions, refs = eval_questions(records, make_split(records, cfg["data"]), cfg)
    reference = {r["question_id"]: r["choices"][0]["turns"][0] for r in refs}
    judge_slice = {"data": {k: cfg["data"][k] for k in ("source", "seed", "synthetic")}}
    return electorate_from_config(judge_slice), questions, reference


def random_characters(rng: np.random.Generator) -> str:
    alphabet = list(string.ascii_letters + string.digits + string.punctuation + "      ")
    return "".join(rng.choice(alphabet, size=int(rng.integers(20, 200)))).strip()


def adversaries(questions: list[dict], reference: dict[str, str]) -> dict[str, dict[str, str]]:
    """Adversarial answer files: name -> {question id: answer}."""
    rng = np.random.default_rng(0)
    ids = [q["question_id"] for q in questions]
    topic = {q["question_id"]: q["category"] for q in questions}
    # A fluent answer to another question: the best response of the next question of another topic.
    other = {}
    for i, qid in enumerate(ids):
        j = next(k for k in range(1, len(ids)) if topic[ids[(i + k) % len(ids)]] != topic[qid])
        other[qid] = reference[ids[(i + j) % len(ids)]]
    return {
        "empty": dict.fromkeys(ids, ""),
        "random characters": {q: random_characters(rng) for q in ids},
        "marker spam": dict.fromkeys(ids, SPAM),
        "one sentence": dict.fromkeys(ids, REPEATED),
        "another question's answer": other,
    }


def loss_shares(electorate, questions, reference) -> dict[str, float]:
    shares = {}
    for name, answers in adversaries(questions, reference).items():
        recs = judge_pairs(electorate, questions, answers, reference, "adversary", "reference", tstamp=0.0)
        losses = [outcome(r["g1_winner"], r["g2_winner"]) == "loss" for r in recs]
        shares[name] = float(np.mean(losses))
    return shares


@pytest.fixture(scope="module", params=sorted(WORLDS))
def shares(request) -> tuple[str, int, dict[str, float]]:
    """(world, number of questions, loss share of every adversarial answer)."""
    electorate, questions, reference = world(request.param)
    return request.param, len(questions), loss_shares(electorate, questions, reference)


@pytest.mark.parametrize("name", ["empty", "random characters", "marker spam", "one sentence",
                                  "another question's answer"])
def test_adversarial_answer_loses_to_the_best_response(shares, name):
    world_name, n, by_name = shares
    assert n == N_EVAL
    assert by_name[name] >= MIN_LOSS_SHARE, (
        f"{world_name} world: {name!r} loses only {by_name[name]:.1%} of {n} questions (all: {by_name})")
