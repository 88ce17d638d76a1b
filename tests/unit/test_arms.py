"""Pair building: supports, the maj and sc arms, hand-made profiles and pref_voting as oracle."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pandas as pd
import pytest
from pref_voting.profiles_with_ties import ProfileWithTies
from pref_voting.voting_methods import beat_path, borda, copeland, minimax, ranked_pairs
from pref_voting.weighted_majority_graphs import MarginGraph

from prefsweep.data.arms import maj_pairs, sc_outcomes, sc_pairs, sc_winners, winner_disagreement
from prefsweep.data.ballot_table import ballots_table, read_ballots_table, rounded_weights
from prefsweep.data.ballots import validate_ballots, write_ballots
from prefsweep.data.rules import rule_scores
from prefsweep.data.support import majority_cycles, support_batches, support_matrix


def rec(pid: str, rankings: list[str], counts: list[int] | None = None, topic: str = "t") -> dict:
    """A record from rankings written as strings of candidate letters, best first."""
    cands = sorted(set("".join(rankings)))
    votes = []
    for r, n in zip(rankings, counts or [1] * len(rankings)):
        votes += [{"ranking": [[c] for c in r], "weight": 1.0}] * n
    return {"prompt_id": pid, "prompt": f"question {pid}", "topic": topic,
            "candidates": [{"id": c, "text": f"answer {c}"} for c in cands], "votes": votes}


CYCLE = rec("cycle", ["abc", "bca", "cab"])
#: 3 voters a > b > c, 2 voters b > c > a: a is the Condorcet winner, b the Borda winner.
SPLIT = rec("split", ["abc", "bca"], [3, 2])


def test_condorcet_cycle():
    pairs = maj_pairs([CYCLE])
    got = set(zip(pairs["chosen_id"], pairs["rejected_id"]))
    assert got == {("a", "b"), ("b", "c"), ("c", "a")}
    assert pairs["cycle"].all() and (pairs["margin"] == 1).all() and (pairs["n_voters"] == 3).all()
    out, batches = sc_outcomes([CYCLE], "borda", seed=0)
    assert majority_cycles(batches[0].margin).tolist() == [True]
    assert out.condorcet.tolist() == [-1] and out.n_winners.tolist() == [3]
    # every candidate ties on Borda: the winner and loser are drawn (seeded) and flagged
    sc = sc_pairs([CYCLE], "borda", "winner_loser", seed=0)
    assert len(sc) == 1 and sc["tie_broken"].all() and sc["chosen_id"][0] != sc["rejected_id"][0]
    draws = {tuple(sc_pairs([CYCLE], "borda", "winner_loser", seed=s)[["chosen_id", "rejected_id"]].iloc[0]) for s in range(20)}
    assert len(draws) > 1
    assert sc_pairs([CYCLE], "borda", "winner_loser", 3).equals(sc_pairs([CYCLE], "borda", "winner_loser", 3))


def test_borda_winner_who_is_not_the_condorcet_winner():
    pairs = maj_pairs([SPLIT])
    # margins: b > c by 5, a > b and a > c by 1; ordered by margin, then position
    assert list(zip(pairs["chosen_id"], pairs["rejected_id"], pairs["margin"])) == [
        ("b", "c", 5.0), ("a", "b", 1.0), ("a", "c", 1.0)]
    assert not pairs["cycle"].any() and (pairs["n_voters"] == 5).all()
    sc = sc_pairs([SPLIT], "borda", "winner_loser", 0)
    # symmetric Borda = sum of margins: a 2, b 4, c -6
    assert list(zip(sc["chosen_id"], sc["rejected_id"], sc["margin"])) == [("b", "c", 10.0)]
    assert not sc["tie_broken"].any()
    assert sc_winners([SPLIT], "copeland", 0) == ["a"] and sc_winners([SPLIT], "schulze", 0) == ["a"]
    stats = winner_disagreement([SPLIT, CYCLE], "borda", 0)
    assert (stats["condorcet"], stats["disagree"], stats["cycles"]) == (1, 1, 1)
    assert stats["share_disagree"] == 0.5


def test_winner_vs_all_and_other_rules():
    sc = sc_pairs([SPLIT], "borda", "winner_vs_all", 0)
    assert list(zip(sc["chosen_id"], sc["rejected_id"], sc["margin"])) == [("b", "c", 10.0), ("b", "a", 2.0)]
    mm = sc_pairs([SPLIT], "minimax", "winner_loser", 0)
    assert (mm["chosen_id"][0], mm["margin"][0]) == ("a", 1.0)  # pairwise margin for non-scoring rules
    with pytest.raises(ValueError, match=r"sc.rule: unknown voting rule 'bordda'"):
        sc_pairs([SPLIT], "bordda", "winner_loser", 0)
    with pytest.raises(ValueError, match=r"sc.pairs: unknown value 'all'"):
        sc_pairs([SPLIT], "borda", "all", 0)


def reference_support(record: dict) -> tuple[np.ndarray, np.ndarray]:
    """``(S, C)`` of one record, vote by vote in float64 (the definition in prefsweep.data.support,
    written plainly): the oracle of the vectorized Arrow path."""
    ids = {c["id"]: k for k, c in enumerate(record["candidates"])}
    k = len(ids)
    s = np.zeros((k, k))
    c = np.zeros((k, k), dtype=np.int64)
    for vote in record["votes"]:
        w = float(vote.get("weight", 1.0))
        if "ranking" in vote:
            tier = np.full(k, len(vote["ranking"]))
            for t, members in enumerate(vote["ranking"]):
                for cid in members:
                    tier[ids[cid]] = t
            pref = tier[:, None] < tier[None, :]
            s += w * pref
            c += pref
        elif vote["winner"] is not None:
            a, b = vote["pair"]
            win, lose = ids[vote["winner"]], ids[b if vote["winner"] == a else a]
            s[win, lose] += w
            c[win, lose] += 1
    return s, c


def test_support_with_ties_unlisted_pairs_and_weights():
    r = {"prompt_id": "p", "prompt": "q", "topic": "t",
         "candidates": [{"id": x, "text": x} for x in "abcd"],
         "votes": [{"ranking": [["b"], ["a", "c"]], "weight": 2.0},      # d unlisted: last
                   {"pair": ["d", "a"], "winner": "d", "weight": 0.5},
                   {"pair": ["a", "b"], "winner": None}]}                 # a tie: nothing
    validate_ballots([r])
    s, c = support_matrix(r)
    expected = np.zeros((4, 4))
    expected[1, [0, 2, 3]] = 2.0
    expected[0, 3] = expected[2, 3] = 2.0
    expected[3, 0] = 0.5
    np.testing.assert_allclose(s, expected)
    assert c[3, 0] == 1 and c[0, 3] == 1 and c[0, 2] == 0


# -- random profiles against pref_voting -------------------------------------------------------


def random_records(seed: int, n: int, pairwise: bool = False) -> list[dict]:
    """Random prompts (3-6 candidates, 1-9 voters): rankings with ties, truncation and weights,
    or (``pairwise``) SHP-like pair votes with ties."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        k = int(rng.integers(3, 7))
        ids = [f"x{j}" for j in rng.permutation(k)]
        votes = []
        for _ in range(int(rng.integers(1, 10))):
            w = float(rng.choice([1.0, 1.0, 0.5, 2.0]))
            if pairwise:
                a, b = rng.choice(ids, 2, replace=False).tolist()
                winner = [a, b, None][int(rng.choice(3, p=[0.45, 0.45, 0.1]))]
                votes.append({"pair": [a, b], "winner": winner, "weight": w})
                continue
            order = rng.permutation(ids).tolist()[: int(rng.integers(1, k + 1))]
            tiers: list[list[str]] = []
            for c in order:
                if tiers and rng.random() < 0.25:
                    tiers[-1].append(c)
                else:
                    tiers.append([c])
            votes.append({"ranking": tiers, "weight": w})
        out.append({"prompt_id": f"r{seed}-{i}", "prompt": "q", "topic": "t",
                    "candidates": [{"id": c, "text": c} for c in ids], "votes": votes})
    return validate_ballots(out)


