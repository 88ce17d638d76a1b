"""The eval tables as CSV files: their columns (from :mod:`prefsweep.eval.measures`) and format.

A table file has exactly its registry columns, in order (a table with nothing in it is its
header line). Integer columns are nullable (empty where a model has no such value, e.g. the
seed of ``sft``), text columns are '' where empty, booleans ``True``/``False``; column kinds
come from the registry.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from prefsweep.eval import measures
from prefsweep.eval.inputs import InputError

#: ``win_rates.csv`` and ``evolution.csv``.
WIN_RATE_COLUMNS = measures.columns(measures.WIN_RATES)
#: ``win_rates_groups.csv`` and ``evolution_groups.csv``.
GROUP_COLUMNS = measures.columns(measures.GROUPS)
#: ``arm_differences.csv`` and ``evolution_differences.csv``.
DIFF_COLUMNS = measures.columns(measures.DIFFERENCES)


def typed_table(df: pd.DataFrame, columns: Sequence[str]) -> pd.DataFrame:
    """``df`` with exactly ``columns``, integer columns as nullable ``Int64`` and boolean columns
    as ``bool`` (how every table is written)."""
    df = df.reindex(columns=list(columns))
    ints, bools = measures.columns_of_kind("int"), measures.columns_of_kind("bool")
    for c in df.columns:
        if c in ints:
            df[c] = pd.array(df[c].tolist(), dtype="Int64")
    for c in df.columns:
        if c in bools:
            df[c] = df[c].astype(bool)
    return df


def write_table(path: str | os.PathLike, frame: pd.DataFrame, columns: Sequence[str]) -> None:
    """Write a table atomically, exactly ``columns`` in that order (a table with nothing in it is
    its header line)."""
    from prefsweep.io import atomic_write_text

    if tuple(frame.columns) != tuple(columns):
        raise ValueError(f"{path}: table columns {list(frame.columns)} differ from its schema {list(columns)}")
    atomic_write_text(path, frame.to_csv(index=False))


def read_table(path: str | os.PathLike, columns: Sequence[str]) -> pd.DataFrame:
    """Read a table written by :func:`write_table`: text columns as ``str`` ('' when empty),
    every other column numeric (NaN when empty). A missing file, a file without a header or a
    header other than ``columns`` is a :class:`InputError` naming the file."""
    path = Path(path)
    texts, bools = measures.columns_of_kind("text"), measures.columns_of_kind("bool")
    try:
        df = pd.read_csv(path, dtype={c: str for c in columns if c in texts}, keep_default_na=False,
                         na_values=[""])
    except FileNotFoundError:
        raise InputError(f"{path}: table not found (expected a CSV written by scripts/win_rates.py)") from None
    except pd.errors.EmptyDataError:
        raise InputError(f"{path}: empty file, no header (expected the columns {list(columns)})") from None
    if tuple(df.columns) != tuple(columns):
        missing = [c for c in columns if c not in df.columns]
        extra = [c for c in df.columns if c not in columns]
        raise InputError(f"{path}: columns differ from the table's schema (missing {missing}, unexpected {extra}); "
                         "rebuild it with scripts/win_rates.py")
    for c in df.columns:
        if c in texts:
            df[c] = df[c].fillna("").astype(str)
        elif c in bools:
            df[c] = df[c].astype(str).str.lower().eq("true")
        else:
            df[c] = pd.to_numeric(df[c], errors="coerce").astype(float)
    return df
