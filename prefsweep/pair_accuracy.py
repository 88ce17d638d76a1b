"""Preference accuracy on held-out pairs: how often a model ranks the chosen response first.

For every pair of the held-out eval prompts (never in any training file), the summed
log-probability of the chosen and of the rejected completion under the model, exactly as DPO
scores them (:func:`prefsweep.reflogps.compute_ref_logps`, truncated at ``dpo.max_length``)::

    margin_i = log pi(y_w,i | x_i) - log pi(y_l,i | x_i)
    accuracy = mean_i [margin_i > 0]      (a tie, margin 0, counts as wrong)

This is the "reward accuracy" TRL logs during DPO training with the reference term dropped: it
asks whether the model itself prefers the chosen response, not whether it moved toward it.

Result record (``eval/pair_accuracy/{model_id}.json``)::

    {"model_id": str, "pairs": str (the pairs file), "n_pairs": int,
     "accuracy": float (NaN without pairs), "mean_logp_margin": float (NaN without pairs)}

Table (``eval/pair_accuracy.csv``): :data:`TABLE_COLUMNS`, one row per model, sorted by kind,
arm, matching, size, seed (what :func:`prefsweep.paths.parse_model_id` reads from the id).
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable, Mapping
from typing import Any

import pandas as pd

from prefsweep.paths import parse_model_id

RESULT_KEYS = ("model_id", "pairs", "n_pairs", "accuracy", "mean_logp_margin")
CELL_COLUMNS = ("kind", "arm", "matching", "size", "seed")
TABLE_COLUMNS = (*RESULT_KEYS, *CELL_COLUMNS)
#: Pairs per forward pass when scoring (memory only; the values do not depend on it).
SCORE_BATCH_SIZE = 32


def accuracy_from_logps(logps: pd.DataFrame) -> dict[str, Any]:
    """``n_pairs``, ``accuracy`` and ``mean_logp_margin`` of a ref-logps-format table
    (columns ``ref_chosen_logps``, ``ref_rejected_logps``; see the module doc)."""
    margin = logps["ref_chosen_logps"] - logps["ref_rejected_logps"]
    n = int(len(margin))
    return {
        "n_pairs": n,
        "accuracy": float((margin > 0).mean()) if n else math.nan,
        "mean_logp_margin": float(margin.mean()) if n else math.nan,
    }


def score_model(model_dir: str | os.PathLike, pairs: pd.DataFrame, *, max_length: int,
                batch_size: int = SCORE_BATCH_SIZE) -> dict[str, Any]:
    """:func:`accuracy_from_logps` of the HF model at ``model_dir`` on ``pairs`` (pairs.parquet
    columns pair_id, prompt, chosen, rejected). Full precision, on the GPU if there is one.
    Raises :class:`~prefsweep.training.DataError` for prompts of ``max_length`` tokens or more."""
    import torch

    from prefsweep.reflogps import compute_ref_logps
    from prefsweep.training import TRAIN_DTYPE, load_model_and_tokenizer

    model, tokenizer = load_model_and_tokenizer(model_dir, dtype=TRAIN_DTYPE)
    model.to("cuda" if torch.cuda.is_available() else "cpu")
    logps = compute_ref_logps(model, tokenizer, pairs, max_length=max_length, key="dpo.max_length",
                              batch_size=batch_size)
    return accuracy_from_logps(logps)


def result_record(model_id: str, pairs_path: str | os.PathLike, metrics: Mapping[str, Any]) -> dict[str, Any]:
    """The result record of the module doc (``model_id`` must parse as a model id)."""
    parse_model_id(model_id)
    record = {"model_id": model_id, "pairs": str(pairs_path), **metrics}
    return {k: record[k] for k in RESULT_KEYS}


def accuracy_table(records: Iterable[Mapping[str, Any]]) -> pd.DataFrame:
    """One row per result record with the cell its model id names; :data:`TABLE_COLUMNS`."""
    rows = []
    for r in records:
        cell = parse_model_id(r["model_id"])
        rows.append({**{k: r[k] for k in RESULT_KEYS}, "kind": cell.kind, "arm": cell.arm,
                     "matching": cell.matching, "size": cell.size, "seed": cell.seed})
    df = pd.DataFrame(rows, columns=list(TABLE_COLUMNS))
    return df.sort_values(list(CELL_COLUMNS), na_position="first", kind="stable").reset_index(drop=True)


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