def oracle_profile(r: dict, pairwise: bool) -> ProfileWithTies:
    """pref_voting's own reading: listed candidates only, unranked below ranked (extended strict
    preference); a pair vote as a two-candidate ranking (others incomparable)."""
    pos = {c["id"]: k for k, c in enumerate(r["candidates"])}
    rankings, counts = [], []
    for v in r["votes"]:
        if pairwise:
            a, b = v["pair"]
            rank = {pos[a]: 1, pos[b]: 1} if v["winner"] is None else {
                pos[v["winner"]]: 1, pos[b if v["winner"] == a else a]: 2}
        else:
            rank = {pos[c]: t + 1 for t, tier in enumerate(v["ranking"]) for c in tier}
        rankings.append(rank)
        counts.append(v["weight"])
    prof = ProfileWithTies(rankings, rcounts=counts, candidates=list(range(len(pos))))
    if not pairwise:
        prof.use_extended_strict_preference()
    return prof


@pytest.mark.parametrize("pairwise", [False, True])
def test_fast_path_matches_pref_voting_on_random_profiles(tmp_path, pairwise):
    recs = random_records(7 if pairwise else 5, 100, pairwise)
    write_ballots(tmp_path / "b.jsonl", recs)
    table = read_ballots_table(tmp_path / "b.jsonl")
    checked = 0
    for records in (recs, table):
        out, batches = sc_outcomes(records, "borda", seed=1)
        for batch in batches:
            for rule, method in (("borda", borda), ("copeland", copeland)):
                scores = rule_scores(rule, batch.margin)
                for p, r in enumerate(batch.rec.tolist()):
                    prof = oracle_profile(recs[r], pairwise)
                    k = len(recs[r]["candidates"])
                    margins = np.array([[prof.margin(i, j) for j in range(k)] for i in range(k)])
                    np.testing.assert_allclose(batch.margin[p], margins, atol=1e-9)
                    ours = sorted(np.nonzero(scores[p] == scores[p].max())[0].tolist())
                    edata = prof.margin_graph() if rule == "borda" else prof
                    assert ours == method(edata), (rule, recs[r])
                    checked += 1
        for r, w in enumerate(out.winner.tolist()):
            assert w in borda(oracle_profile(recs[r], pairwise).margin_graph())
    assert checked == 2 * 2 * 100


