"""Aggregation rules of the rule arms: names, the fast path, ``pref_voting``, and tie-breaking.

A rule is named as in ``pref_voting`` (``borda``, ``copeland``, ``schulze`` = ``beat_path``,
``ranked_pairs``, ``minimax``, ...; aliases :data:`RULE_ALIASES`); it picks a prompt's winner, and
the loser is the rule's winner when every preference is reversed (``M -> -M``, margins of
:mod:`prefsweep.data.support`): for a scoring rule, the lowest score.

Fast path: ``borda`` (symmetric Borda, ``score_i = sum_j M[i, j]``, which is affine in the
positional Borda score for complete linear orders and equals pref_voting's "marginal" Borda and
``symmetric_borda_scores``) and ``copeland`` (``score_i = #{j: M[i,j] > 0} - #{j: M[i,j] < 0}``,
pref_voting's default (1, 0, -1) scores) are computed with numpy (:func:`rule_scores`). Every
other rule goes through ``pref_voting`` per prompt (a ``MarginGraph`` of ``M`` when the rule
accepts one, else a ``ProfileWithTies`` / ``Profile`` of the ranking votes, with the integer
weights as counts). ``pref_voting`` is also the tests' oracle for the fast path.

Several winners (or losers) are a tie, broken by a seeded RNG per prompt
(``numpy.random.default_rng([seed, crc32(prompt_id)])``, :func:`tie_rng`, so the outcome does not
depend on which other prompts are processed). Probabilistic rules
(``pref_voting.probabilistic_methods``: ``maximal_lottery``, ``c1_maximal_lottery``, ``pr_borda``,
...) give a lottery over the candidates: the winner is a **draw** from it with the same RNG; the
loser a draw from the lottery of the reversed margins, renormalised without the winner (uniform
over the others when that leaves no mass). A draw among two or more candidates of positive
probability is a broken tie; a lottery with all its mass on one candidate (a Condorcet winner,
for maximal lotteries) is no draw.

``ranked_pairs`` enumerates every tie-breaking order when margins tie (pref_voting warns it
"can take a very long time"); prefer ``schulze`` on data with many equal margins.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from prefsweep.data.ballot_table import weight_units
from prefsweep.data.ballots import BallotRecord
from prefsweep.data.support import condorcet_winners, margin_of

#: Rules computed by the numpy fast path (scores from the margin matrix).
FAST_RULES = ("borda", "copeland")
#: pref_voting's probabilistic methods (``pref_voting.probabilistic_methods``, lower-case
#: names): known without importing it (its import takes seconds), checked against it by
#: tests/unit/test_arms.py.
PROBABILISTIC_RULES = ("c1_maximal_lottery", "maximal_lottery", "pr_borda", "random_consensus_builder",
                       "random_dictator")
#: Probabilistic rules whose lottery is the point mass on a Condorcet winner when there is one.
CONDORCET_LOTTERIES = ("maximal_lottery", "c1_maximal_lottery")
#: Other spellings of pref_voting rule names.
RULE_ALIASES = {"schulze": "beat_path", "tideman": "ranked_pairs", "irv": "instant_runoff"}


def rule_scores(rule: str, margin: np.ndarray) -> np.ndarray:
    """``[P, K]`` fast-path scores from ``[P, K, K]`` margins (``borda`` or ``copeland``).

    Borda scores are in the margins' scale (exact for :attr:`SupportBatch.margin_units`);
    Copeland scores are counts of wins minus losses."""
    if rule == "borda":
        return margin.sum(axis=2)
    if rule == "copeland":
        return np.sign(margin).sum(axis=2)
    raise ValueError(f"sc.rule: no fast path for {rule!r} (fast rules: {', '.join(FAST_RULES)})")


def rule_names() -> list[str]:
    """Every rule name ``sc.rule`` accepts: pref_voting's voting methods and probabilistic
    methods (lower-case names), and the aliases of :data:`RULE_ALIASES`."""
    import pref_voting.probabilistic_methods as pms
    import pref_voting.voting_methods as vms
    from pref_voting.prob_voting_method import ProbVotingMethod
    from pref_voting.voting_method import VotingMethod

    names = {n for n in dir(vms) if isinstance(getattr(vms, n), VotingMethod)}
    names |= {n for n in dir(pms) if isinstance(getattr(pms, n), ProbVotingMethod)}
    return sorted(n for n in names | set(RULE_ALIASES) if n == n.lower())


def resolve_rule(rule: str) -> Callable[..., Any]:
    """The ``pref_voting`` method named ``rule`` (aliases: schulze -> beat_path, ...): a
    ``VotingMethod`` or a ``ProbVotingMethod`` (:func:`is_probabilistic`). An unknown name
    raises ``ValueError`` naming ``sc.rule`` and listing the valid names."""
    import pref_voting.voting_methods as vms
    from pref_voting.voting_method import VotingMethod

    name = RULE_ALIASES.get(rule, rule)
    method = getattr(vms, name, None)
    if isinstance(method, VotingMethod) and name == name.lower():
        return method
    import pref_voting.probabilistic_methods as pms
    from pref_voting.prob_voting_method import ProbVotingMethod

    method = getattr(pms, name, None)
    if isinstance(method, ProbVotingMethod) and name == name.lower():
        return method
    raise ValueError(
        f"sc.rule: unknown voting rule {rule!r}; expected a pref_voting method name such as "
        f"borda, copeland, schulze, ranked_pairs, minimax, maximal_lottery (all: {', '.join(rule_names())})"
    )


def check_rule(rule: str) -> None:
    """``ValueError`` (naming ``sc.rule`` and the valid names) unless ``rule`` is a rule name;
    the fast and the probabilistic rules need no pref_voting import."""
    if RULE_ALIASES.get(rule, rule) not in FAST_RULES + PROBABILISTIC_RULES:
        resolve_rule(rule)


def is_probabilistic(rule: str) -> bool:
    """``rule`` is a pref_voting probabilistic method (its outcome a lottery)."""
    return RULE_ALIASES.get(rule, rule) in PROBABILISTIC_RULES


def pref_voting_lottery(rule: str, record: BallotRecord, margin: np.ndarray | None = None,
                        reverse: bool = False) -> np.ndarray:
    """``[K]`` probabilities of a probabilistic ``rule`` on one record (a ``MarginGraph`` of
    ``M``, or ``-M`` when ``reverse``; a ``ProfileWithTies`` when the method takes no margin
    graph), clipped to >= 0 and renormalised. A rule that fails raises ``ValueError`` naming
    ``sc.rule`` and the prompt."""
    from pref_voting.voting_method_properties import ElectionTypes
    from pref_voting.weighted_majority_graphs import MarginGraph

    k = len(record["candidates"])
    name = RULE_ALIASES.get(rule, rule)
    if name in CONDORCET_LOTTERIES:
        # A Condorcet winner is the unique maximal lottery (point mass): no LP for most prompts.
        m = margin_of(record) if margin is None else margin
        cw = int(condorcet_winners((-m if reverse else m)[None])[0])
        if cw >= 0:
            return np.eye(k)[cw]
    method = resolve_rule(rule)
    types = set(getattr(method, "input_types", None) or [])
    try:
        if not types or ElectionTypes.MARGIN_GRAPH in types:
            m = margin_of(record) if margin is None else margin
            m = -m if reverse else m
            edges = [(i, j, float(m[i, j])) for i in range(k) for j in range(k) if m[i, j] > 0]
            lottery = method(MarginGraph(list(range(k)), edges))
        else:
            lottery = method(pref_voting_profile(record, reverse))
    except Exception as exc:  # noqa: BLE001 - any failure of the library on this prompt
        raise ValueError(f"sc.rule: pref_voting's {rule!r} failed on prompt {record['prompt_id']!r}: {exc}") from exc
    p = np.array([float(lottery.get(c, 0.0)) for c in range(k)])
    p = np.where(p > 1e-12, p, 0.0)
    if p.sum() <= 0:
        raise ValueError(f"sc.rule: pref_voting's {rule!r} gave no lottery on prompt {record['prompt_id']!r}")
    return p / p.sum()


def draw_from_lotteries(win: np.ndarray, lose: np.ndarray, seed: int, prompt_id: str) -> tuple[int, int, bool, bool]:
    """(winner, loser, tie_broken, winner_drawn) of one prompt from the winner lottery ``win``
    and the reversed-margin lottery ``lose`` (module docstring), with the prompt's seeded RNG."""
    rng = tie_rng(seed, prompt_id)
    k = len(win)
    winner_drawn = int((win > 0).sum()) > 1
    w = int(rng.choice(k, p=win)) if winner_drawn else int(np.argmax(win))
    rest = lose.copy()
    rest[w] = 0.0
    if rest.sum() <= 0:
        rest = np.ones(k)
        rest[w] = 0.0
    rest = rest / rest.sum()
    loser_drawn = int((rest > 0).sum()) > 1
    lo = int(rng.choice(k, p=rest)) if loser_drawn else int(np.argmax(rest))
    return w, lo, winner_drawn or loser_drawn, winner_drawn


