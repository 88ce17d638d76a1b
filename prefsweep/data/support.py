"""Weighted pairwise support of a prompt's votes, and the majority relation over it.

Both arms start from the **support** of a prompt's votes (vote format:
:mod:`prefsweep.data.ballots`)::

    S[i, j] = sum of the weights of the votes that strictly prefer candidate i to j
    C[i, j] = number of such votes
    M[i, j] = S[i, j] - S[j, i]                  (the margin; M = -M^T)

A ranking vote prefers i to j when i sits in an earlier tier (unlisted candidates are tied below
every listed one); a pair vote prefers its winner to the other; ties give nothing.

**Exact arithmetic.** Vote weights are decimal numbers: each is rounded to a whole number of
units of 1e-6 (:data:`prefsweep.data.ballots.WEIGHT_UNIT`, 6 decimal places) and S, M and every score
are sums of those integers, held in float64 below 2**53 (:data:`prefsweep.data.ballots.MAX_WEIGHT_MASS`
bounds a prompt's total weight), where float64 sums are exact. Every decision (majority, cycle,
Condorcet winner, Borda and Copeland scores and their ties, the margins given to
``pref_voting``) compares these exact integers, so 0.1 + 0.2 ties 0.3 (in binary floating point
it would be a strict majority of 5.55e-17).

The strict majority relation is ``M > 0``; :func:`majority_cycles` says whether it has a directed
cycle (no transitive majority order; a Condorcet paradox), :func:`condorcet_winners` which
candidate beats every other by a strict majority. Both run with numpy over all prompts with the
same number of candidates at once.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from prefsweep.data.ballot_table import Ballots, ballots_table, list_offsets, one_array, weight_units_of
from prefsweep.data.ballots import WEIGHT_SCALE, BallotError, BallotRecord

#: Prompts per numpy chunk (bounds the [P, V, K, K] intermediate).
CHUNK = 8192


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

    One pass over the Arrow table (:func:`~prefsweep.data.ballot_table.ballots_table`) with no
    Python object per vote: lists are flattened with their parent indices and candidate ids are
    mapped to positions through one dictionary encoding. Each ranking vote becomes a row of tier
    positions ``T[p, v, :]`` (unlisted candidates in one tier below the last) and
    ``S[p] = sum_v u[p, v] * (T[p, v, :, None] < T[p, v, None, :])`` with ``u`` the weights in
    units; pair votes with a winner are added with ``np.add.at``.

    Weights out of bounds raise :class:`BallotError` naming the prompt
    (:func:`prefsweep.data.ballot_table.weight_units_of`; validated ballots never have them).
    """
    table = ballots_table(records)
    if table.num_rows == 0:
        return []
    cands = one_array(table, "candidates")
    votes = one_array(table, "votes")
    n_rec = table.num_rows
    cand_off = list_offsets(cands)
    k_of = np.diff(cand_off)
    cand_rec = pc.list_parent_indices(cands).to_numpy()
    flat_votes = pc.list_flatten(votes)
    vote_off = list_offsets(votes)
    vote_rec = pc.list_parent_indices(votes).to_numpy()
    units = weight_units_of(table)

    ranking = pc.struct_field(flat_votes, "ranking")
    is_rank = ranking.is_valid().to_numpy(zero_copy_only=False)
    rank_off = list_offsets(ranking)
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


def margin_of(record: BallotRecord) -> np.ndarray:
    """``[K, K]`` exact margins (units) of one record."""
    (batch,) = support_batches([record])
    return batch.margin_units[0]
