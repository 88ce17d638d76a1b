"""Preference pairs of the two arms, from ballots.

``maj`` (pairwise majority): every pair with ``M[i, j] > 0`` (margins of
:mod:`prefsweep.data.support`) gives ``chosen=i, rejected=j``, ``margin = M[i, j]``,
``n_voters = C[i, j] + C[j, i]`` (votes that compare the two). Within a prompt pairs are ordered
by margin (largest first), then by candidate position, so truncating a prompt keeps its clearest
pairs. ``cycle`` says whether the prompt's strict majority relation contains a directed cycle.

Rule arms (social choice; one arm ``sc`` for a string ``sc.rule``, one arm per rule, named by
it, for a list: :func:`prefsweep.paths.arm_rules`): the rule (:mod:`prefsweep.data.rules`) picks
the winner and the loser. ``winner_loser`` gives one pair (winner, loser); ``winner_vs_all``
gives the winner against every other candidate. A winner or loser drawn among tied candidates
(or from a lottery) is flagged ``tie_broken``. ``margin`` is the score difference for ``borda``
and ``copeland`` and the pairwise margin ``M[winner, other]`` for other rules; the ``margin``
column is the exact value divided by 1e6: the float nearest to the decimal result.

``condorcet`` says whether the prompt has a Condorcet winner (beats every other candidate by a
strict majority), ``chosen_condorcet`` whether the pair's chosen response is it.

Input ballots (:data:`prefsweep.data.ballot_table.Ballots`) are the Arrow table of
:func:`prefsweep.data.ballot_table.read_ballots_table` (what the workflow reads) or Python records,
which are first turned into that table: there is one support computation,
:func:`prefsweep.data.support.support_batches`, with no Python object per vote. Pair tables
(:func:`maj_pairs`, :func:`sc_pairs`) are DataFrames with one row per pair and columns
:data:`PAIR_COLUMNS`: ``rec`` (index of the record in the input), ``prompt_id``, ``topic``,
``chosen_k``, ``rejected_k`` (candidate positions), ``chosen_id``, ``rejected_id``, ``margin``
(float64), ``n_voters`` (int64), ``cycle``, ``tie_broken``, ``condorcet``, ``chosen_condorcet``
(bool); rows grouped by record in input order.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from prefsweep.config import ConfigError
from prefsweep.data.ballot_table import (
    Ballots, ballot_field, ballot_record, ballots_table, candidate_table, n_ballots,
)
from prefsweep.data.ballots import WEIGHT_SCALE
from prefsweep.data.rules import (
    FAST_RULES, RULE_ALIASES, check_rule, draw_from_lotteries, is_probabilistic, pick, pref_voting_lottery,
    pref_voting_winners, rule_scores,
)
from prefsweep.data.support import SupportBatch, condorcet_winners, majority_cycles, support_batches

#: Values of ``sc.pairs``.
SC_PAIRS = ("winner_loser", "winner_vs_all")
#: Columns of a pair table (module docstring).
PAIR_COLUMNS = (
    "rec", "prompt_id", "topic", "chosen_k", "rejected_k", "chosen_id", "rejected_id",
    "margin", "n_voters", "cycle", "tie_broken", "condorcet", "chosen_condorcet",
)


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
    """Winner and loser of ``rule`` for every record (ties broken as in :mod:`prefsweep.data.rules`),
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
                w, l, tied = pick(
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
                w, l, tied = pick(winners, losers, m.shape[-1], seed, prompt_ids[r])
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


def check_arms(config: dict) -> None:
    """The arms of ``sc.rule`` and ``data.reference_arm`` (see :func:`prefsweep.paths.arm_rules`):
    every rule a ``pref_voting`` rule (deterministic or probabilistic), arm names that fit a
    path segment and a model id, the reference arm and every baseline's ``sft_on`` an arm.
    Raises :class:`ConfigError` naming the key and the valid values."""
    from prefsweep.paths import INITS, MAJ, SC, SHARED, arm_names, arm_rules

    rules = arm_rules(config)
    listed = not isinstance(config["sc"]["rule"], str)
    for arm, rule in rules.items():
        if listed and arm in (MAJ, SC, SHARED, *INITS):
            raise ConfigError(f"sc.rule: {arm!r} cannot name a rule arm (it is the name of the arm maj, of the "
                              f"original one-rule arm sc, of a matching or of an init); list pref_voting rule names")
        try:
            check_rule(rule)
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
    arms = arm_names(config)
    ref = config["data"]["reference_arm"]
    if ref not in arms:
        raise ConfigError(f"data.reference_arm: {ref!r} is not an arm; expected one of {', '.join(arms)} "
                          "(maj, or a rule arm of sc.rule: 'sc' when sc.rule is one rule, the rule's name in a list)")
    for b in config["eval"]["baselines"]:
        if b.get("sft_on") is not None and b["sft_on"] not in arms:
            raise ConfigError(f"eval.baselines: {b['name']}: sft_on {b['sft_on']!r} is not an arm; expected null "
                              f"or one of {', '.join(arms)}")
