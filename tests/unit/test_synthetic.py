"""The synthetic electorate: features of any text, voters, deterministic ballots, disagreement."""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest

from prefsweep.data.arms import winner_disagreement
from prefsweep.data.ballots import validate_ballots
from prefsweep.data.synthetic import Electorate, parse_answer, text_features, well_formedness
from prefsweep.data.synthetic_phrases import FEATURES, MARKER_CAP, TOPICS, question_task
from tests.conftest import load_config

Q = "How do I back up my files on a budget?"
CORE = "To back up your files, keep things updated and backed up."  # 11 words, the core of Q
DETAIL = "Keep 3 backups in different places."  # 6 words, one detail marker
OPENER, CLOSER = "Happy to help.", "Good luck!"  # 3 and 2 words, one politeness marker each
HUMOUR = "Haha, it gets easier."  # 4 words, one humour marker


def config(**syn) -> dict:
    """The default config (validated, schema defaults filled), ``data.synthetic`` overridden."""
    cfg = load_config()
    cfg["data"]["synthetic"].update(copy.deepcopy(syn))
    return cfg


def test_feature_names():
    assert FEATURES == ("words", "well_formed", "answers_question", "politeness", "detail", "humour")


@pytest.mark.parametrize("text, words, covered, answers, markers", [
    # a whole answer in the inventory's order: share 1
    (f"{OPENER} {CORE} {DETAIL} {HUMOUR} {CLOSER}", 26, 26, True, (2, 1, 1)),
    # case and spacing do not matter
    (f"  {CORE.upper()}   {DETAIL.lower()} ", 17, 17, True, (0, 1, 0)),
    # a repeated phrase (even with another number) counts against: 17 of 23 words
    (f"{CORE} {DETAIL} Keep 5 backups in different places.", 23, 17, True, (0, 1, 0)),
    # out of order: the closer before the core; the longest ordered chain is core + detail
    (f"{CLOSER} {CORE} {DETAIL}", 19, 17, True, (0, 1, 0)),
    # a broken sentence and an unfinished one are not covered
    (f"{OPENER} {CORE} Keep Keep voile every 28 Keep of your", 22, 14, True, (1, 0, 0)),
    # the core of another task: well formed, but it does not answer Q
    ("To cook rice, use fresh food and taste as you go.", 11, 11, False, (0, 0, 0)),
    # markers outside inventory phrases count for nothing
    ("Thanks! Happy to help. lol haha 5 7 9 for example, specifically 3.", 13, 3, False, (1, 0, 0)),
    ("To start sets.", 3, 0, False, (0, 0, 0)),
    ("", 0, 0, False, (0, 0, 0)),
])
def test_parse_answer_hand_cases(text, words, covered, answers, markers):
    p = parse_answer(text, question_task(Q))
    assert (p.words, p.covered_words, p.answers_question, p.markers) == (words, covered, answers, markers)
    assert p.well_formed == (covered / words if words else 0.0)
    assert well_formedness(text) == p.well_formed  # the share does not depend on the question


def test_text_features_hand_case_and_cap():
    f = text_features([f"{OPENER} {CORE} {DETAIL} {HUMOUR} {CLOSER}", ""], Q)
    np.testing.assert_array_equal(f, [[26, 1.0, 1.0, 2, 1, 1], [0, 0.0, 0.0, 0, 0, 0]])
    details = " ".join(p.format(n=3) for p in TOPICS["computers"].details) + " For example, note what works."
    f = text_features([f"{CORE} {details}"], [Q])
    assert f[0, 4] == MARKER_CAP  # five detail phrases, capped
    with pytest.raises(ValueError, match="2 questions for 1 texts"):
        text_features(["x"], [Q, Q])


def test_question_task():
    assert question_task(Q) == question_task("Any tips to back up my files?") is not None
    assert question_task(Q) != question_task("How do I cook rice?")
    assert question_task("Could you tell me how to back up my files quickly?") == question_task(Q)  # reworded
    assert question_task("What is the capital of France?") is None and question_task(None) is None


