"""The tables every figure builder reads, prepared once for all figures.

The tables are those :mod:`prefsweep.eval.tables` writes, read with
:func:`prefsweep.eval.table_io.read_table` against their column tuples (a file with other columns
is an error): ``eval/win_rates.csv`` (:data:`~prefsweep.eval.table_io.WIN_RATE_COLUMNS`),
``eval/win_rates_groups.csv`` (:data:`~prefsweep.eval.table_io.GROUP_COLUMNS`),
``eval/arm_differences.csv`` (:data:`~prefsweep.eval.table_io.DIFF_COLUMNS`) and, when given,
``eval/evolution.csv`` (the win-rate columns; checkpoints are evaluated), ``eval/welfare.csv``
(:data:`prefsweep.eval.welfare.WELFARE_COLUMNS`; the electorate judge) and
``eval/pair_accuracy_groups.csv`` (:data:`prefsweep.eval.pair_accuracy.GROUP_TABLE_COLUMNS`).
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from prefsweep.plots.rows import comparison, init_lines


@dataclass(frozen=True)
class FigureInputs:
    """The input tables as the figures read them; build with :meth:`prepare`.

    ``win_rates``, ``groups``, ``evolution`` and ``welfare`` have their lines split per init
    (:func:`~prefsweep.plots.rows.init_lines`); ``diffs`` and ``accuracy_groups`` are as read.
    ``judge`` and ``baseline`` are the one comparison every win rate is measured with
    (:func:`~prefsweep.plots.rows.comparison`; '' for an empty table).
    """

    win_rates: pd.DataFrame
    groups: pd.DataFrame
    diffs: pd.DataFrame | None
    evolution: pd.DataFrame | None
    welfare: pd.DataFrame | None
    accuracy_groups: pd.DataFrame | None
    reference_arm: str
    judge: str
    baseline: str

    @classmethod
    def prepare(
        cls,
        win_rates: pd.DataFrame,
        groups: pd.DataFrame,
        diffs: pd.DataFrame | None,
        reference_arm: str,
        *,
        evolution: pd.DataFrame | None = None,
        welfare: pd.DataFrame | None = None,
        accuracy_groups: pd.DataFrame | None = None,
    ) -> "FigureInputs":
        """Inputs from the tables as read; ValueError if ``win_rates`` mixes judges or baselines."""
        judge, baseline = comparison(win_rates) if len(win_rates) else ("", "")
        return cls(
            win_rates=init_lines(win_rates), groups=init_lines(groups), diffs=diffs,
            evolution=init_lines(evolution), welfare=init_lines(welfare), accuracy_groups=accuracy_groups,
            reference_arm=reference_arm, judge=judge, baseline=baseline,
        )
