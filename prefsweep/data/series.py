"""Held-out split, per-arm pools, nested matched series, SFT corpus and eval questions.

Order of operations (every step seeded by ``data.seed``, each with its own RNG stream):

1. **Topics** (:func:`select_topics`): ``data.topics`` is ``"all"``, an explicit list, or
   ``{"n": k}`` (k topics drawn without replacement from the sorted available topics).
2. **Eval split first** (:func:`make_split`): ``data.n_eval_prompts`` prompts of the selected
   topics are held out before anything else is built: drawn round robin over the (sorted)
   topics, each topic's prompts in a seeded shuffle, so the eval set is balanced over topics.
   Training prompts are the remaining ones, minus any whose raw prompt text equals an eval
   prompt's text (so no eval question is ever trained on, even under another id).
3. **One prompt order** per experiment: a seeded permutation of the training prompt ids (sorted
   first, so the order does not depend on the ballots' file order): ``split.json``'s
   ``train_order``.
4. **Pools** (:func:`build_pool`): every pair of an arm over all training prompts, prompts in
   train order, pairs within a prompt in the arm's order (:mod:`prefsweep.data.arms`).
5. **Series** (:func:`build_series`), in pairs of the reference arm (``data.reference_arm``):
   size N is the reference pool's first N rows, i.e. its first prompts in train order up to
   exactly N pairs, the last prompt's pairs truncated in pool order. Let ``last`` be the
   train-order position of that last prompt. Every other arm draws only on the prompts where
   the reference arm has at least one pair: a prompt whose reference pool has no pair (for
   ``maj``: every pairwise comparison tied) is left out of the other arms' series under both
   matchings, although their rules would still give it a (tie-broken) pair. Over the
   remaining rows of its pool, the other arm is

   - ``prompt``-matched: all its pairs of prompts at positions ``<= last``: exactly the prompts
     of the reference series (usually fewer pairs);
   - ``size``-matched: its first N such rows: the same prompts, topped up with the next prompts
     in order (or truncated in pool order) to exactly N pairs.

   Every series is a prefix of its pool's rows on the reference arm's prompts, so series are
   nested (N rows are in 2N). The reference arm's series do not depend on matching and are
   stored once as ``shared``.

File formats: ``split.json`` = ``{"seed", "topics", "eval_prompt_ids",
"train_order"}``; pool and series parquet columns :data:`SERIES_COLUMNS` (written from Arrow
tables in row groups of :data:`ROW_GROUP_ROWS` rows, so a series job reads only the leading
row groups of a pool); manifest =
``{"arm", "matching", "size", "n_pairs", "n_prompts", "topics": {topic: n_pairs},
"ties_broken", "cycles", "condorcet_prompts", "winner_is_condorcet", "share_ties_broken",
"share_cycles", "share_winner_is_condorcet", "sha256"}`` where ``ties_broken``, ``cycles`` and
``condorcet_prompts`` count prompts of the series with a broken tie (or a lottery's draw) /
a majority cycle / a Condorcet winner, ``winner_is_condorcet`` those among the latter where the
arm's winner (a rule arm's chosen response; for ``maj`` the Condorcet winner itself, by
definition) is the Condorcet winner, the shares divide by ``n_prompts`` (by
``condorcet_prompts`` for ``share_winner_is_condorcet``, null when there is none), and
``sha256`` is that of ``pairs.parquet``.
"""

from __future__ import annotations

import io
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from prefsweep.data import arms
from prefsweep.data.ballot_table import Ballots, ballot_field, ballot_record, ballots_table, candidate_table
from prefsweep.io import atomic_write_bytes, atomic_write_json, read_parquet_table, sha256_file
from prefsweep.paths import MAJ, SHARED, arm_rules
from prefsweep.data.prompts import render_completion, render_prompt

