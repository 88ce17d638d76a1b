"""Selecting the rows a figure draws from the win-rate and welfare tables.

The tables are those :mod:`prefsweep.eval.tables` and :mod:`prefsweep.eval.welfare` write (text
columns '' where empty, numbers NaN). The zero point (the DPO init model) appears once per arm x
matching line with size 0; models not on a line (baselines, base or SFT when it is no init) have
arm "". With several inits a line is an init x arm x matching, written ``arm|init``
(:func:`init_lines`, :func:`split_arm`).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd


def finite_rows(df: pd.DataFrame, column: str, what: str, missing: list[str]) -> pd.DataFrame:
    """Rows whose ``column`` is a finite number; the others are named in ``missing`` (a model
    without a valid verdict has no win rate, so it is left out, not drawn as 0)."""
    ok = np.isfinite(pd.to_numeric(df[column], errors="coerce").to_numpy(dtype=float))
    dropped = df[~ok]
    if len(dropped):
        ids = list(dict.fromkeys(dropped["model_id"]))
        missing.append(f"{what}: {len(dropped)} row(s) without {column} left out "
                       f"({', '.join(ids[:8])}{', ...' if len(ids) > 8 else ''})")
    return df[ok]


def split_arm(arm: str) -> tuple[str, str]:
    """``(arm, init)`` of a line's arm (``arm|init`` with several inits, :func:`init_lines`)."""
    arm, _, init = str(arm).partition("|")
    return arm, init


def init_lines(df: pd.DataFrame | None) -> pd.DataFrame | None:
    """With rows of several inits (``init`` column), the arm of every row on a line becomes
    ``arm|init`` so that each init x arm x matching is a line of its own; else ``df`` as it is."""
    if df is None or "init" not in df.columns or not len(df):
        return df
    inits = sorted(set(df["init"].fillna("")) - {""})
    if len(inits) < 2:
        return df
    on_line = (df["arm"].fillna("") != "") & (df["init"].fillna("") != "")
    out = df.copy()
    out.loc[on_line, "arm"] = out.loc[on_line, "arm"].astype(str) + "|" + out.loc[on_line, "init"].astype(str)
    return out


def series_rows(win_rates: pd.DataFrame) -> pd.DataFrame:
    """Final models of the arm x matching lines, zero point included (not checkpoints)."""
    wr = win_rates
    return wr[(wr["arm"] != "") & (wr["kind"] != "checkpoint")]


def reference_rows(win_rates: pd.DataFrame) -> pd.DataFrame:
    """SFT, base and baseline models, one row each (horizontal lines), SFT first.

    SFT and base are taken from their own rows (arm "") or, when one is a zero point and so only
    appears on the lines, from its first line copy. The comparison baseline itself is left out (its win
    rate against itself is the tie line).
    """
    wr = win_rates
    rows = wr[wr["kind"].isin(["sft", "base", "baseline"])]
    rows = rows[rows["model_id"] != rows["baseline"]]
    rows = rows.assign(_o=rows["kind"].map({"sft": 0, "base": 1, "baseline": 2}), _line=rows["arm"] != "")
    rows = rows.sort_values(["_o", "model_id", "_line"], kind="stable").drop_duplicates("model_id")
    return rows.drop(columns=["_o", "_line"]).assign(arm="", matching="", size=math.nan)


def comparison(win_rates: pd.DataFrame) -> tuple[str, str]:
    """The (judge, baseline) all rows are measured with; ValueError if the table mixes several."""
    pairs = sorted({(j, b) for j, b in zip(win_rates["judge"], win_rates["baseline"])})
    if len(pairs) > 1:
        raise ValueError(
            f"win-rate table mixes judges/baselines {pairs}: the figures compare models under one "
            "judge and one baseline; split the table first"
        )
    return pairs[0] if pairs else ("", "")


def welfare_lines(welfare: pd.DataFrame, measure: str, group: str, missing: list[str],
                  what: str) -> pd.DataFrame:
    """The line rows (:func:`series_rows`) of one welfare ``measure`` and ``group`` with a finite
    value; the others are named in ``missing`` under ``what``."""
    rows = welfare[(welfare["measure"] == measure) & (welfare["group"] == group)]
    return finite_rows(series_rows(rows), "value", what, missing)
