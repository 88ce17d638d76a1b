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

**Per voter group** (ballots whose votes carry a ``group``): for each group, the pairs its own
voters' majority prefers on the held-out prompts (``data/eval_pairs/by_group.parquet``,
:func:`prefsweep.series.build_group_pairs`), and how often the model ranks that group's chosen
response first. This needs no judge, so it works on every source. The result record then has
``"groups": [{"group", "n_pairs", "n_prompts", "accuracy", "ci_low", "ci_high"}, ...]``: the
CI is the Wilson score interval at :data:`GROUP_CI` (pairs counted as independent draws; a
tie counts as wrong, as above). Table ``eval/pair_accuracy_groups.csv``:
:data:`GROUP_TABLE_COLUMNS`, one row per model and group (header only without groups).
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
GROUP_KEYS = ("group", "n_pairs", "n_prompts", "accuracy", "ci_low", "ci_high")
GROUP_TABLE_COLUMNS = ("model_id", *GROUP_KEYS, *CELL_COLUMNS)
#: Coverage of the per-group accuracy interval, and its normal quantile.
GROUP_CI = 0.95
_Z = 1.959963984540054


def wilson_interval(k: int, n: int, z: float = _Z) -> tuple[float, float]:
    """Wilson score interval of a proportion ``k / n`` (NaN, NaN for ``n == 0``)."""
    if n == 0:
        return math.nan, math.nan
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def group_accuracy(group_pairs: pd.DataFrame, margin: Mapping[str, float]) -> list[dict[str, Any]]:
    """Per-group records (:data:`GROUP_KEYS`) from the group pairs (columns group, pair_id,
    prompt_id) and each pair's log-prob margin (pair_id -> margin), groups in sorted order."""
    out = []
    for group, sub in sorted(group_pairs.groupby("group", sort=True), key=lambda kv: kv[0]):
        m = [margin[p] for p in sub["pair_id"].astype(str)]
        n, k = len(m), sum(1 for x in m if x > 0)
        lo, hi = wilson_interval(k, n)
        out.append({"group": str(group), "n_pairs": n, "n_prompts": int(sub["prompt_id"].nunique()),
                    "accuracy": k / n if n else math.nan, "ci_low": lo, "ci_high": hi})
    return out


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


def score_model_with_groups(model_dir: str | os.PathLike, pairs: pd.DataFrame, group_pairs: pd.DataFrame, *,
                            max_length: int, batch_size: int = SCORE_BATCH_SIZE) -> tuple[dict[str, Any], list]:
    """(:func:`score_model` metrics on ``pairs``, :func:`group_accuracy` on ``group_pairs``),
    every distinct pair (by pair_id) scored once."""
    import torch

    from prefsweep.reflogps import TEXT_COLUMNS, compute_ref_logps
    from prefsweep.training import TRAIN_DTYPE, load_model_and_tokenizer

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