SERIES_COLUMNS = (
    "prompt", "chosen", "rejected", "pair_id", "prompt_id", "topic", "chosen_id", "rejected_id",
    "margin", "n_voters", "cycle", "tie_broken", "condorcet", "chosen_condorcet", "order",
)
MATCHINGS = ("prompt", "size")
#: Rows per Parquet row group of pools and series.
ROW_GROUP_ROWS = 16384
#: Seed streams: ``np.random.default_rng([data.seed, stream])``.
STREAM_TOPICS, STREAM_EVAL, STREAM_ORDER = 10, 11, 12


class SeriesError(ValueError):
    """A series cannot be built as asked (unreachable size, bad matching, ...)."""


# -- split -----------------------------------------------------------------------------------


def select_topics(available: Sequence[str], spec: Any, seed: int) -> list[str]:
    """The topics an experiment uses (sorted), from ``data.topics``.

    ``spec``: ``"all"``, a list of topic names, or ``{"n": k}`` (k random topics, seeded).
    Unknown topics or an impossible ``n`` raise ``ValueError`` naming ``data.topics``.
    """
    avail = sorted(set(available))
    if spec is None or spec == "all":
        return avail
    if isinstance(spec, dict):
        if set(spec) != {"n"} or not isinstance(spec["n"], int) or not 1 <= spec["n"] <= len(avail):
            raise ValueError(
                f"data.topics: expected {{n: k}} with 1 <= k <= {len(avail)} (the number of topics "
                f"in the ballots), got {spec!r}"
            )
        rng = np.random.default_rng([int(seed), STREAM_TOPICS])
        picked = rng.choice(len(avail), size=spec["n"], replace=False)
        return sorted(avail[i] for i in picked.tolist())
    if isinstance(spec, (list, tuple)) and spec:
        unknown = [t for t in spec if t not in avail]
        if unknown:
            raise ValueError(
                f"data.topics: unknown topic(s) {unknown} (the ballots have: {', '.join(avail)})"
            )
        return sorted(set(spec))
    raise ValueError(f"data.topics: expected 'all', a non-empty list of topics or {{n: k}}, got {spec!r}")


def make_split(records: Ballots, data: dict[str, Any]) -> dict[str, Any]:
    """``split.json`` content from the ballots (only ``prompt_id``, ``topic`` and ``prompt`` are
    read) and the config's ``data`` section (steps 1-3)."""
    seed = int(data["seed"])
    all_topics = ballot_field(records, "topic")
    topics = select_topics(all_topics, data["topics"], seed)
    chosen = set(topics)
    by_topic: dict[str, list[str]] = {t: [] for t in topics}
    text_of: dict[str, str] = {}
    for pid, topic, prompt in zip(
        ballot_field(records, "prompt_id"), all_topics, ballot_field(records, "prompt")
    ):
        if topic in chosen:
            by_topic[topic].append(pid)
            text_of[pid] = prompt
    n_eval = int(data["n_eval_prompts"])
    n_all = len(text_of)
    if not 0 <= n_eval < n_all:
        raise ValueError(
            f"data.n_eval_prompts: {n_eval} eval prompts leave no training prompt "
            f"(topics {topics} have {n_all} prompts)"
        )
    rng = np.random.default_rng([seed, STREAM_EVAL])
    queues: dict[str, list[str]] = {}
    for t in topics:  # each topic's prompts in a seeded shuffle (sorted first: file order is irrelevant)
        ids = sorted(by_topic[t])
        queues[t] = [ids[i] for i in rng.permutation(len(ids)).tolist()]
    eval_ids: list[str] = []
    depth = 0
    while len(eval_ids) < n_eval:
        for t in topics:
            if depth < len(queues[t]) and len(eval_ids) < n_eval:
                eval_ids.append(queues[t][depth])
        depth += 1
    eval_set = set(eval_ids)
    eval_texts = {text_of[p] for p in eval_ids}
    train = sorted(p for p in text_of if p not in eval_set and text_of[p] not in eval_texts)
    if not train:
        raise ValueError("data.n_eval_prompts: no training prompt left after the eval split")
    order = np.random.default_rng([seed, STREAM_ORDER]).permutation(len(train))
    return {
        "seed": seed,
        "topics": topics,
        "eval_prompt_ids": eval_ids,
        "train_order": [train[i] for i in order.tolist()],
    }