def test_utility_formula_by_hand():
    groups = [
        {"name": "short", "size": 1, "length": {"target": 10, "penalty": 2.0}, "weights": {"politeness": 1.0}},
        {"name": "funny", "size": 1, "length": {"target": 30, "penalty": 0.5}, "weights": {"humour": 3.0}},
    ]
    e = Electorate.from_config(config(jitter=0.0, voter_groups=groups,
                                      quality={"well_formed": 4.0, "answers_question": 2.0}))
    text = f"{OPENER} {CORE} {HUMOUR}"  # 18 words, well formed, answers Q, 1 politeness, 1 humour
    u = e.utilities([text, ""], Q)
    # short: 4 + 2 - 2.0 * |18 - 10| / 10 + 1.0 * 1 = 5.4; empty: -2.0 * 10 / 10 = -2
    # funny: 4 + 2 - 0.5 * |18 - 30| / 10 + 3.0 * 1 = 8.4; empty: -0.5 * 30 / 10 = -1.5
    np.testing.assert_allclose(u, [[5.4, -2.0], [8.4, -1.5]])
    np.testing.assert_allclose(e.utilities([text], "What is the capital of France?"), [[3.4], [6.4]])
    assert e.groups == ["short", "funny"] and e.group_names == ["short", "funny"] and e.voters == ["v0", "v1"]


def test_electorate_voters_are_deterministic_jittered():
    e = Electorate.from_config(config())
    assert e.groups == ["concise"] * 5 + ["thorough"] * 2 + ["playful"] * 2
    assert e.style_weights.shape == (9, 3) and (e.length_penalty >= 0).all()
    np.testing.assert_array_equal(Electorate.from_config(config()).style_weights, e.style_weights)
    assert not np.array_equal(Electorate.from_config(config(), seed=1).style_weights, e.style_weights)


def test_no_group_prefers_an_empty_answer_to_a_good_one():
    e = Electorate.from_config(config())
    recs = e.make_ballots(200, 6, seed=0)
    texts = [c["text"] for r in recs for c in r["candidates"]]
    prompts = [r["prompt"] for r in recs for _ in r["candidates"]]
    good = e.utilities(texts, prompts)
    empty = e.utilities([""] * len(texts), prompts)
    assert (good > empty).all()  # every voter, every candidate


def test_groups_want_different_things():
    """The noise-free favourite candidate of one group is another group's favourite on a minority
    of prompts only."""
    e = Electorate.from_config(config())
    recs = e.make_ballots(300, 6, seed=0)
    labels = np.array(e.groups)
    best = {g: [] for g in e.group_names}
    for r in recs:
        u = e.utilities([c["text"] for c in r["candidates"]], r["prompt"])
        for g in e.group_names:
            best[g].append(int(np.argmax(u[labels == g].mean(axis=0))))
    b = {g: np.array(v) for g, v in best.items()}
    assert (b["concise"] == b["thorough"]).mean() < 0.35
    assert (b["concise"] == b["playful"]).mean() < 0.5
    assert (b["thorough"] == b["playful"]).mean() < 0.5


def test_electorate_rejects_unknown_features_and_names_missing_keys():
    bad = [{"name": "g", "size": 1, "length": {"target": 10, "penalty": 1.0}, "weights": {"wit": 1.0}}]
    with pytest.raises(ValueError, match=r"voter_groups\[g\].weights: unknown features \['wit'\]"):
        Electorate.from_config(config(voter_groups=bad))
    no_length = [{"name": "g", "size": 1, "weights": {}}]
    with pytest.raises(ValueError, match=r"data.synthetic.voter_groups\[g\].length: missing"):
        Electorate.from_config(config(voter_groups=no_length))
    cfg = config()
    del cfg["data"]["synthetic"]["quality"]
    with pytest.raises(ValueError, match=r"data.synthetic.quality: missing"):
        Electorate.from_config(cfg)


def test_ballots_are_deterministic_valid_and_short():
    e = Electorate.from_config(config())
    a = e.make_ballots(120, 5, seed=3)
    assert json.dumps(a) == json.dumps(e.make_ballots(120, 5, seed=3))
    other = e.make_ballots(120, 5, seed=4)
    assert [r["prompt"] for r in other] != [r["prompt"] for r in a]
    validate_ballots(a)
    assert len({r["topic"] for r in a}) == len(TOPICS) >= 6
    assert len({r["prompt"] for r in a}) == 120  # distinct while the inventory allows
    texts = [c["text"] for r in a for c in r["candidates"]]
    words = [len(t.split()) for t in texts]
    assert min(words) >= 10 and max(words) <= 40
    for r in a:
        assert [c["id"] for c in r["candidates"]] == [f"c{k}" for k in range(5)]
        assert len(r["votes"]) == 9
        assert all(sorted(t[0] for t in v["ranking"]) == [f"c{k}" for k in range(5)] for v in r["votes"])
        assert [v["group"] for v in r["votes"]] == e.groups