def test_other_rules_go_through_pref_voting():
    # ranked_pairs is left to the hand-made profile: with many tied margins pref_voting tries
    # every tie-breaking order (its docs warn it "can take a very long time")
    assert sc_winners([SPLIT, CYCLE], "ranked_pairs", 0)[0] == "a"
    assert ranked_pairs(oracle_profile(SPLIT, False).margin_graph()) == [0]
    recs = random_records(11, 40)
    for rule, method in (("schulze", beat_path), ("beat_path", beat_path), ("minimax", minimax)):
        winners = sc_winners(recs, rule, 0)
        for r, w in zip(recs, winners):
            pos = [c["id"] for c in r["candidates"]].index(w)
            assert pos in method(oracle_profile(r, False).margin_graph()), rule


def test_arrow_table_and_records_give_identical_pairs(tmp_path):
    recs = random_records(3, 60) + random_records(4, 60, pairwise=True) + [SPLIT, CYCLE]
    write_ballots(tmp_path / "b.jsonl", recs)
    table = read_ballots_table(tmp_path / "b.jsonl")
    for fn in (maj_pairs, lambda r: sc_pairs(r, "borda", "winner_loser", 2), lambda r: sc_pairs(r, "copeland", "winner_vs_all", 2),
               lambda r: sc_pairs(r, "schulze", "winner_loser", 2)):
        a, b = fn(recs), fn(table)
        pd.testing.assert_frame_equal(a.astype({c: object for c in a.select_dtypes("string").columns}),
                                      b.astype({c: object for c in b.select_dtypes("string").columns}))


def test_tie_breaking_does_not_depend_on_other_prompts():
    recs = random_records(9, 80)
    full = sc_pairs(recs, "copeland", "winner_loser", 5).set_index("prompt_id")
    part = sc_pairs(recs[::-1][:30], "copeland", "winner_loser", 5).set_index("prompt_id")
    cols = ["chosen_id", "rejected_id", "tie_broken"]
    pd.testing.assert_frame_equal(full.loc[part.index, cols], part[cols])
    assert full["tie_broken"].any()