def records_in(records: Ballots, prompt_ids: Sequence[str]) -> pa.Table:
    """The records of ``prompt_ids``, in that order, as an Arrow table
    (:func:`prefsweep.data.ballot_table.ballots_table`). A missing id raises :class:`SeriesError` naming it."""
    table = ballots_table(records)
    row = {p: i for i, p in enumerate(ballot_field(table, "prompt_id"))}
    missing = [p for p in prompt_ids if p not in row]
    if missing:
        raise SeriesError(
            f"split names {len(missing)} prompt ids missing from the ballots, e.g. {missing[:3]}; "
            "expected the split.json made from these ballots (rebuild it: `snakemake --forcerun split`)"
        )
    return table.take(pa.array([row[p] for p in prompt_ids], type=pa.int64()))


# -- pools and series ------------------------------------------------------------------------


def build_pool(
    records: Ballots, split: dict[str, Any], arm: str, config: dict[str, Any]
) -> pa.Table:
    """Every pair of ``arm`` over the training prompts in train order, as an Arrow table with
    columns :data:`SERIES_COLUMNS` (``prompt`` / ``chosen`` / ``rejected`` rendered with
    ``config["prompt_format"]``).

    Each string is rendered once, and only the candidates that are in a pair (for ``sc``
    ``winner_loser``, two of K); the columns are gathered with Arrow ``take``, so a million-row
    pool costs no per-row Python work.
    """
    train = records_in(records, split["train_order"])
    pairs = arms.arm_pairs(train, arm, config)
    fmt = config["prompt_format"]
    rec_np = pairs["rec"].to_numpy()
    rec = pa.array(rec_np)
    texts, offsets = candidate_table(train, "text")
    chosen_at = offsets[rec_np] + pairs["chosen_k"].to_numpy()
    rejected_at = offsets[rec_np] + pairs["rejected_k"].to_numpy()
    used = np.zeros(len(texts), dtype=bool)
    used[chosen_at] = used[rejected_at] = True
    # position of candidate i among the used ones
    slot = np.cumsum(used) - 1
    completions = pa.array([render_completion(t, fmt) for t in texts[used].tolist()], type=pa.string())
    prompts = pa.array([render_prompt(t, fmt) for t in ballot_field(train, "prompt")], type=pa.string())
    chosen = pa.array(slot[chosen_at])
    rejected = pa.array(slot[rejected_at])
    pid, cid, rid, topic = (
        pa.array(pairs[c].array).cast(pa.string()) for c in ("prompt_id", "chosen_id", "rejected_id", "topic")
    )
    return pa.table({
        "prompt": prompts.take(rec),
        "chosen": completions.take(chosen),
        "rejected": completions.take(rejected),
        "pair_id": pc.binary_join_element_wise(pid, pc.binary_join_element_wise(cid, rid, ">"), "|"),
        "prompt_id": pid,
        "topic": topic,
        "chosen_id": cid,
        "rejected_id": rid,
        "margin": pa.array(pairs["margin"].to_numpy(np.float64)),
        "n_voters": pa.array(pairs["n_voters"].to_numpy(np.int64)),
        "cycle": pa.array(pairs["cycle"].to_numpy(bool)),
        "tie_broken": pa.array(pairs["tie_broken"].to_numpy(bool)),
        "condorcet": pa.array(pairs["condorcet"].to_numpy(bool)),
        "chosen_condorcet": pa.array(pairs["chosen_condorcet"].to_numpy(bool)),
        "order": pa.array(rec_np.astype(np.int64)),
    })


