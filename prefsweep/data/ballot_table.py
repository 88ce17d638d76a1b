"""Ballots as an Arrow table: the workflow's ``data/ballots.jsonl`` read without a Python object
per vote, records turned into the same table, field access that works on either, and the vote
weights as exact integer units (:data:`prefsweep.data.ballots.WEIGHT_UNIT`).

:data:`Ballots` is what the data stage's functions take: Python records (the format of
:mod:`prefsweep.data.ballots`) or an Arrow table of :data:`BALLOTS_SCHEMA` (or, for supports and
rules only, :data:`VOTES_SCHEMA`).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any, Union

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from prefsweep.data.ballots import (
    MAX_WEIGHT, MAX_WEIGHT_MASS, MIN_WEIGHT, WEIGHT_SCALE, BallotError, BallotRecord, gc_paused,
)
from prefsweep.io import rebuild_hint

#: Arrow schema of the ballots format (``meta`` is not read).
BALLOTS_SCHEMA = pa.schema([
    ("prompt_id", pa.string()),
    ("prompt", pa.string()),
    ("topic", pa.string()),
    ("candidates", pa.list_(pa.struct([("id", pa.string()), ("text", pa.string())]))),
    ("votes", pa.list_(pa.struct([
        ("ranking", pa.list_(pa.list_(pa.string()))),
        ("pair", pa.list_(pa.string())),
        ("winner", pa.string()),
        ("weight", pa.float64()),
        ("voter", pa.string()),
        ("group", pa.string()),
    ]))),
])
#: The part of :data:`BALLOTS_SCHEMA` that supports and voting rules read (:mod:`prefsweep.data.support`):
#: a table of it is cheaper to build from records when only statistics are wanted.
VOTES_SCHEMA = pa.schema([
    BALLOTS_SCHEMA.field("prompt_id"),
    ("candidates", pa.list_(pa.struct([("id", pa.string())]))),
    ("votes", pa.list_(pa.struct([
        BALLOTS_SCHEMA.field("votes").type.value_type.field(name) for name in ("ranking", "pair", "winner", "weight")
    ]))),
])


#: Ballots as Python records (the format of :mod:`prefsweep.data.ballots`) or as an Arrow table
#: (:data:`BALLOTS_SCHEMA`, from :func:`read_ballots_table`).
Ballots = Union[Sequence[BallotRecord], pa.Table]


def read_ballots_table(path: str | os.PathLike, columns: Sequence[str] | None = None) -> pa.Table:
    """The workflow's own ``data/ballots.jsonl`` as an Arrow table (:data:`BALLOTS_SCHEMA`, or
    just ``columns``), parsed by Arrow's JSON reader: no Python object per vote.

    That file holds only validated records (``scripts/ballots.py`` writes what
    :func:`prefsweep.data.sources.load_source` validated; :func:`prefsweep.data.ballots.write_ballots`
    validates), so it is not validated again here (a file from elsewhere: use
    :func:`prefsweep.data.sources.jsonl.load_jsonl`). A missing vote ``weight`` reads as null and
    counts as 1.0 (:func:`weight_units_of`). Reading only
    ``["prompt_id", "topic", "prompt"]`` skips the votes' cost. A missing, damaged or empty file
    raises :class:`BallotError` naming it and how to rebuild it.
    """
    import pyarrow.json as pj

    schema = BALLOTS_SCHEMA if columns is None else pa.schema([BALLOTS_SCHEMA.field(c) for c in columns])
    parse = pj.ParseOptions(explicit_schema=schema, unexpected_field_behavior="ignore")
    block = 1 << 24
    while True:
        try:
            table = pj.read_json(path, read_options=pj.ReadOptions(block_size=block), parse_options=parse)
            break
        except FileNotFoundError:
            raise BallotError(f"{path}: no such file; build it with `snakemake {path}`") from None
        except pa.ArrowInvalid as exc:
            # A block must hold the longest line: grow it for files with huge records.
            if "straddl" in str(exc) and block < os.path.getsize(path) + 1:
                block *= 4
                continue
            raise BallotError(
                f"{path}: not a ballots file in the validated format ({exc}); {rebuild_hint(path)}"
            ) from None
    if table.num_rows == 0:
        raise BallotError(f"{path}: no ballot records (empty file); {rebuild_hint(path)}")
    return table.combine_chunks()


def ballots_table(records: Ballots, schema: pa.Schema = BALLOTS_SCHEMA) -> pa.Table:
    """``records`` as an Arrow table of ``schema`` (:data:`BALLOTS_SCHEMA`, or :data:`VOTES_SCHEMA`
    for supports and rules only); a table is returned as it is. Absent keys become nulls, as in
    the file reader; other keys are dropped."""
    if isinstance(records, pa.Table):
        return records
    with gc_paused():
        return pa.Table.from_pylist(list(records), schema=schema)


def n_ballots(records: Ballots) -> int:
    """Number of records."""
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


def candidate_table(records: Ballots, field: str = "id") -> tuple[np.ndarray, np.ndarray]:
    """All candidates' ``field`` as one flat object array, and ``[R + 1]`` offsets: candidate
    ``k`` of record ``r`` is ``flat[offsets[r] + k]``."""
    table = ballots_table(records)
    if table.num_rows == 0:
        return np.zeros(0, dtype=object), np.zeros(1, dtype=np.int64)
    cands = one_array(table, "candidates")
    flat = pc.struct_field(pc.list_flatten(cands), field).to_numpy(zero_copy_only=False)
    return flat.astype(object), list_offsets(cands)


def one_array(table: pa.Table, name: str) -> pa.Array:
    """Column ``name`` as one array (no copy when it has one chunk; ``combine_chunks`` copies)."""
    col = table.column(name)
    return col.chunk(0) if col.num_chunks == 1 else pa.concat_arrays(col.chunks)


def list_offsets(arr: pa.ListArray) -> np.ndarray:
    """List offsets rebased to index the flattened values (a sliced array's start at 0)."""
    off = arr.offsets.to_numpy()
    return off - off[0]


def weight_units(weight: float | None) -> int:
    """One vote weight (None: 1.0) as a whole number of :data:`prefsweep.data.ballots.WEIGHT_UNIT`
    (rounded to nearest)."""
    return int(np.rint((1.0 if weight is None else float(weight)) * WEIGHT_SCALE))


def rounded_weights(table: pa.Table) -> int:
    """Number of vote weights of a ballots table with more than
    :data:`~prefsweep.data.ballots.WEIGHT_DECIMALS` decimal places (not a float nearest to a
    multiple of :data:`~prefsweep.data.ballots.WEIGHT_UNIT`), which are rounded."""
    weight = pc.struct_field(pc.list_flatten(one_array(table, "votes")), "weight")
    w = pc.drop_null(weight).to_numpy()
    return int(np.count_nonzero(np.rint(w * WEIGHT_SCALE) / WEIGHT_SCALE != w))


def weight_units_of(table: pa.Table, source: str | os.PathLike | None = None) -> np.ndarray:
    """The vote weights of a ballots table, flattened in vote order, as whole numbers of
    :data:`~prefsweep.data.ballots.WEIGHT_UNIT` (float64 holding integers; a missing weight is 1.0).

    The table-side check of the weight rules of the format (a validated file always passes):
    a weight outside [:data:`MIN_WEIGHT`, :data:`MAX_WEIGHT`] (NaN, 1e308, 0, negative) or a
    prompt whose total weight x candidates exceeds :data:`MAX_WEIGHT_MASS` raises
    :class:`BallotError` naming ``source`` (when given), the prompt and the vote.
    """
    votes = one_array(table, "votes")
    vote_rec = pc.list_parent_indices(votes).to_numpy()
    vote_off = votes.offsets.to_numpy() - votes.offsets[0].as_py()
    weight = pc.fill_null(pc.struct_field(pc.list_flatten(votes), "weight"), 1.0).to_numpy()
    where = "" if source is None else f"{source}: "

    def record(r: int) -> str:
        return f"{where}prompt_id {table.column('prompt_id')[r].as_py()!r}"

    ok = (weight >= MIN_WEIGHT) & (weight <= MAX_WEIGHT)  # False for NaN
    if not ok.all():
        bad = int(np.argmin(ok))
        r = int(vote_rec[bad])
        raise BallotError(
            f"{record(r)}: votes[{bad - int(vote_off[r])}].weight: expected a finite number from "
            f"{MIN_WEIGHT:g} to {MAX_WEIGHT:g}, got {float(weight[bad])!r}"
        )
    n_cands = pc.list_value_length(one_array(table, "candidates")).to_numpy(zero_copy_only=False)
    total = np.bincount(vote_rec, weights=weight, minlength=table.num_rows)
    over = np.nonzero(total * n_cands > MAX_WEIGHT_MASS)[0]
    if len(over):
        r = int(over[0])
        raise BallotError(
            f"{record(r)}: votes: total weight {total[r]:g} over {n_cands[r]} candidates is more than "
            f"can be summed exactly (total x candidates <= {MAX_WEIGHT_MASS:.4g}); expected smaller weights"
        )
    return np.rint(weight * WEIGHT_SCALE)