def test_support_batches_group_by_number_of_candidates():
    recs = random_records(2, 50)
    batches = support_batches(recs)
    ks = [b.support.shape[-1] for b in batches]
    assert ks == sorted(set(ks)) and sum(len(b.rec) for b in batches) == 50
    for b in batches:
        for p, r in enumerate(b.rec.tolist()):
            s, c = reference_support(recs[r])
            np.testing.assert_allclose(b.support[p], s)
            np.testing.assert_array_equal(b.count[p], c)
            np.testing.assert_array_equal(support_matrix(recs[r])[1], c)


# -- exact arithmetic on decimal weights -----------------------------------------------------

DECIMAL_WEIGHTS = (0.1, 0.2, 0.3, 0.4, 0.6, 0.7)


def decimal_profiles(seed: int, n: int) -> list[dict]:
    """Random prompts (3-4 candidates, 2-6 votes) with weights from :data:`DECIMAL_WEIGHTS`:
    sums such as 0.1 + 0.2 against 0.3 tie exactly but not in binary floating point. Mostly
    complete rankings, some with tied tiers or truncated, some pair votes."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        k = int(rng.integers(3, 5))
        ids = [f"c{j}" for j in range(k)]
        votes = []
        for _ in range(int(rng.integers(2, 7))):
            w = float(rng.choice(DECIMAL_WEIGHTS))
            kind = rng.random()
            if kind < 0.15:
                a, b = rng.choice(ids, 2, replace=False).tolist()
                votes.append({"pair": [a, b], "winner": [a, b, None][int(rng.integers(3))], "weight": w})
                continue
            order = rng.permutation(ids).tolist()
            if kind < 0.3:
                order = order[: int(rng.integers(1, k + 1))]
            tiers: list[list[str]] = []
            for c in order:
                if tiers and kind < 0.3 and rng.random() < 0.3:
                    tiers[-1].append(c)
                else:
                    tiers.append([c])
            votes.append({"ranking": tiers, "weight": w})
        out.append({"prompt_id": f"d{i}", "prompt": "q", "topic": "t",
                    "candidates": [{"id": c, "text": c} for c in ids], "votes": votes})
    return validate_ballots(out)


def exact_margins(r: dict) -> list[list[Fraction]]:
    """M of one record with ``fractions.Fraction`` weights, read as the decimals written in the
    file (``Fraction("0.1")``): the reference the arms must equal."""
    pos = {c["id"]: k for k, c in enumerate(r["candidates"])}
    k = len(pos)
    s = [[Fraction(0)] * k for _ in range(k)]
    for v in r["votes"]:
        w = Fraction(repr(v.get("weight", 1.0)))
        if "ranking" in v:
            tier = [len(v["ranking"])] * k
            for t, members in enumerate(v["ranking"]):
                for c in members:
                    tier[pos[c]] = t
            for i in range(k):
                for j in range(k):
                    if tier[i] < tier[j]:
                        s[i][j] += w
        elif v["winner"] is not None:
            a, b = v["pair"]
            s[pos[v["winner"]]][pos[b if v["winner"] == a else a]] += w
    return [[s[i][j] - s[j][i] for j in range(k)] for i in range(k)]


def exact_outcome(m: list[list[Fraction]]) -> dict:
    k = len(m)
    beats = {i: {j for j in range(k) if m[i][j] > 0} for i in range(k)}

    def reaches(a: int, b: int) -> bool:
        seen, todo = set(), [a]
        while todo:
            x = todo.pop()
            for y in beats[x] - seen:
                if y == b:
                    return True
                seen.add(y)
                todo.append(y)
        return False

    scores = {
        "borda": [sum(row) for row in m],
        "copeland": [sum((x > 0) - (x < 0) for x in row) for row in m],
    }
    out = {
        "maj": {(i, j, m[i][j]) for i in range(k) for j in beats[i]},
        "cycle": any(reaches(i, i) for i in range(k)),
        "condorcet": next((i for i in range(k) if len(beats[i]) == k - 1), -1),
    }
    for rule, sc in scores.items():
        out[rule] = (sc, {i for i in range(k) if sc[i] == max(sc)}, {i for i in range(k) if sc[i] == min(sc)})
    return out


def test_decimal_weights_are_summed_exactly():
    """Issue 9, finding 9: over 300 profiles every arm output equals exact arithmetic (in
    binary floating point 0.1 + 0.2 > 0.3 would be a strict majority)."""
    recs = decimal_profiles(2024, 300)
    exact = [exact_outcome(exact_margins(r)) for r in recs]
    maj = maj_pairs(recs)
    for r, ex in enumerate(exact):
        rows = maj[maj["rec"] == r]
        got = set(zip(rows["chosen_k"], rows["rejected_k"], rows["margin"]))
        assert got == {(i, j, float(x)) for i, j, x in ex["maj"]}, recs[r]
        assert set(rows["cycle"]) <= {ex["cycle"]}
    for rule in ("borda", "copeland"):
        out, _ = sc_outcomes(recs, rule, seed=3)
        pairs = sc_pairs(recs, rule, "winner_loser", 3).set_index("rec")
        for r, ex in enumerate(exact):
            scores, winners, losers = ex[rule]
            w, l = int(out.winner[r]), int(out.loser[r])
            rest = (losers - {w}) or set(range(len(scores))) - {w}
            assert bool(out.cycle[r]) == ex["cycle"] and int(out.condorcet[r]) == ex["condorcet"], recs[r]
            assert int(out.n_winners[r]) == len(winners) and w in winners and l in rest, (rule, recs[r])
            assert bool(out.tie_broken[r]) == (len(winners) > 1 or len(rest) > 1), (rule, recs[r])
            assert pairs.loc[r, "margin"] == float(scores[w] - scores[l]), (rule, recs[r])
    # rules through pref_voting get the exact margins too
    for rule, method in (("minimax", minimax), ("beat_path", beat_path)):
        out, _ = sc_outcomes(recs[:100], rule, seed=3)
        for r, rec in enumerate(recs[:100]):
            m = exact_margins(rec)
            k = len(m)
            graph = MarginGraph(list(range(k)), [(i, j, m[i][j]) for i in range(k) for j in range(k) if m[i][j] > 0])
            winners = method(graph)
            assert int(out.n_winners[r]) == len(winners) and int(out.winner[r]) in winners, (rule, rec)
    # the profiles hold what binary floating point gets wrong: exact ties read as majorities
    assert sum(float_sign_differs(r) for r in recs) >= 10


def test_weights_off_the_decimal_grid_are_rounded_to_6_places():
    third = {"prompt_id": "p", "prompt": "q", "topic": "t",
             "candidates": [{"id": "a", "text": "A"}, {"id": "b", "text": "B"}],
             "votes": [{"ranking": [["a"], ["b"]], "weight": 1 / 3}] * 3 + [{"pair": ["a", "b"], "winner": "b"}]}
    validate_ballots([third])
    assert rounded_weights(ballots_table([third])) == 3
    s, _ = support_matrix(third)
    # 3 x 0.333333 = 0.999999 < 1: b wins by one unit (documented: weights have 6 decimals)
    assert s[0, 1] == 0.999999 and s[1, 0] == 1.0
    pairs = maj_pairs([third])
    assert list(zip(pairs["chosen_id"], pairs["margin"])) == [("b", 1e-06)]


def float_sign_differs(r: dict) -> bool:
    """Whether summing the weights as floats gives some margin another sign than exactly."""
    s, _ = reference_support(r)
    exact = np.sign(np.array(exact_margins(r), dtype=object).astype(float))
    return bool((np.sign(s - s.T) != exact).any())


# -- several rules; probabilistic rules ----------------------------------------------------------

#: 2 voters a > b > c > d, 2 voters b > c > a > d, 1 voter c > a > b > d: a majority cycle
#: a > b > c > a (3:2 each) above d, whom every voter ranks last (the Condorcet loser).
CYCLE4 = rec("cycle4", ["abcd", "bcad", "cabd"], [2, 2, 1])


def test_probabilistic_rule_names_match_pref_voting():
    import pref_voting.probabilistic_methods as pms
    from pref_voting.prob_voting_method import ProbVotingMethod

    from prefsweep.data.rules import PROBABILISTIC_RULES, is_probabilistic, rule_names

    names = {n for n in dir(pms) if isinstance(getattr(pms, n), ProbVotingMethod) and n == n.lower()}
    assert set(PROBABILISTIC_RULES) == names
    assert is_probabilistic("maximal_lottery") and not is_probabilistic("borda") and not is_probabilistic("schulze")
    assert {"maximal_lottery", "borda", "schulze", "beat_path", "minimax"} <= set(rule_names())


def test_unknown_rule_lists_the_valid_names():
    from prefsweep.data.rules import check_rule

    with pytest.raises(ValueError, match=r"sc.rule: unknown voting rule 'maximal_lotery'.*all: .*maximal_lottery"):
        check_rule("maximal_lotery")
    for rule in ("borda", "copeland", "schulze", "maximal_lottery", "c1_maximal_lottery"):
        check_rule(rule)


def test_maximal_lottery_draws_from_pref_votings_lottery():
    """The winner is a seeded draw from pref_voting's maximal lottery; a Condorcet winner is no draw."""
    from pref_voting.probabilistic_methods import maximal_lottery

    from prefsweep.data.rules import pref_voting_lottery

    (batch,) = support_batches([CYCLE4])
    m = batch.margin_units[0]
    edges = [(i, j, float(m[i, j])) for i in range(4) for j in range(4) if m[i, j] > 0]
    oracle = maximal_lottery(MarginGraph(list(range(4)), edges))
    ours = pref_voting_lottery("maximal_lottery", CYCLE4, m)
    assert ours == pytest.approx([oracle[c] for c in range(4)]) and ours[3] == 0 and (ours[:3] > 0).all()
    # the lottery of the reversed margins: all mass on the Condorcet loser d
    assert pref_voting_lottery("maximal_lottery", CYCLE4, m, reverse=True).tolist() == [0, 0, 0, 1]
    draws = [sc_pairs([CYCLE4], "maximal_lottery", "winner_loser", seed) for seed in range(40)]
    winners = [d["chosen_id"][0] for d in draws]
    assert set(winners) == {"a", "b", "c"} and all(d["rejected_id"][0] == "d" for d in draws)
    assert all(d["tie_broken"][0] for d in draws) and not any(d["condorcet"][0] for d in draws)
    assert sc_pairs([CYCLE4], "maximal_lottery", "winner_loser", 7).equals(draws[7])  # reproducible
    # SPLIT has a Condorcet winner (a): the lottery is a point mass, the same pair for every seed
    fixed = {tuple(sc_pairs([SPLIT], "maximal_lottery", "winner_loser", s)[["chosen_id", "tie_broken"]].iloc[0])
             for s in range(10)}
    assert fixed == {("a", False)}
    # without the Condorcet shortcut, pref_voting agrees on that prompt too
    (sb,) = support_batches([SPLIT])
    sm = sb.margin_units[0]
    point = maximal_lottery(MarginGraph([0, 1, 2], [(i, j, float(sm[i, j])) for i in range(3) for j in range(3) if sm[i, j] > 0]))
    assert [point[c] for c in range(3)] == pytest.approx([1, 0, 0])