#: Columns of ``data/eval_pairs/by_group.parquet``: a pool's plus the voter group.
GROUP_PAIR_COLUMNS = (*SERIES_COLUMNS, "group")
_GROUP_PAIR_SCHEMA = pa.schema(
    [(c, pa.string()) for c in SERIES_COLUMNS[:8]]
    + [("margin", pa.float64()), ("n_voters", pa.int64()), ("cycle", pa.bool_()), ("tie_broken", pa.bool_()),
       ("condorcet", pa.bool_()), ("chosen_condorcet", pa.bool_()), ("order", pa.int64()), ("group", pa.string())]
)
assert tuple(_GROUP_PAIR_SCHEMA.names) == GROUP_PAIR_COLUMNS


def vote_groups(records: Ballots) -> list[str]:
    """The distinct ``group`` values of the records' votes, sorted (votes without one are in none)."""
    table = ballots_table(records)
    flat = pc.list_flatten(table.column("votes").combine_chunks())
    groups = pc.unique(pc.drop_null(pc.struct_field(flat, "group"))).to_pylist()
    return sorted(groups)


def build_group_pairs(records: Ballots, prompt_ids: Sequence[str], config: dict[str, Any]) -> pa.Table:
    """For every voter group (:func:`vote_groups` of the prompts ``prompt_ids``), the pairs its
    own voters' weighted majority prefers (the ``maj`` arm over the group's votes alone), over
    the prompts where the group voted, in ``prompt_ids`` order: columns
    :data:`GROUP_PAIR_COLUMNS`, groups in sorted order. No groups: no rows."""
    ev = records_in(records, prompt_ids)
    parts = []
    for group in vote_groups(ev):
        sub = []
        for r in range(ev.num_rows):
            rec = ballot_record(ev, r)
            votes = [v for v in rec["votes"] if v.get("group") == group]
            if votes:
                sub.append({**rec, "votes": votes})
        if not sub:
            continue
        pool = build_pool(sub, {"train_order": [r["prompt_id"] for r in sub]}, "maj", config)
        parts.append(pool.append_column("group", pa.array([group] * pool.num_rows, type=pa.string())))
    if not parts:
        return _GROUP_PAIR_SCHEMA.empty_table()
    return pa.concat_tables([t.cast(_GROUP_PAIR_SCHEMA) for t in parts])


def write_table(path: str | os.PathLike, table: pa.Table, row_group_size: int = ROW_GROUP_ROWS) -> None:
    """Write an Arrow table as Parquet, atomically (:func:`prefsweep.io.atomic_write_bytes`).

    Row groups of ``row_group_size`` rows let :func:`read_series` read just the leading rows
    of a million-row pool. Same table, same bytes.
    """
    buf = io.BytesIO()
    pq.write_table(table, buf, row_group_size=row_group_size)
    atomic_write_bytes(path, buf.getvalue())


def series_rows(
    ref_order: np.ndarray,
    other_order: np.ndarray,
    arm: str,
    matching: str,
    size: int,
    reference_arm: str,
) -> np.ndarray:
    """Indices (increasing) of the pool rows that form the series (module docstring, step 5).

    ``ref_order`` / ``other_order``: the ``order`` column of the reference pool and of
    ``arm``'s pool. Raises :class:`SeriesError` naming arm, matching, size and what is available
    when the size cannot be reached, or when the matching does not fit the arm.
    """
    if size < 1:
        raise SeriesError(f"arm {arm}, matching {matching}, size {size}: expected a size >= 1 (0 is the zero point)")
    if arm == reference_arm and matching != SHARED:
        raise SeriesError(
            f"arm {arm}, matching {matching}, size {size}: {arm} is the reference arm "
            f"(data.reference_arm); its series are stored once as matching {SHARED!r}"
        )
    if arm != reference_arm and matching not in MATCHINGS:
        raise SeriesError(
            f"arm {arm}, matching {matching}, size {size}: expected matching "
            f"{' or '.join(MATCHINGS)} for a non-reference arm"
        )
    if size > len(ref_order):
        n_prompts = len(np.unique(ref_order))
        raise SeriesError(
            f"arm {arm}, matching {matching}, size {size}: unreachable; the reference arm "
            f"{reference_arm} has only {len(ref_order)} pairs over {n_prompts} training prompts "
            "(lower data.sizes or add prompts)"
        )
    if arm == reference_arm:
        return np.arange(size)
    # Only the prompts where the reference arm has a pair (module docstring).
    rows = np.nonzero(np.isin(other_order, np.unique(ref_order)))[0]
    if matching == "prompt":
        last = ref_order[size - 1]
        return rows[: int(np.searchsorted(other_order[rows], last, side="right"))]
    if size > len(rows):
        raise SeriesError(
            f"arm {arm}, matching size, size {size}: unreachable; arm {arm} has only "
            f"{len(rows)} pairs over {len(np.unique(other_order[rows]))} training prompts where "
            f"the reference arm {reference_arm} has a pair "
            "(lower data.sizes, add prompts, or use sc.pairs winner_vs_all)"
        )
    return rows[:size]


