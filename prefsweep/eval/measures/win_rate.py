"""The win-rate statistics of one model against its baseline: counts, win rate, CI, flip rate.

``win_rate = (wins + ties / 2) / n``, ``n = wins + ties + losses`` (FastChat's
``win_rate_adjusted``); a malformed verdict is an error, left out of ``n``; its CI is the
percentile bootstrap over questions (:mod:`prefsweep.eval.bootstrap`); ``flip_rate`` = flips / n.
The baseline against itself: all ties, win rate 0.5 by definition.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from prefsweep.eval.bootstrap import bootstrap_ci
from prefsweep.eval.measures.registry import GROUPS, WIN_RATES, Column, Measure, Sample, register


def summarize(outcomes: pd.DataFrame, n_boot: int, seed: int) -> dict[str, Any]:
    """Counts, win rate, bootstrap CI and flip rate of per-question rows of one model.

    Rows are ordered by question id before resampling, so the CI does not depend on file order.
    """
    o = outcomes.sort_values("question_id")
    valid = o[o["outcome"] != "error"]
    n = len(valid)
    wins, ties, losses = (int((valid["outcome"] == k).sum()) for k in ("win", "tie", "loss"))
    scores = valid["score"].to_numpy(dtype=float)
    lo, hi = bootstrap_ci(scores, n_boot, seed)
    return {
        "wins": wins, "ties": ties, "losses": losses, "errors": int(len(o) - n), "n": n,
        "win_rate": float(scores.mean()) if n else float("nan"), "ci_low": lo, "ci_high": hi,
        "flip_rate": float(valid["flip"].mean()) if n else float("nan"),
    }


def self_match(n: int) -> dict[str, Any]:
    """Statistics of the baseline against itself: all ties, win rate 0.5 by definition."""
    return {"wins": 0, "ties": n, "losses": 0, "errors": 0, "n": n, "win_rate": 0.5,
            "ci_low": 0.5, "ci_high": 0.5, "flip_rate": 0.0}


def _compute(sample: Sample) -> dict[str, Any]:
    return summarize(sample.outcomes, sample.n_boot, sample.seed)


def _self_match(sample: Sample) -> dict[str, Any]:
    return self_match(len(sample.questions))


WIN_RATE = register(Measure("win_rate", (WIN_RATES, GROUPS), (
    Column("wins", "int", "questions the model wins in both answer orders", logged=True),
    Column("ties", "int", "questions tied, or whose verdict flips with the answer order", logged=True),
    Column("losses", "int", "questions the model loses in both answer orders", logged=True),
    Column("errors", "int", "questions with a malformed verdict in either order, left out of n", logged=True),
    Column("n", "int", "wins + ties + losses", logged=True),
    Column("win_rate", "float", "(wins + ties / 2) / n", logged=True),
    Column("ci_low", "float", "lower end of the 95% percentile-bootstrap interval of win_rate over questions",
           logged=True),
    Column("ci_high", "float", "upper end of that interval", logged=True),
    Column("flip_rate", "float", "share of the n questions whose verdict changes with the answer order",
           logged=True),
), compute=_compute, self_match=_self_match))

#: The statistics' columns, in order.
STAT_COLUMNS = WIN_RATE.names