def pref_voting_profile(record: BallotRecord, reverse: bool = False) -> Any:
    """The record as a ``pref_voting`` ``ProfileWithTies`` over candidate positions 0..K-1.

    A ranking vote lists every candidate (unlisted ones in a last tier of their own, so no
    "extended" preference is needed); a pair vote is a two-candidate ranking (other candidates
    unranked, hence not compared) and a tied pair vote ranks both first. ``rcounts`` are the
    vote weights in integer units of 1e-6 (:func:`weight_units`: exact, and no rule's outcome
    changes when every weight is scaled by the same factor). ``reverse`` turns every ranking
    upside down (for the rule's loser).
    """
    from pref_voting.profiles_with_ties import ProfileWithTies

    ids = {c["id"]: k for k, c in enumerate(record["candidates"])}
    k = len(ids)
    rankings, counts = [], []
    for vote in record["votes"]:
        if "ranking" in vote:
            rank = {c: len(vote["ranking"]) + 1 for c in range(k)}
            for t, members in enumerate(vote["ranking"]):
                for cid in members:
                    rank[ids[cid]] = t + 1
        else:
            a, b = (ids[x] for x in vote["pair"])
            if vote["winner"] is None:
                rank = {a: 1, b: 1}
            else:
                win = ids[vote["winner"]]
                rank = {win: 1, (b if win == a else a): 2}
        if reverse:
            top = max(rank.values()) + 1
            rank = {c: top - r for c, r in rank.items()}
        rankings.append(rank)
        counts.append(weight_units(vote.get("weight")))
    return ProfileWithTies(rankings, rcounts=counts, candidates=list(range(k)))