def build_series(
    ref_pool: pa.Table, pool: pa.Table, arm: str, matching: str, size: int, reference_arm: str
) -> pa.Table:
    """The series cell (``arm``, ``matching``, ``size``) from the two pools (module docstring).

    ``pool`` is ``arm``'s pool (the same table as ``ref_pool`` for the reference arm)."""
    rows = series_rows(
        ref_pool["order"].to_numpy(), pool["order"].to_numpy(), arm, matching, size, reference_arm
    )
    return pool.take(pa.array(rows, type=pa.int64()))


def read_series(
    ref_pool_path: str | os.PathLike,
    pool_path: str | os.PathLike,
    arm: str,
    matching: str,
    size: int,
    reference_arm: str,
) -> pa.Table:
    """:func:`build_series` from pool files, reading only the reference pool's ``order``
    column and the leading row groups of ``arm``'s pool that the series needs. A missing,
    truncated or corrupt pool raises :class:`prefsweep.io.DataFileError` naming it."""
    ref_order = read_parquet_table(ref_pool_path, ["order"])["order"].to_numpy()
    if Path(pool_path).resolve() == Path(ref_pool_path).resolve():
        other_order = ref_order
    else:
        other_order = read_parquet_table(pool_path, ["order"])["order"].to_numpy()
    rows = series_rows(ref_order, other_order, arm, matching, size, reference_arm)
    n = int(rows[-1]) + 1 if len(rows) else 0
    table = read_parquet_table(pool_path, SERIES_COLUMNS, max_rows=n)
    return table.slice(0, n).combine_chunks().take(pa.array(rows, type=pa.int64()))


def series_manifest(table: pa.Table, arm: str, matching: str, size: int, sha256: str) -> dict[str, Any]:
    """Manifest of a series cell (module docstring)."""
    df = table.select(["prompt_id", "topic", "cycle", "tie_broken", "condorcet", "chosen_condorcet"]).to_pandas()
    per_prompt = df.groupby("prompt_id", sort=False).agg(
        cycle=("cycle", "any"), tie=("tie_broken", "any"), cw=("condorcet", "any"), won=("chosen_condorcet", "any"))
    n_prompts = len(per_prompt)
    n_cw = int(per_prompt["cw"].sum())
    # maj's winner is the Condorcet winner by definition (a truncated last prompt may have
    # lost the winner's pairs); a rule arm's winner is the chosen response of its pairs.
    n_won = n_cw if arm == MAJ else int((per_prompt["cw"] & per_prompt["won"]).sum())
    return {
        "arm": arm,
        "matching": matching,
        "size": int(size),
        "n_pairs": int(len(df)),
        "n_prompts": int(len(per_prompt)),
        "topics": {str(t): int(n) for t, n in df["topic"].value_counts().sort_index().items()},
        "ties_broken": int(per_prompt["tie"].sum()),
        "cycles": int(per_prompt["cycle"].sum()),
        "condorcet_prompts": n_cw,
        "winner_is_condorcet": n_won,
        "share_ties_broken": float(per_prompt["tie"].sum() / n_prompts) if n_prompts else 0.0,
        "share_cycles": float(per_prompt["cycle"].sum() / n_prompts) if n_prompts else 0.0,
        "share_winner_is_condorcet": n_won / n_cw if n_cw else None,
        "sha256": sha256,
    }


