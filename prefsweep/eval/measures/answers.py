"""Measures of a model's answers themselves, next to its baseline's: length and well-formedness.

Both are computed once per answers file by :meth:`prefsweep.eval.inputs.ModelInputs.from_files`
(mean whitespace word count of the first turn; mean of
:func:`prefsweep.data.synthetic.well_formedness`, the synthetic world's measure, computed for any
answers) and looked up here by model id.
"""

from __future__ import annotations

from prefsweep.eval.measures.registry import WIN_RATES, Column, Measure, Sample, register


def _words(sample: Sample) -> dict[str, float]:
    return {"mean_words": sample.inputs.answer_words[sample.model],
            "baseline_mean_words": sample.inputs.answer_words[sample.baseline]}


def _well_formed(sample: Sample) -> dict[str, float]:
    return {"well_formed": sample.inputs.well_formed[sample.model],
            "baseline_well_formed": sample.inputs.well_formed[sample.baseline]}


ANSWER_WORDS = register(Measure("answer_words", (WIN_RATES,), (
    Column("mean_words", "float", "mean length of the model's answers, in words", logged=True),
    Column("baseline_mean_words", "float", "mean length of the baseline's answers, in words"),
), compute=_words))

WELL_FORMED = register(Measure("well_formed", (WIN_RATES,), (
    Column("well_formed", "float", "mean share of the words of the model's answers that are well formed "
                                   "(inventory phrases in their order, no repeats)"),
    Column("baseline_well_formed", "float", "the same for the baseline's answers"),
), compute=_well_formed))
