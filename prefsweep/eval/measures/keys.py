"""The key columns of the tables: which model, line, judge and voter group a row is about.

Filled by the tables' builders (no ``compute``): :mod:`prefsweep.eval.tables` for the win-rate
tables, :mod:`prefsweep.eval.pair_accuracy` and :mod:`prefsweep.eval.welfare` for theirs; the
model's fields come from :func:`prefsweep.paths.parse_model_id` and its input files.
"""

from __future__ import annotations

from prefsweep.eval.measures.registry import (
    GROUPS, PAIR_ACCURACY, PAIR_ACCURACY_GROUPS, WELFARE, WIN_RATES, Column, Measure, register,
)

MODEL = register(Measure("model", (WIN_RATES, GROUPS, WELFARE), (
    Column("model_id", "text", "the model's id, its answers file's stem (e.g. dpo-maj-prompt-n2000-seed1)"),
    Column("kind", "text", "base, sft, dpo, checkpoint or baseline"),
    Column("init", "text", "the model a DPO model or checkpoint was trained from (sft or base), "
                           "and the init of a zero-point row's line; empty for models off the lines"),
    Column("arm", "text", "the aggregation arm of the training pairs; empty for models off the lines"),
    Column("matching", "text", "how the series is matched to the reference arm's: shared, prompt or size"),
    Column("size", "int", "nominal series size; 0 for the zero point (the init model itself)"),
    Column("n_pairs", "int", "actual training pairs of the series (its manifest.json); 0 for the zero point"),
    Column("seed", "int", "the DPO run's seed"),
    Column("step", "int", "a checkpoint's step, or a final DPO model's global_step; empty for other models"),
    Column("zero_point", "bool", "true on the init model's row at the start of each init x arm x matching line"),
)))

JUDGE = register(Measure("judge", (WIN_RATES, GROUPS), (
    Column("baseline", "text", "the model judged against: the zero point's init model, or reference"),
    Column("judge", "text", "the judge (first entry of the judgments' judge field)"),
    Column("judge_prompt", "text", "the LLM judge's prompt or the electorate's rule (second entry of judge)"),
)))

GROUP = register(Measure("group", (GROUPS,), (
    Column("group", "text", "the voter group whose verdicts the row counts"),
)))

MODEL_CELL = register(Measure("model_cell", (PAIR_ACCURACY, PAIR_ACCURACY_GROUPS), (
    Column("kind", "text", "base, sft, dpo, checkpoint or baseline"),
    Column("arm", "text", "the aggregation arm of the training pairs; empty for models off the lines"),
    Column("matching", "text", "how the series is matched to the reference arm's: shared, prompt or size"),
    Column("size", "int", "nominal series size"),
    Column("seed", "int", "the DPO run's seed"),
)))