def write_series(pairs_path: str | os.PathLike, manifest_path: str | os.PathLike, table: pa.Table, arm: str,
                 matching: str, size: int) -> dict[str, Any]:
    """Write the pairs (``data/{arm}/{matching}/n{size}/pairs.parquet``) then their manifest,
    each atomically; return the manifest."""
    write_table(pairs_path, table.select(list(SERIES_COLUMNS)))
    manifest = series_manifest(table, arm, matching, size, sha256_file(pairs_path))
    atomic_write_json(manifest_path, manifest)
    return manifest


# -- SFT corpus and eval questions -----------------------------------------------------------


def best_responses(records: Ballots, config: dict[str, Any]) -> list[str]:
    """Text of the winner of the first rule of ``sc.rule`` (:func:`prefsweep.paths.arm_rules`)
    for every record (tie-breaking, or a lottery's draw, as in that rule's arm)."""
    rule = next(iter(arm_rules(config).values()))
    return arms.sc_winners(records, rule, int(config["data"]["seed"]), field="text")


def sft_corpus(records: Ballots, split: dict[str, Any], config: dict[str, Any]) -> list[dict[str, str]]:
    """``data/sft.jsonl`` rows ``{"prompt", "completion", "prompt_id"}`` (rendered), the best
    response of every training prompt, in train order."""
    train = records_in(records, split["train_order"])
    fmt = config["prompt_format"]
    return [
        {"prompt": render_prompt(prompt, fmt), "completion": render_completion(best, fmt), "prompt_id": pid}
        for pid, prompt, best in zip(
            ballot_field(train, "prompt_id"), ballot_field(train, "prompt"), best_responses(train, config)
        )
    ]


def pretrain_corpus(records: Ballots, split: dict[str, Any], config: dict[str, Any]) -> list[dict[str, str]]:
    """``data/pretrain.jsonl`` rows ``{"prompt", "completion", "prompt_id"}`` (rendered): every
    candidate response of every training prompt, chosen or not, in train order: the unselected
    text the tiny base model is pretrained on (``scripts/base_model.py``)."""
    train = records_in(records, split["train_order"])
    fmt = config["prompt_format"]
    rows = []
    for pid, prompt, candidates in zip(ballot_field(train, "prompt_id"), ballot_field(train, "prompt"),
                                       ballot_field(train, "candidates")):
        rendered = render_prompt(prompt, fmt)
        rows += [{"prompt": rendered, "completion": render_completion(c["text"], fmt), "prompt_id": pid}
                 for c in candidates]
    return rows


def eval_questions(
    records: Ballots, split: dict[str, Any], config: dict[str, Any]
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """FastChat ``question.jsonl`` rows and reference answers for the eval prompts.

    Questions: ``{"question_id": prompt_id, "category": topic, "turns": [raw prompt]}``.
    Reference answers (FastChat answer format, the best response as raw text):
    ``{"question_id", "answer_id": "reference-<prompt_id>", "model_id": "reference",
    "choices": [{"index": 0, "turns": [text]}], "tstamp": 0.0}`` (fixed id and time stamp so
    the file is byte-identical across runs).
    """
    ev = records_in(records, split["eval_prompt_ids"])
    fields = zip(ballot_field(ev, "prompt_id"), ballot_field(ev, "topic"), ballot_field(ev, "prompt"))
    questions = [{"question_id": pid, "category": topic, "turns": [prompt]} for pid, topic, prompt in fields]
    answers = [
        {
            "question_id": q["question_id"],
            "answer_id": f"reference-{q['question_id']}",
            "model_id": "reference",
            "choices": [{"index": 0, "turns": [best]}],
            "tstamp": 0.0,
        }
        for q, best in zip(questions, best_responses(ev, config))
    ]
    return questions, answers
