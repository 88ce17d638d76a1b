"""Preference pairs of the two arms, from ballots.

Both arms start from the weighted pairwise **support** of a prompt's votes (see
:mod:`prefsweep.ballots` for the vote format)::

    S[i, j] = sum of the weights of the votes that strictly prefer candidate i to j
    C[i, j] = number of such votes
    M[i, j] = S[i, j] - S[j, i]                  (the margin; M = -M^T)

A ranking vote prefers i to j when i sits in an earlier tier (unlisted candidates are tied below
every listed one); a pair vote prefers its winner to the other; ties give nothing.

**Exact arithmetic.** Vote weights are decimal numbers: each is rounded to a whole number of
units of 1e-6 (:data:`prefsweep.ballots.WEIGHT_UNIT`, 6 decimal places) and S, M and every score
are sums of those integers, held in float64 below 2**53 (:data:`prefsweep.ballots.MAX_WEIGHT_MASS`
bounds a prompt's total weight), where float64 sums are exact. Every decision (majority, cycle,
Condorcet winner, Borda and Copeland scores and their ties, the margins given to
``pref_voting``) compares these exact integers, so 0.1 + 0.2 ties 0.3 (in binary floating point
it would be a strict majority of 5.55e-17). The ``margin`` column is the exact value divided by
1e6: the float nearest to the decimal result.

``maj`` (pairwise majority): every pair with ``M[i, j] > 0`` gives ``chosen=i, rejected=j``,
``margin = M[i, j]``, ``n_voters = C[i, j] + C[j, i]`` (votes that compare the two). Within a
prompt pairs are ordered by margin (largest first), then by candidate position, so truncating a
prompt keeps its clearest pairs. ``cycle`` says whether the prompt's strict majority relation
``M > 0`` contains a directed cycle (no transitive majority order; a Condorcet paradox).

Rule arms (social choice; one arm ``sc`` for a string ``sc.rule``, one arm per rule, named by
it, for a list: :func:`prefsweep.paths.arm_rules`): a rule, named as in ``pref_voting``
(``borda``, ``copeland``, ``schulze`` = ``beat_path``, ``ranked_pairs``, ``minimax``, ...), picks the winner; the loser is the rule's
winner when every preference is reversed (``M -> -M``): for a scoring rule, the lowest score.
``winner_loser`` gives one pair (winner, loser); ``winner_vs_all`` gives the winner against every
other candidate. Several winners (or losers) are a tie, broken by a seeded RNG per prompt
(``numpy.random.default_rng([seed, crc32(prompt_id)])``, so the outcome does not depend on which
other prompts are processed) and flagged ``tie_broken``. ``margin`` is the score difference for
``borda`` and ``copeland`` and the pairwise margin ``M[winner, other]`` for other rules.

Fast path: ``borda`` (symmetric Borda, ``score_i = sum_j M[i, j]``, which is affine in the
positional Borda score for complete linear orders and equals pref_voting's "marginal" Borda and
``symmetric_borda_scores``), ``copeland`` (``score_i = #{j: M[i,j] > 0} - #{j: M[i,j] < 0}``,
pref_voting's default (1, 0, -1) scores), the majority relation and cycle detection are computed
with numpy over all prompts with the same number of candidates at once. Every other rule goes
through ``pref_voting`` per prompt (a ``MarginGraph`` of ``M`` when the rule accepts one, else a
``ProfileWithTies`` / ``Profile`` of the ranking votes, with the integer weights as counts).
``pref_voting`` is also the tests' oracle for the fast path.

Probabilistic rules (``pref_voting.probabilistic_methods``: ``maximal_lottery``,
``c1_maximal_lottery``, ``pr_borda``, ...) give a lottery over the candidates: the winner is a
**draw** from it with the prompt's seeded RNG (the same ``default_rng([seed, crc32(prompt_id)])``
as ties, so the draw is reproducible and does not depend on other prompts); the loser a draw
from the lottery of the reversed margins, renormalised without the winner (uniform over the
others when that leaves no mass). A draw among two or more candidates of positive probability
is flagged ``tie_broken``; a lottery with all its mass on one candidate (a Condorcet winner,
for maximal lotteries) is no draw.

``condorcet`` says whether the prompt has a Condorcet winner (beats every other candidate by a
strict majority), ``chosen_condorcet`` whether the pair's chosen response is it.

``ranked_pairs`` enumerates every tie-breaking order when margins tie (pref_voting warns it
"can take a very long time"); prefer ``schulze`` on data with many equal margins.

Input ballots (:data:`Ballots`) are the Arrow table of
:func:`prefsweep.ballots.read_ballots_table` (what the workflow reads) or Python records, which
are first turned into that table (:func:`ballots_table`): there is one support computation,
:func:`support_batches` over the table, with no Python object per vote. Pair tables
(:func:`maj_pairs`, :func:`sc_pairs`) are DataFrames with one row per pair and columns ``rec``
(index of the record in the input), ``prompt_id``, ``topic``, ``chosen_k``, ``rejected_k``
(candidate positions), ``chosen_id``, ``rejected_id``, ``margin`` (float64), ``n_voters``
(int64), ``cycle``, ``tie_broken``, ``condorcet``, ``chosen_condorcet`` (bool); rows grouped by
record in input order.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Union

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from prefsweep.ballots import (
    BALLOTS_SCHEMA, WEIGHT_SCALE, BallotError, BallotRecord, gc_paused, weight_units, weight_units_of,
)

SC_PAIRS = ("winner_loser", "winner_vs_all")
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
#: Prompts per numpy chunk (bounds the [P, V, K, K] intermediate).
CHUNK = 8192

#: Ballots as Python records (the format of :mod:`prefsweep.ballots`) or as an Arrow table
#: (:data:`prefsweep.ballots.BALLOTS_SCHEMA`, from :func:`prefsweep.ballots.read_ballots_table`).
Ballots = Union[Sequence[BallotRecord], pa.Table]

PAIR_COLUMNS = (
    "rec", "prompt_id", "topic", "chosen_k", "rejected_k", "chosen_id", "rejected_id",
    "margin", "n_voters", "cycle", "tie_broken", "condorcet", "chosen_condorcet",
)


# -- ballots as a table ----------------------------------------------------------------------


def ballots_table(records: Ballots, schema: pa.Schema = BALLOTS_SCHEMA) -> pa.Table:
    """``records`` as an Arrow table of ``schema`` (:data:`prefsweep.ballots.BALLOTS_SCHEMA`, or
    :data:`prefsweep.ballots.VOTES_SCHEMA` for supports and rules only); a table is returned as
    it is. Absent keys become nulls, as in the file reader; other keys are dropped."""
    if isinstance(records, pa.Table):
        return records
    with gc_paused():
        return pa.Table.from_pylist(list(records), schema=schema)


def n_ballots(records: Ballots) -> int:
    return records.num_rows if isinstance(records, pa.Table) else len(records)


def ballot_field(records: Ballots, name: str) -> list[Any]:
    """A top-level field (``prompt_id``, ``prompt``, ``topic``) of every record, as a list."""
    if isinstance(records, pa.Table):
        return records.column(name).to_pylist()
    return [r[name] for r in records]


def ballot_record(records: Ballots, r: int) -> BallotRecord:
    """Record ``r`` in the Python format (an Arrow row loses its nulls for absent keys)."""
    if not isinstance(records, pa.Table):
        return records[r]
    rec = records.slice(r, 1).to_pylist()[0]
    votes = []
    for vote in rec["votes"]:
        keep = ("ranking",) if vote["ranking"] is not None else ("pair", "winner")
        votes.append({k: v for k, v in vote.items() if k in keep or (v is not None and k not in ("ranking", "pair", "winner"))})
    return {**rec, "votes": votes}


# -- support ---------------------------------------------------------------------------------


@dataclass
class SupportBatch:
    """Supports of the records ``rec`` (indices into the input), all with K candidates.

    ``units``: ``[P, K, K]`` float64 holding integers: S in weight units of 1e-6 (exact);
    ``count``: ``[P, K, K]`` int64 (C). ``support`` and ``margin`` are S and M in weights (the
    exact integers divided by 1e6); decisions use ``units`` and ``margin_units``.
    """

    rec: np.ndarray
    units: np.ndarray
    count: np.ndarray

    @property
    def margin_units(self) -> np.ndarray:
        """``[P, K, K]``: ``M = S - S^T`` in units of 1e-6, exact."""
        return self.units - self.units.transpose(0, 2, 1)

    @property
    def support(self) -> np.ndarray:
        """``[P, K, K]``: S in weights."""
        return self.units / WEIGHT_SCALE

    @property
    def margin(self) -> np.ndarray:
        """``[P, K, K]``: M in weights."""
        return self.margin_units / WEIGHT_SCALE


def support_matrix(record: BallotRecord) -> tuple[np.ndarray, np.ndarray]:
    """``(S, C)`` of one record, both ``[K, K]`` in candidate order: :func:`support_batches`
    of that record alone."""
    (batch,) = support_batches([record])
    return batch.support[0], batch.count[0]


def support_batches(records: Ballots) -> list[SupportBatch]:
    """S and C (module docstring) of every record, grouped by number of candidates (ascending K).

    One pass over the Arrow table (:func:`ballots_table`) with no Python object per vote: lists
    are flattened with their parent indices and candidate ids are mapped to positions through
    one dictionary encoding. Each ranking vote becomes a row of tier positions ``T[p, v, :]``
    (unlisted candidates in one tier below the last) and
    ``S[p] = sum_v u[p, v] * (T[p, v, :, None] < T[p, v, None, :])`` with ``u`` the weights in
    units; pair votes with a winner are added with ``np.add.at``.

    Weights out of bounds raise :class:`BallotError` naming the prompt
    (:func:`prefsweep.ballots.weight_units_of`; validated ballots never have them).
    """
    table = ballots_table(records)
    if table.num_rows == 0:
        return []
    cands = _list_column(table, "candidates")
    votes = _list_column(table, "votes")
    n_rec = table.num_rows
    cand_off = _offsets(cands)
    k_of = np.diff(cand_off)
    cand_rec = pc.list_parent_indices(cands).to_numpy()
    flat_votes = pc.list_flatten(votes)
    vote_off = _offsets(votes)
    vote_rec = pc.list_parent_indices(votes).to_numpy()
    units = weight_units_of(table)

    ranking = pc.struct_field(flat_votes, "ranking")
    is_rank = ranking.is_valid().to_numpy(zero_copy_only=False)
    rank_off = _offsets(ranking)
    n_tiers = np.diff(rank_off)
    tiers_arr = pc.list_flatten(ranking)
    tier_vote = pc.list_parent_indices(ranking).to_numpy()
    tier_pos = np.arange(len(tier_vote)) - rank_off[tier_vote]
    members = pc.list_flatten(tiers_arr)
    member_tier = pc.list_parent_indices(tiers_arr).to_numpy()
    member_vote = tier_vote[member_tier]

    pair = pc.struct_field(flat_votes, "pair")
    winner = pc.struct_field(flat_votes, "winner")
    pair_vote = np.nonzero(~is_rank & winner.is_valid().to_numpy(zero_copy_only=False))[0]
    pair_flat = pc.list_flatten(pair.take(pa.array(pair_vote)))

    # One dictionary over every id string; (record, code) -> candidate position.
    ids = pc.struct_field(pc.list_flatten(cands), "id")
    win_ids = winner.take(pa.array(pair_vote))
    codes = pc.dictionary_encode(pa.concat_arrays([ids, members, pair_flat, win_ids])).indices.to_numpy()
    n_codes = int(codes.max()) + 1 if len(codes) else 1
    split = np.cumsum([len(ids), len(members), len(pair_flat)])
    c_ids, c_mem, c_pair, c_win = np.split(codes.astype(np.int64), split)
    position = _position_lookup(table, cand_rec, c_ids, cand_off, n_rec, n_codes)

    member_k = position(vote_rec[member_vote], c_mem)
    # slot of a ranking vote within its record: running count of ranking votes.
    rank_cum = np.cumsum(is_rank)
    before = np.where(vote_off[:-1] > 0, rank_cum[np.maximum(vote_off[:-1] - 1, 0)], 0)
    slot = rank_cum - 1 - before[vote_rec]
    n_rank_votes = rank_cum[vote_off[1:] - 1] - before if len(rank_cum) else np.zeros(n_rec, np.int64)
    n_rank_votes = np.where(np.diff(vote_off) > 0, n_rank_votes, 0)

    pair_rec = vote_rec[pair_vote]
    pa_a, pa_b = c_pair[0::2], c_pair[1::2]
    pair_w = position(pair_rec, c_win)
    pair_l = position(pair_rec, np.where(c_win == pa_a, pa_b, pa_a))
    pair_x = units[pair_vote]

    rank_votes = np.nonzero(is_rank)[0]
    batches = []
    for k in np.unique(k_of).tolist():
        recs = np.nonzero(k_of == k)[0]
        local = np.full(n_rec, -1, dtype=np.int64)
        local[recs] = np.arange(len(recs))
        n_slots = max(int(n_rank_votes[recs].max()) if len(recs) else 1, 1)
        tiers = np.zeros((len(recs), n_slots, k), dtype=np.int8 if k < 127 else np.int64)
        slot_units = np.zeros((len(recs), n_slots))
        rv = rank_votes[local[vote_rec[rank_votes]] >= 0]
        p, v = local[vote_rec[rv]], slot[rv]
        tiers[p, v] = n_tiers[rv][:, None]  # unlisted candidates: tied below every tier
        slot_units[p, v] = units[rv]
        mv = local[vote_rec[member_vote]] >= 0
        tiers[local[vote_rec[member_vote[mv]]], slot[member_vote[mv]], member_k[mv]] = tier_pos[member_tier[mv]]
        pv = local[pair_rec] >= 0
        batches.append(_accumulate(recs, tiers, slot_units, local[pair_rec[pv]], pair_w[pv], pair_l[pv], pair_x[pv]))
    return batches


def _position_lookup(
    table: pa.Table, cand_rec: np.ndarray, c_ids: np.ndarray, cand_off: np.ndarray, n_rec: int, n_codes: int
) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    """``position(rec, code)``: the position of the candidate with id code ``code`` in record
    ``rec``. A dense ``[records, codes]`` table when ids repeat across records (few codes, as
    the synthetic ``a``..``f``), else a sorted (record, code) key and a binary search."""
    cand_pos = np.arange(len(cand_rec)) - cand_off[cand_rec]

    def unknown(rec: int) -> BallotError:
        return BallotError(
            f"prompt_id {table.column('prompt_id')[rec].as_py()!r}: votes: a vote names an unknown "
            "candidate (expected the ids of its candidates; ballots not validated?)"
        )

    if n_rec * n_codes <= 4 * len(cand_rec) + 1024:
        lut = np.full((n_rec, n_codes), -1, dtype=np.int64)
        lut[cand_rec, c_ids] = cand_pos

        def dense(rec: np.ndarray, code: np.ndarray) -> np.ndarray:
            pos = lut[rec, code]
            if len(pos) and pos.min() < 0:
                raise unknown(int(rec[np.argmin(pos)]))
            return pos

        return dense

    cand_key = cand_rec * n_codes + c_ids
    sort = np.argsort(cand_key, kind="stable")
    sorted_key = cand_key[sort]

    def search(rec: np.ndarray, code: np.ndarray) -> np.ndarray:
        key = rec * n_codes + code
        at = np.minimum(np.searchsorted(sorted_key, key), len(sort) - 1)
        bad = np.nonzero(sorted_key[at] != key)[0] if len(key) else []
        if len(bad):
            raise unknown(int(rec[bad[0]]))
        return cand_pos[sort[at]]

    return search


def _accumulate(
    recs: np.ndarray,
    tiers: np.ndarray,
    slot_units: np.ndarray,
    pair_p: np.ndarray,
    pair_w: np.ndarray,
    pair_l: np.ndarray,
    pair_x: np.ndarray,
) -> SupportBatch:
    """S (in units) and C from ranking votes as tier positions ``tiers[p, v, k]`` with weights
    ``slot_units[p, v]`` (0 for empty slots) plus pair votes (prompt, winner, loser, units).
    Integer-valued float64 products and sums below 2**53: exact in any summation order."""
    n, _, k = tiers.shape
    support = np.empty((n, k, k))
    count = np.empty((n, k, k), dtype=np.int64)
    for lo in range(0, n, CHUNK):
        t = tiers[lo : lo + CHUNK]
        prefers = t[:, :, :, None] < t[:, :, None, :]  # [P, V, K, K]
        support[lo : lo + CHUNK] = np.einsum("pv,pvij->pij", slot_units[lo : lo + CHUNK], prefers)
        count[lo : lo + CHUNK] = prefers.sum(axis=1, dtype=np.int64)
    if len(pair_p):
        np.add.at(support, (pair_p, pair_w, pair_l), pair_x)
        np.add.at(count, (pair_p, pair_w, pair_l), 1)
    return SupportBatch(recs, support, count)


def _list_column(table: pa.Table, name: str) -> pa.ListArray:
    """Column ``name`` of ``table`` as one list array."""
    col = table.column(name)
    return pa.concat_arrays(col.chunks) if col.num_chunks != 1 else col.chunk(0)


def _offsets(arr: pa.ListArray) -> np.ndarray:
    """List offsets rebased to index the flattened values (a sliced array's start at 0)."""
    off = arr.offsets.to_numpy()
    return off - off[0]


# -- majority relation -----------------------------------------------------------------------


def majority_cycles(margin: np.ndarray) -> np.ndarray:
    """``[P]`` bool: the strict majority relation ``margin > 0`` of each ``[K, K]`` slice has a
    directed cycle. Transitive closure by repeated squaring of the boolean adjacency matrix
    (``ceil(log2 K)`` batched matmuls); a cycle exists iff the closure has a diagonal entry."""
    reach = (margin > 0).astype(np.int32)
    k = margin.shape[-1]
    steps = 1
    while steps < k:
        reach = ((reach + reach @ reach) > 0).astype(np.int32)
        steps *= 2
    return np.trace(reach, axis1=-2, axis2=-1) > 0


def condorcet_winners(margin: np.ndarray) -> np.ndarray:
    """``[P]`` int: the candidate that beats every other (``M[i, j] > 0`` for all j != i),
    or -1 when there is none."""
    k = margin.shape[-1]
    off = ~np.eye(k, dtype=bool)
    beats_all = ((margin > 0) | ~off).all(axis=2)
    return np.where(beats_all.any(axis=1), beats_all.argmax(axis=1), -1)


def maj_pairs(records: Ballots) -> pd.DataFrame:
    """Every strict pairwise-majority pair of every record (module docstring)."""
    records = ballots_table(records)
    frames: list[dict[str, np.ndarray]] = []
    for batch in support_batches(records):
        m = batch.margin_units
        cycle = majority_cycles(m)
        cw = condorcet_winners(m)
        p, i, j = np.nonzero(m > 0)
        margin = m[p, i, j] / WEIGHT_SCALE
        n_voters = batch.count[p, i, j] + batch.count[p, j, i]
        frames.append({
            "rec": batch.rec[p], "chosen_k": i, "rejected_k": j, "margin": margin,
            "n_voters": n_voters, "cycle": cycle[p], "tie_broken": np.zeros(len(p), dtype=bool),
            "condorcet": cw[p] >= 0, "chosen_condorcet": cw[p] == i,
        })
    return _finish(records, frames)


# -- social choice ---------------------------------------------------------------------------


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
        m = _margin_of(record) if margin is None else margin
        cw = int(condorcet_winners((-m if reverse else m)[None])[0])
        if cw >= 0:
            return np.eye(k)[cw]
    method = resolve_rule(rule)
    types = set(getattr(method, "input_types", None) or [])
    try:
        if not types or ElectionTypes.MARGIN_GRAPH in types:
            m = _margin_of(record) if margin is None else margin
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
    rng = _tie_rng(seed, prompt_id)
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
            margin = _margin_of(record)
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


def _margin_of(record: BallotRecord) -> np.ndarray:
    """``[K, K]`` exact margins (units) of one record."""
    (batch,) = support_batches([record])
    return batch.margin_units[0]


def _tie_rng(seed: int, prompt_id: str) -> np.random.Generator:
    return np.random.default_rng([int(seed), zlib.crc32(prompt_id.encode("utf-8"))])


def _pick(
    winners: Sequence[int], losers: Sequence[int], k: int, seed: int, prompt_id: str
) -> tuple[int, int, bool]:
    """(winner, loser, tie_broken): a seeded draw among tied winners, then among the losers
    other than the winner (all other candidates if that leaves none)."""
    rng: np.random.Generator | None = None
    tied = len(winners) > 1
    if tied:
        rng = _tie_rng(seed, prompt_id)
        w = int(winners[int(rng.integers(len(winners)))])
    else:
        w = int(winners[0])
    rest = [c for c in losers if c != w] or [c for c in range(k) if c != w]
    if len(rest) > 1:
        rng = rng or _tie_rng(seed, prompt_id)
        return w, int(rest[int(rng.integers(len(rest)))]), True
    return w, int(rest[0]), tied


@dataclass
class Outcome:
    """Per-record sc outcome (arrays over the input records)."""

    winner: np.ndarray  # [R] int candidate position
    loser: np.ndarray  # [R] int
    tie_broken: np.ndarray  # [R] bool: winner or loser drawn among tied candidates
    winner_tied: np.ndarray  # [R] bool: winner drawn among tied candidates
    cycle: np.ndarray  # [R] bool
    condorcet: np.ndarray  # [R] int Condorcet winner position or -1
    n_winners: np.ndarray  # [R] int size of the rule's winner set


def sc_outcomes(records: Ballots, rule: str, seed: int) -> tuple[Outcome, list[SupportBatch]]:
    """Winner and loser of ``rule`` for every record (ties broken as in the module docstring),
    with the support batches they were computed from."""
    rule = RULE_ALIASES.get(rule, rule)
    check_rule(rule)  # fail fast on an unknown name
    probabilistic = is_probabilistic(rule)
    records = ballots_table(records)
    n = n_ballots(records)
    prompt_ids = ballot_field(records, "prompt_id")
    out = Outcome(
        np.zeros(n, np.int64), np.zeros(n, np.int64), np.zeros(n, bool), np.zeros(n, bool),
        np.zeros(n, bool), np.full(n, -1, np.int64), np.zeros(n, np.int64),
    )
    batches = support_batches(records)
    for batch in batches:
        m = batch.margin_units
        out.cycle[batch.rec] = majority_cycles(m)
        out.condorcet[batch.rec] = condorcet_winners(m)
        if rule in FAST_RULES:
            score = rule_scores(rule, m)
            top = score == score.max(axis=1, keepdims=True)
            bottom = score == score.min(axis=1, keepdims=True)
            simple = (top.sum(1) == 1) & (bottom.sum(1) == 1) & (top.argmax(1) != bottom.argmax(1))
            out.winner[batch.rec[simple]] = top[simple].argmax(1)
            out.loser[batch.rec[simple]] = bottom[simple].argmax(1)
            out.n_winners[batch.rec] = top.sum(1)
            for p in np.nonzero(~simple)[0].tolist():
                r = int(batch.rec[p])
                w, l, tied = _pick(
                    np.nonzero(top[p])[0].tolist(), np.nonzero(bottom[p])[0].tolist(),
                    m.shape[-1], seed, prompt_ids[r],
                )
                out.winner[r], out.loser[r], out.tie_broken[r] = w, l, tied
                out.winner_tied[r] = top[p].sum() > 1
        elif probabilistic:
            for p, r in enumerate(batch.rec.tolist()):
                record = ballot_record(records, r)
                win = pref_voting_lottery(rule, record, m[p])
                lose = pref_voting_lottery(rule, record, m[p], reverse=True)
                w, l, tied, w_tied = draw_from_lotteries(win, lose, seed, prompt_ids[r])
                out.winner[r], out.loser[r], out.tie_broken[r] = w, l, tied
                out.winner_tied[r] = w_tied
                out.n_winners[r] = int((win > 0).sum())
        else:
            for p, r in enumerate(batch.rec.tolist()):
                record = ballot_record(records, r)
                winners = pref_voting_winners(rule, record, m[p])
                losers = pref_voting_winners(rule, record, m[p], reverse=True)
                w, l, tied = _pick(winners, losers, m.shape[-1], seed, prompt_ids[r])
                out.winner[r], out.loser[r], out.tie_broken[r] = w, l, tied
                out.winner_tied[r] = len(winners) > 1
                out.n_winners[r] = len(winners)
    return out, batches


def sc_winners(records: Ballots, rule: str, seed: int, field: str = "id") -> list[str]:
    """Candidate ``field`` (``id`` or ``text``) of the ``rule`` winner of every record (the same
    tie-breaking as the pairs)."""
    records = ballots_table(records)
    outcome, _ = sc_outcomes(records, rule, seed)
    flat, offsets = candidate_table(records, field)
    return flat[offsets[:-1] + outcome.winner].tolist()


def sc_pairs(records: Ballots, rule: str, pairs: str, seed: int) -> pd.DataFrame:
    """The ``sc`` arm's pairs (module docstring): one per record (``winner_loser``) or K-1
    (``winner_vs_all``)."""
    if pairs not in SC_PAIRS:
        raise ValueError(f"sc.pairs: unknown value {pairs!r} (expected {' or '.join(SC_PAIRS)})")
    rule = RULE_ALIASES.get(rule, rule)
    records = ballots_table(records)
    outcome, batches = sc_outcomes(records, rule, seed)
    frames: list[dict[str, np.ndarray]] = []
    for batch in batches:
        m = batch.margin_units
        k = m.shape[-1]
        p = np.arange(len(batch.rec))
        w = outcome.winner[batch.rec]
        if pairs == "winner_loser":
            pp, others = p, outcome.loser[batch.rec]
            tie = outcome.tie_broken[batch.rec]
        else:
            grid = np.broadcast_to(np.arange(k), (len(p), k))
            keep = grid != w[:, None]
            pp, others = np.nonzero(keep)[0], grid[keep]
            tie = outcome.winner_tied[batch.rec][pp]
        ww = w[pp]
        if rule == "borda":
            score = rule_scores(rule, m)
            margin = (score[pp, ww] - score[pp, others]) / WEIGHT_SCALE
        elif rule == "copeland":  # counts, not weights
            score = rule_scores(rule, m)
            margin = score[pp, ww] - score[pp, others]
        else:
            margin = m[pp, ww, others] / WEIGHT_SCALE
        frames.append({
            "rec": batch.rec[pp], "chosen_k": ww, "rejected_k": others, "margin": margin,
            "n_voters": batch.count[pp, ww, others] + batch.count[pp, others, ww],
            "cycle": outcome.cycle[batch.rec][pp], "tie_broken": tie,
            "condorcet": outcome.condorcet[batch.rec][pp] >= 0,
            "chosen_condorcet": outcome.condorcet[batch.rec][pp] == ww,
        })
    return _finish(records, frames)


def _finish(records: Ballots, parts: list[dict[str, np.ndarray]]) -> pd.DataFrame:
    """Concatenate per-batch columns, order rows by record, then margin (largest first), then
    candidate positions, and add the id columns (:data:`PAIR_COLUMNS`)."""
    names = ("rec", "chosen_k", "rejected_k", "margin", "n_voters", "cycle", "tie_broken", "condorcet",
             "chosen_condorcet")
    dtypes = (np.int64, np.int64, np.int64, np.float64, np.int64, bool, bool, bool, bool)
    cols = {
        name: np.concatenate([np.asarray(part[name], dtype=dt) for part in parts]) if parts
        else np.zeros(0, dtype=dt)
        for name, dt in zip(names, dtypes)
    }
    order = np.lexsort((cols["rejected_k"], cols["chosen_k"], -cols["margin"], cols["rec"]))
    cols = {name: col[order] for name, col in cols.items()}
    # String columns: Arrow arrays built with take() (no per-row Python objects, no pandas
    # block consolidation of million-row object columns).
    rec = cols["rec"]
    ids, offsets = candidate_table(records)
    ids_pa = pa.array(ids.tolist(), type=pa.string())
    rec_pa = pa.array(rec)
    strings = {
        "prompt_id": pa.array(ballot_field(records, "prompt_id"), type=pa.string()).take(rec_pa),
        "topic": pa.array(ballot_field(records, "topic"), type=pa.string()).take(rec_pa),
        "chosen_id": ids_pa.take(pa.array(offsets[rec] + cols["chosen_k"])),
        "rejected_id": ids_pa.take(pa.array(offsets[rec] + cols["rejected_k"])),
    }
    return pd.DataFrame({
        name: pd.arrays.ArrowStringArray(strings[name]) if name in strings else cols[name]
        for name in PAIR_COLUMNS
    })


def candidate_table(records: Ballots, field: str = "id") -> tuple[np.ndarray, np.ndarray]:
    """All candidates' ``field`` as one flat object array, and ``[R + 1]`` offsets: candidate
    ``k`` of record ``r`` is ``flat[offsets[r] + k]``."""
    table = ballots_table(records)
    if table.num_rows == 0:
        return np.zeros(0, dtype=object), np.zeros(1, dtype=np.int64)
    cands = _list_column(table, "candidates")
    flat = pc.struct_field(pc.list_flatten(cands), field).to_numpy(zero_copy_only=False)
    return flat.astype(object), _offsets(cands)


def arm_pairs(records: Ballots, arm: str, config: dict) -> pd.DataFrame:
    """Pairs of ``arm`` (``maj`` or a rule arm of the config, :func:`prefsweep.paths.arm_rules`)
    with its rule, ``sc.pairs`` and ``data.seed``."""
    from prefsweep.paths import MAJ, arm_rule

    if arm == MAJ:
        return maj_pairs(records)
    try:
        rule = arm_rule(config, arm)
    except ValueError as exc:
        raise ValueError(f"arm: {exc}") from None
    return sc_pairs(records, rule, config["sc"]["pairs"], config["data"]["seed"])


def winner_disagreement(records: Ballots, rule: str, seed: int) -> dict[str, Any]:
    """How often majority and ``rule`` disagree on the best response.

    Returns counts and shares: ``n_prompts``; ``cycles`` (majority relation has a cycle);
    ``condorcet`` (a Condorcet winner exists); ``disagree`` (a Condorcet winner exists and the
    rule's winner, after tie-breaking, is another candidate); ``share_disagree`` =
    disagree / n_prompts; ``share_disagree_given_condorcet`` = disagree / condorcet.
    """
    outcome, _ = sc_outcomes(records, rule, seed)
    has_cw = outcome.condorcet >= 0
    disagree = has_cw & (outcome.condorcet != outcome.winner)
    n = n_ballots(records)
    return {
        "rule": rule,
        "n_prompts": n,
        "cycles": int(outcome.cycle.sum()),
        "condorcet": int(has_cw.sum()),
        "disagree": int(disagree.sum()),
        "ties_broken": int(outcome.tie_broken.sum()),
        "share_disagree": float(disagree.sum() / n) if n else 0.0,
        "share_disagree_given_condorcet": float(disagree.sum() / has_cw.sum()) if has_cw.any() else 0.0,
    }