def pref_voting_winners(
    rule: str, record: BallotRecord, margin: np.ndarray | None = None, reverse: bool = False
) -> list[int]:
    """Winner positions of ``rule`` on one record through ``pref_voting``.

    Margin-based input (``MarginGraph`` of ``M``, or ``-M`` when ``reverse``) when the rule
    accepts one (``margin``: ``[K, K]`` in any positive scale, e.g. a batch's exact
    ``margin_units``; computed from the record when None); otherwise a ``ProfileWithTies`` (or a linear ``Profile`` when the rule needs
    one and every vote is a complete strict ranking). A rule that fails on the prompt raises
    ``ValueError`` naming ``sc.rule`` and the prompt.
    """
    try:
        return _pref_voting_winners(rule, record, margin, reverse)
    except ValueError as exc:
        if str(exc).startswith("sc.rule"):
            raise
        raise ValueError(f"sc.rule: pref_voting's {rule!r} failed on prompt {record['prompt_id']!r}: {exc}") from exc


def _pref_voting_winners(
    rule: str, record: BallotRecord, margin: np.ndarray | None, reverse: bool
) -> list[int]:
    from pref_voting.profiles import Profile
    from pref_voting.voting_method_properties import ElectionTypes
    from pref_voting.weighted_majority_graphs import MarginGraph

    method = resolve_rule(rule)
    if is_probabilistic(rule):
        raise ValueError(f"sc.rule: {rule!r} is probabilistic (a lottery, not a winner set); see pref_voting_lottery")
    types = set(getattr(method, "input_types", None) or [])
    if ElectionTypes.MARGIN_GRAPH in types:
        if margin is None:
            margin = margin_of(record)
        m = -margin if reverse else margin
        k = m.shape[0]
        edges = [(i, j, float(m[i, j])) for i in range(k) for j in range(k) if m[i, j] > 0]
        return sorted(int(c) for c in method(MarginGraph(list(range(k)), edges)))
    if ElectionTypes.PROFILE_WITH_TIES in types or ElectionTypes.TRUNCATED_LINEAR_PROFILE in types:
        if any("ranking" not in v for v in record["votes"]) and ElectionTypes.PROFILE_WITH_TIES not in types:
            raise ValueError(f"sc.rule: {rule!r} needs ranking votes; prompt {record['prompt_id']!r} has pair votes")
        return sorted(int(c) for c in method(pref_voting_profile(record, reverse)))
    if ElectionTypes.PROFILE in types:
        prof = pref_voting_profile(record, reverse)
        k = len(record["candidates"])
        linear = all(
            "ranking" in v and all(len(t) == 1 for t in v["ranking"]) and len(v["ranking"]) >= k - 1
            for v in record["votes"]
        )
        if not linear:
            raise ValueError(
                f"sc.rule: {rule!r} needs complete strict rankings (linear orders); prompt "
                f"{record['prompt_id']!r} has ties, pair votes or partial rankings"
            )
        orders = [sorted(r.rmap, key=r.rmap.get) for r in prof.rankings]
        return sorted(int(c) for c in method(Profile(orders, rcounts=prof.rcounts)))
    raise ValueError(f"sc.rule: {rule!r} takes none of MarginGraph, ProfileWithTies, Profile")


def tie_rng(seed: int, prompt_id: str) -> np.random.Generator:
    """The prompt's tie-breaking RNG: ``default_rng([seed, crc32(prompt_id)])`` (module docstring)."""
    return np.random.default_rng([int(seed), zlib.crc32(prompt_id.encode("utf-8"))])


def pick(
    winners: Sequence[int], losers: Sequence[int], k: int, seed: int, prompt_id: str
) -> tuple[int, int, bool]:
    """(winner, loser, tie_broken): a seeded draw among tied winners, then among the losers
    other than the winner (all other candidates if that leaves none)."""
    rng: np.random.Generator | None = None
    tied = len(winners) > 1
    if tied:
        rng = tie_rng(seed, prompt_id)
        w = int(winners[int(rng.integers(len(winners)))])
    else:
        w = int(winners[0])
    rest = [c for c in losers if c != w] or [c for c in range(k) if c != w]
    if len(rest) > 1:
        rng = rng or tie_rng(seed, prompt_id)
        return w, int(rest[int(rng.integers(len(rest)))]), True
    return w, int(rest[0]), tied
