"""The length-controlled win rate as a per-model measure (the fit: :mod:`prefsweep.eval.length`).

The length difference of a question is the words of the model's answer minus the baseline's
(``ModelInputs.answer_lengths``); the rows are ordered by question id, as in
:func:`prefsweep.eval.measures.win_rate.summarize`, so both use the same resamples. The baseline
against itself: 0.5 by definition, interval [0.5, 0.5].
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from prefsweep.eval.inputs import InputError, ModelInputs
from prefsweep.eval.length import length_controlled_win_rate
from prefsweep.eval.measures.registry import WIN_RATES, Column, Measure, Sample, register


def lc_summary(outcomes: pd.DataFrame, model: str, baseline: str, inputs: ModelInputs, n_boot: int,
               seed: int) -> dict[str, float]:
    """The ``lc_*`` columns of one model's per-question rows against ``baseline``. A judged
    question without an answer of either model is an :class:`InputError`."""
    o = outcomes.sort_values("question_id")
    valid = o[o["outcome"] != "error"]
    diffs = []
    for qid in valid["question_id"]:
        try:
            diffs.append(inputs.answer_lengths[model][qid] - inputs.answer_lengths[baseline][qid])
        except KeyError:
            raise InputError(f"model {model} (baseline {baseline}): question {qid} has no answer in the --answers "
                             "files of both; expected every judged question answered by both") from None
    lc, lo, hi = length_controlled_win_rate(valid["score"].to_numpy(dtype=float), np.array(diffs, dtype=float),
                                            n_boot, seed)
    return {"lc_win_rate": lc, "lc_ci_low": lo, "lc_ci_high": hi}


def _compute(sample: Sample) -> dict[str, float]:
    return lc_summary(sample.outcomes, sample.model, sample.baseline, sample.inputs, sample.n_boot, sample.seed)


def _self_match(sample: Sample) -> dict[str, float]:
    return {"lc_win_rate": 0.5, "lc_ci_low": 0.5, "lc_ci_high": 0.5}


LENGTH_CONTROLLED = register(Measure("length_controlled", (WIN_RATES,), (
    Column("lc_win_rate", "float", "win rate predicted at zero answer-length difference (AlpacaEval 2's "
                                   "length-controlled win rate)"),
    Column("lc_ci_low", "float", "lower end of its 95% percentile-bootstrap interval over questions"),
    Column("lc_ci_high", "float", "upper end of that interval"),
), compute=_compute, self_match=_self_match))