def test_condorcet_columns_of_the_pairs():
    maj = maj_pairs([SPLIT, CYCLE])
    assert maj.groupby("prompt_id")["condorcet"].all().to_dict() == {"cycle": False, "split": True}
    assert set(maj[maj["chosen_condorcet"]]["chosen_id"]) == {"a"}
    bor = sc_pairs([SPLIT], "borda", "winner_loser", 0)  # Borda picks b, not the Condorcet winner a
    assert bor["condorcet"].all() and not bor["chosen_condorcet"].any()
    cop = sc_pairs([SPLIT], "copeland", "winner_vs_all", 0)
    assert cop["chosen_condorcet"].all()


def test_arm_pairs_by_arm_name():
    from prefsweep.data.arms import arm_pairs

    one = {"sc": {"rule": "copeland", "pairs": "winner_loser"}, "data": {"seed": 0}}
    listed = {"sc": {"rule": ["borda", "copeland"], "pairs": "winner_loser"}, "data": {"seed": 0}}
    assert arm_pairs([SPLIT], "sc", one).equals(sc_pairs([SPLIT], "copeland", "winner_loser", 0))
    assert arm_pairs([SPLIT], "borda", listed).equals(sc_pairs([SPLIT], "borda", "winner_loser", 0))
    assert arm_pairs([SPLIT], "maj", listed).equals(maj_pairs([SPLIT]))
    with pytest.raises(ValueError, match=r"arm 'sc': not an arm of this config \(arms: maj, borda, copeland\)"):
        arm_pairs([SPLIT], "sc", listed)