def test_construction_features_equal_measured_features():
    from prefsweep.data.synthetic_responses import compose_responses, draw_prompts

    rng = np.random.default_rng(0)
    prompts = draw_prompts(rng, 300)
    texts, feats = compose_responses(rng, prompts, 6)
    measured = text_features(texts, [p for _, _, p in prompts for _ in range(6)])
    np.testing.assert_array_equal(feats, measured)
    assert (measured[:, 1] == 1).all() and (measured[:, 2] == 1).all()  # every candidate is a good answer


def test_noise_free_voters_rank_by_utility():
    e = Electorate.from_config(config(noise=0.0))
    recs = e.make_ballots(20, 4, seed=0)
    for r in recs:
        u = e.utilities([c["text"] for c in r["candidates"]], r["prompt"])
        for v, vote in enumerate(r["votes"]):
            ranked = [int(t[0][1:]) for t in vote["ranking"]]
            assert (np.diff(u[v, ranked]) <= 1e-12).all()


def test_majority_and_borda_disagree_on_a_measurable_share():
    cfg = config()
    recs = Electorate.from_config(cfg).make_ballots(1200, 6, seed=0)
    stats = winner_disagreement(recs, "borda", 0)
    assert 0.10 <= stats["share_disagree"] <= 0.30, stats
    assert winner_disagreement(recs, "copeland", 0)["disagree"] == 0  # Copeland is Condorcet-consistent


def test_default_synthetic_ballots_pass_the_jsonl_validator(tmp_path):
    """Issue 22, finding 11: the default ballots (config/config.yaml's data.synthetic), written out
    and read back as a user's jsonl file, pass its validator: no prompt has two candidates with
    the same text (10 of the default maj pool's pairs had chosen == rejected)."""
    from prefsweep.data.ballots import write_ballots
    from prefsweep.data.sources.jsonl import load_jsonl

    cfg = config()
    syn = cfg["data"]["synthetic"]
    recs = Electorate.from_config(cfg).make_ballots(syn["n_prompts"], syn["n_candidates"], cfg["data"]["seed"])
    write_ballots(tmp_path / "ballots.jsonl", recs)
    assert load_jsonl(tmp_path / "ballots.jsonl") == recs


def test_only_repeated_responses_are_redrawn():
    """A response that repeats an earlier one of its prompt is redrawn from a child stream: every
    other response is the one the first draw gave, and all are distinct, even at K = 26."""
    from prefsweep.data.prompts import normalize_text
    from prefsweep.data.synthetic_phrases import phrase_table
    from prefsweep.data.synthetic_responses import compose_responses, draw_prompts, draw_slots

    k = 26
    prompts = draw_prompts(np.random.default_rng(5), 400)
    rng = np.random.default_rng(5)
    draw_prompts(rng, 400)
    table, names = phrase_table(), sorted(TOPICS)
    topic_ix = np.repeat([names.index(t) for t, _, _ in prompts], k)
    task_ix = np.repeat([TOPICS[t].tasks.index(task) for t, task, _ in prompts], k)
    first = [" ".join(table.text[j] for j in r if j >= 0) for r in draw_slots(rng, table, topic_ix, task_ix).tolist()]
    after_first = rng.random()

    rng = np.random.default_rng(5)
    draw_prompts(rng, 400)
    texts, feats = compose_responses(rng, prompts, k)
    assert rng.random() == after_first  # the stream goes on as if nothing was redrawn
    changed = [i for i in range(len(texts)) if texts[i] != first[i]]
    repeated = [i for i in range(len(first)) if normalize_text(first[i]) in
                {normalize_text(t) for t in first[i - i % k: i]}]
    assert changed == repeated and len(repeated) > 50  # K = 26: many repeats to redraw
    for p in range(400):
        assert len({normalize_text(t) for t in texts[p * k: (p + 1) * k]}) == k
    np.testing.assert_array_equal(feats, text_features(texts, [q for _, _, q in prompts for _ in range(k)]))
