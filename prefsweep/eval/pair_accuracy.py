"""Preference accuracy on held-out pairs: scoring a model, its result record, and the tables.

For every pair of the held-out eval prompts (never in any training file), the summed
log-probability of the chosen and of the rejected completion under the model, exactly as DPO
scores them (:func:`prefsweep.train.reflogps.compute_ref_logps`, truncated at ``dpo.max_length``);
the metric (accuracy, mean log-prob margin, per-group accuracy with its Wilson interval) and
the columns: :mod:`prefsweep.eval.measures.pair_accuracy`. This is the "reward accuracy" TRL
logs during DPO training with the reference term dropped: it asks whether the model itself
prefers the chosen response, not whether it moved toward it.

Result record (``eval/pair_accuracy/{model_id}.json``): :data:`RESULT_KEYS`, and with voter
groups (ballots whose votes carry a ``group``; pairs of ``data/eval_pairs/by_group.parquet``,
:func:`prefsweep.data.series.build_group_pairs`) ``"groups": [{GROUP_KEYS...}, ...]``.
Tables: ``eval/pair_accuracy.csv`` (:data:`TABLE_COLUMNS`, one row per model) and
``eval/pair_accuracy_groups.csv`` (:data:`GROUP_TABLE_COLUMNS`, one row per model and group;
header only without groups), sorted by kind, arm, matching, size, seed (what
:func:`prefsweep.paths.parse_model_id` reads from the id).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from typing import Any

import pandas as pd

from prefsweep.eval import measures
from prefsweep.eval.measures.keys import MODEL_CELL
from prefsweep.eval.measures.pair_accuracy import (
    GROUP_PAIR_ACCURACY, PAIR_ACCURACY_MEASURE, accuracy_from_logps, group_accuracy,
)
from prefsweep.paths import parse_model_id

#: The result record's keys.
RESULT_KEYS = PAIR_ACCURACY_MEASURE.names
CELL_COLUMNS = MODEL_CELL.names
TABLE_COLUMNS = measures.columns(measures.PAIR_ACCURACY)
#: Pairs per forward pass when scoring (memory only; the values do not depend on it).
SCORE_BATCH_SIZE = 32
#: The keys of a result record's ``groups`` entries.
GROUP_KEYS = GROUP_PAIR_ACCURACY.names[1:]
GROUP_TABLE_COLUMNS = measures.columns(measures.PAIR_ACCURACY_GROUPS)


def score_model(model_dir: str | os.PathLike, pairs: pd.DataFrame, *, max_length: int,
                batch_size: int = SCORE_BATCH_SIZE) -> dict[str, Any]:
    """:func:`accuracy_from_logps` of the HF model at ``model_dir`` on ``pairs`` (pairs.parquet
    columns pair_id, prompt, chosen, rejected). Full precision, on the GPU if there is one.
    Raises :class:`~prefsweep.train.training.DataError` for prompts of ``max_length`` tokens or more."""
    import torch

    from prefsweep.train.reflogps import compute_ref_logps
    from prefsweep.train.training import TRAIN_DTYPE, load_model_and_tokenizer

    model, tokenizer = load_model_and_tokenizer(model_dir, dtype=TRAIN_DTYPE)
    model.to("cuda" if torch.cuda.is_available() else "cpu")
    logps = compute_ref_logps(model, tokenizer, pairs, max_length=max_length, key="dpo.max_length",
                              batch_size=batch_size)
    return accuracy_from_logps(logps)


def score_model_with_groups(model_dir: str | os.PathLike, pairs: pd.DataFrame, group_pairs: pd.DataFrame, *,
                            max_length: int, batch_size: int = SCORE_BATCH_SIZE) -> tuple[dict[str, Any], list]:
    """(:func:`score_model` metrics on ``pairs``, :func:`group_accuracy` on ``group_pairs``),
    every distinct pair (by pair_id) scored once."""
    import torch

    from prefsweep.train.reflogps import TEXT_COLUMNS, compute_ref_logps
    from prefsweep.train.training import TRAIN_DTYPE, load_model_and_tokenizer

    cols = ["pair_id", *TEXT_COLUMNS]
    union = pd.concat([pairs[cols], group_pairs[cols]], ignore_index=True)
    union["pair_id"] = union["pair_id"].astype(str)
    union = union.drop_duplicates("pair_id", ignore_index=True)
    model, tokenizer = load_model_and_tokenizer(model_dir, dtype=TRAIN_DTYPE)
    model.to("cuda" if torch.cuda.is_available() else "cpu")
    logps = compute_ref_logps(model, tokenizer, union, max_length=max_length, key="dpo.max_length",
                              batch_size=batch_size)
    margin = dict(zip(logps["pair_id"], logps["ref_chosen_logps"] - logps["ref_rejected_logps"]))
    main = logps.set_index("pair_id").loc[pairs["pair_id"].astype(str)]
    return accuracy_from_logps(main), group_accuracy(group_pairs, margin)


def result_record(model_id: str, pairs_path: str | os.PathLike, metrics: Mapping[str, Any],
                  groups: list[Mapping[str, Any]] | None = None) -> dict[str, Any]:
    """The result record of the module doc (``model_id`` must parse as a model id); ``groups``
    (per-group records) adds the ``groups`` key."""
    parse_model_id(model_id)
    record = {"model_id": model_id, "pairs": str(pairs_path), **metrics}
    out = {k: record[k] for k in RESULT_KEYS}
    if groups is not None:
        out["groups"] = [{k: g[k] for k in GROUP_KEYS} for g in groups]
    return out


def accuracy_table(records: Iterable[Mapping[str, Any]]) -> pd.DataFrame:
    """One row per result record with the cell its model id names; :data:`TABLE_COLUMNS`."""
    rows = []
    for r in records:
        cell = parse_model_id(r["model_id"])
        rows.append({**{k: r[k] for k in RESULT_KEYS}, "kind": cell.kind, "arm": cell.arm,
                     "matching": cell.matching, "size": cell.size, "seed": cell.seed})
    df = pd.DataFrame(rows, columns=list(TABLE_COLUMNS))
    return df.sort_values(list(CELL_COLUMNS), na_position="first", kind="stable").reset_index(drop=True)


def group_accuracy_table(records: Iterable[Mapping[str, Any]]) -> pd.DataFrame:
    """One row per result record and group (:data:`GROUP_TABLE_COLUMNS`), sorted by the model's
    cell, then group."""
    rows = []
    for r in records:
        cell = parse_model_id(r["model_id"])
        for g in r.get("groups", []):
            rows.append({"model_id": r["model_id"], **{k: g[k] for k in GROUP_KEYS}, "kind": cell.kind,
                         "arm": cell.arm, "matching": cell.matching, "size": cell.size, "seed": cell.seed})
    df = pd.DataFrame(rows, columns=list(GROUP_TABLE_COLUMNS))
    return df.sort_values([*CELL_COLUMNS, "group"], na_position="first", kind="stable").reset_index(drop=True)


def read_results(paths: Iterable[str | os.PathLike]) -> list[dict[str, Any]]:
    """Result records from their JSON files; a file without a result key is a ``ValueError`` naming it."""
    out = []
    for path in paths:
        with open(path, encoding="utf-8") as fh:
            record = json.load(fh)
        missing = [k for k in RESULT_KEYS if k not in record]
        if missing:
            raise ValueError(f"{path}: not a pair-accuracy result, missing {missing}")
        out.append(record)
    return out
