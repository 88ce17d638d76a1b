"""The synthetic electorate: features of any text, voters, deterministic ballots, disagreement."""

from __future__ import annotations

import json

import numpy as np
import pytest

from prefsweep.arms import winner_disagreement
from prefsweep.ballots import validate_ballots
from prefsweep.synthetic import FEATURES, MARKER_CAP, TOPICS, Electorate, text_features

#: The voter groups proposed as defaults (9 voters: no pairwise majority ties).
GROUPS = [
    {"name": "concise", "size": 5, "weights": {"length": -1.0, "politeness": 0.3, "detail": 0.2, "humour": 0.0}},
    {"name": "thorough", "size": 2, "weights": {"length": 0.5, "politeness": 0.2, "detail": 1.2, "humour": -0.2}},
    {"name": "playful", "size": 2, "weights": {"length": 0.0, "politeness": -0.2, "detail": 0.0, "humour": 1.5}},
]


def config(seed: int = 0, noise: float = 0.6, groups=GROUPS) -> dict:
    return {"data": {"seed": seed, "synthetic": {"n_prompts": 100, "n_candidates": 6, "noise": noise,
                                                 "voter_groups": groups}}}


def test_features_of_any_text():
    f = text_features([
        "Thanks! Please use 2 cups, for example.",
        "haha lol, just kidding. Fun fact: no joke.",
        "please " * 10,
        "",
    ])
    assert list(FEATURES) == ["length", "politeness", "detail", "humour"]
    np.testing.assert_allclose(f[0], [0.7, 2, 2, 0])
    np.testing.assert_allclose(f[1], [0.8, 0, 0, min(5, MARKER_CAP)])
    np.testing.assert_allclose(f[2], [1.0, MARKER_CAP, 0, 0])  # capped
    np.testing.assert_allclose(f[3], [0, 0, 0, 0])


def test_electorate_voters_and_utilities():
    e = Electorate.from_config(config())
    assert e.groups == ["concise"] * 5 + ["thorough"] * 2 + ["playful"] * 2
    assert e.voters[:2] == ["v0", "v1"] and e.weights.shape == (9, len(FEATURES))
    texts = ["Short answer.", "A much longer answer that goes on and on about many things at once."]
    u = e.utilities(texts)
    assert u.shape == (9, 2)
    np.testing.assert_allclose(u, e.weights @ e.features(texts).T)
    # jitter is small: every concise voter prefers the short answer
    assert (u[:5, 0] > u[:5, 1]).all()
    same = Electorate.from_config(config())
    np.testing.assert_array_equal(same.weights, e.weights)
    assert not np.array_equal(Electorate.from_config(config(), seed=1).weights, e.weights)


def test_electorate_rejects_unknown_features():
    bad = [{"name": "g", "size": 1, "weights": {"wit": 1.0}}]
    with pytest.raises(ValueError, match=r"voter_groups\[g\].weights: unknown features \['wit'\]"):
        Electorate.from_config(config(groups=bad))


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
    from prefsweep.synthetic import _compose_responses, _draw_prompts

    rng = np.random.default_rng(0)
    texts, feats = _compose_responses(rng, _draw_prompts(rng, 300), 6)
    np.testing.assert_array_equal(feats, text_features(texts))


def test_noise_free_voters_rank_by_utility():
    e = Electorate.from_config(config(noise=0.0))
    recs = e.make_ballots(20, 4, seed=0)
    for r in recs:
        u = e.utilities([c["text"] for c in r["candidates"]])
        for v, vote in enumerate(r["votes"]):
            ranked = [int(t[0][1:]) for t in vote["ranking"]]
            assert (np.diff(u[v, ranked]) <= 1e-12).all()


def test_majority_and_borda_disagree_on_a_measurable_share():
    recs = Electorate.from_config(config()).make_ballots(1200, 6, seed=0)
    stats = winner_disagreement(recs, "borda", 0)
    assert 0.10 <= stats["share_disagree"] <= 0.30, stats
    assert winner_disagreement(recs, "copeland", 0)["disagree"] == 0  # Copeland is Condorcet-consistent
