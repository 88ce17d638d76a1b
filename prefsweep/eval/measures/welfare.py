"""The columns of the welfare table (the computation: :mod:`prefsweep.eval.welfare`).

One row per model of the win-rate table, line and measure (``utilitarian``, ``egalitarian``,
``group`` per voter group, ``distortion``), after the model's key columns.
"""

from __future__ import annotations

from prefsweep.eval.measures.registry import WELFARE, Column, Measure, register

WELFARE_MEASURE = register(Measure("welfare", (WELFARE,), (
    Column("measure", "text", "utilitarian, egalitarian, group or distortion"),
    Column("group", "text", "the voter group of a group row; empty otherwise"),
    Column("n_questions", "int", "eval questions measured"),
    Column("value", "float", "the welfare (mean utility of the answers) or the distortion (>= 1)"),
    Column("ci_low", "float", "lower end of the 95% percentile-bootstrap interval over questions"),
    Column("ci_high", "float", "upper end of that interval"),
    Column("vs_zero", "float", "value minus the zero point's (the model's DPO init model)"),
    Column("vs_zero_ci_low", "float", "lower end of the paired bootstrap interval of vs_zero"),
    Column("vs_zero_ci_high", "float", "upper end of that interval"),
)))
