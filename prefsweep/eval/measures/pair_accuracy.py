"""Preference accuracy on held-out pairs: the metric and its columns.

Per pair, the summed log-probability of the chosen and of the rejected completion under the
model (as DPO scores them)::

    margin_i = log pi(y_w,i | x_i) - log pi(y_l,i | x_i)
    accuracy = mean_i [margin_i > 0]      (a tie, margin 0, counts as wrong)

Per voter group, on the pairs the group's own majority prefers, with the Wilson score interval
at :data:`GROUP_CI` (pairs counted as independent draws). Scoring models and the result files:
:mod:`prefsweep.eval.pair_accuracy`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import pandas as pd

from prefsweep.eval.measures.registry import PAIR_ACCURACY, PAIR_ACCURACY_GROUPS, Column, Measure, register

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


def group_accuracy(group_pairs: pd.DataFrame, margin: Mapping[str, float]) -> list[dict[str, Any]]:
    """Per-group records (``GROUP_KEYS`` of :mod:`prefsweep.eval.pair_accuracy`) from the group
    pairs (columns group, pair_id, prompt_id) and each pair's log-prob margin (pair_id ->
    margin), groups in sorted order."""
    out = []
    for group, sub in sorted(group_pairs.groupby("group", sort=True), key=lambda kv: kv[0]):
        m = [margin[p] for p in sub["pair_id"].astype(str)]
        n, k = len(m), sum(1 for x in m if x > 0)
        lo, hi = wilson_interval(k, n)
        out.append({"group": str(group), "n_pairs": n, "n_prompts": int(sub["prompt_id"].nunique()),
                    "accuracy": k / n if n else math.nan, "ci_low": lo, "ci_high": hi})
    return out


#: The result record's keys (``eval/pair_accuracy/{model_id}.json``), the first columns of its table.
PAIR_ACCURACY_MEASURE = register(Measure("pair_accuracy", (PAIR_ACCURACY,), (
    Column("model_id", "text", "the model's id"),
    Column("pairs", "text", "the held-out pairs file scored"),
    Column("n_pairs", "int", "held-out pairs scored"),
    Column("accuracy", "float", "share of pairs whose chosen response the model gives the higher summed "
                                "log-probability (a tie counts as wrong)"),
    Column("mean_logp_margin", "float", "mean of log p(chosen) - log p(rejected) over the pairs"),
)))

#: Per voter group: the model, then the keys of a record's ``groups`` entries.
GROUP_PAIR_ACCURACY = register(Measure("group_pair_accuracy", (PAIR_ACCURACY_GROUPS,), (
    Column("model_id", "text", "the model's id"),
    Column("group", "text", "the voter group whose majority pairs are scored"),
    Column("n_pairs", "int", "held-out pairs the group's majority prefers"),
    Column("n_prompts", "int", "held-out prompts of those pairs"),
    Column("accuracy", "float", "share of those pairs whose chosen response the model ranks first"),
    Column("ci_low", "float", "lower end of the 95% Wilson score interval of accuracy"),
    Column("ci_high", "float", "upper end of that interval"),
)))
