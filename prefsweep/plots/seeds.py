"""Means over seeds with a Student-t interval, and the fallback to a single model's own interval.

A point that averages k >= 2 models (seeds) gets the two-sided Student-t interval
``mean +- t_{(1+ci)/2, k-1} * sd / sqrt(k)`` (sd with ddof=1) at level ``ci`` (config
``plots.ci``). A point backed by one model (the zero point, a one-seed run) gets that model's
own interval from the table (``ci_low``/``ci_high``: uncertainty over eval questions) instead.
The ``interval`` column of every plotted-values table says which was used.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats


def seed_interval(values: Iterable[float], ci: float) -> tuple[float, float, float, int]:
    """Mean and two-sided Student-t interval over models: ``(mean, low, high, k)``.

    ``mean +- t_{(1+ci/100)/2, k-1} * s / sqrt(k)`` with ``s`` the sample sd (ddof=1) of the k
    finite values. k < 2 gives NaN bounds; k = 0 a NaN mean.
    """
    v = np.asarray([x for x in values if x is not None and np.isfinite(x)], dtype=float)
    k = len(v)
    if k == 0:
        return math.nan, math.nan, math.nan, 0
    mean = float(v.mean())
    if k < 2:
        return mean, math.nan, math.nan, k
    half = float(stats.t.ppf(0.5 + ci / 200.0, k - 1) * v.std(ddof=1) / math.sqrt(k))
    return mean, mean - half, mean + half, k


def aggregate_over_seeds(
    df: pd.DataFrame,
    keys: Sequence[str],
    value: str,
    ci: float,
    x: str | None = None,
    fallback: tuple[str, str] | None = ("ci_low", "ci_high"),
    bounds: tuple[float, float] | None = (0.0, 1.0),
) -> pd.DataFrame:
    """One row per ``keys`` group: y (mean over distinct models), y_low/y_high, n_models, x.

    Distinct models are distinct ``model_id``s, except at size 0 where every row is the one
    zero-point model. A group of one model takes its interval from the ``fallback`` columns.
    ``x`` (if given) is averaged over the models (actual pairs are the same for every seed).
    Bounds are clipped to ``bounds``, the range of the quantity.
    """
    out: list[dict[str, Any]] = []
    if df.empty:
        return pd.DataFrame(columns=[*keys, "x", "y", "y_low", "y_high", "n_models", "interval"])
    for key, g in df.groupby(list(keys), sort=True, dropna=False):
        key = key if isinstance(key, tuple) else (key,)
        g = g[np.isfinite(g[value])]
        if g.empty:
            continue
        if "size" in g.columns and (g["size"] == 0).all():
            g = g.iloc[:1]
        elif "model_id" in g.columns and (g["model_id"] != "").all():
            g = g.drop_duplicates("model_id")
        mean, lo, hi, k = seed_interval(g[value], ci)
        interval = f"t{ci:g} over seeds" if k >= 2 else ""
        if k == 1 and fallback is not None and all(c in g.columns for c in fallback):
            lo, hi = float(g[fallback[0]].iloc[0]), float(g[fallback[1]].iloc[0])
            interval = "model CI" if np.isfinite(lo) and np.isfinite(hi) else ""
        if bounds is not None and np.isfinite(lo):
            lo, hi = max(lo, bounds[0]), min(hi, bounds[1])
        row = dict(zip(keys, key))
        row.update(
            x=float(g[x].mean()) if x else math.nan, y=mean, y_low=lo, y_high=hi, n_models=k,
            interval=interval,
        )
        out.append(row)
    return pd.DataFrame(out, columns=[*keys, "x", "y", "y_low", "y_high", "n_models", "interval"])
