"""Per-model measures: every column of the eval tables, declared once with its description.

The registry and its contract: :mod:`prefsweep.eval.measures.registry`. Importing this package
registers the built-in measures (one module each); the tables, the scripts, the plots and the
report captions ask it for columns and descriptions (:func:`columns`, :func:`descriptions`,
:func:`caption`). To add a measure to the win-rate tables, write a module here that calls
:func:`register` with a ``compute``: every module of this package is imported (docs/extending.md).
"""

from __future__ import annotations

# The built-in measures register themselves on import; the column order is LAYOUT's, not this one's.
from prefsweep.eval.measures import (
    answers, arm_difference, keys, length_controlled, pair_accuracy, welfare, win_rate,
)
from prefsweep.eval.measures.registry import (
    DIFFERENCES, GROUPS, KINDS, LAYOUT, PAIR_ACCURACY, PAIR_ACCURACY_GROUPS, PER_MODEL_TABLES, TABLES, WELFARE,
    WIN_RATES, Column, Measure, Sample, caption, columns, columns_of_kind, descriptions, logged_columns, measure,
    measures, register, self_match_values, unregister, values,
)
from prefsweep.plugins import import_all

# Any other module of this package registers its measure too (a new measure is one module here).
import_all(__name__, __path__, skip=("registry",))

__all__ = [
    "answers", "arm_difference", "keys", "length_controlled", "pair_accuracy", "welfare", "win_rate",
    "DIFFERENCES", "GROUPS", "KINDS", "LAYOUT", "PAIR_ACCURACY", "PAIR_ACCURACY_GROUPS", "PER_MODEL_TABLES",
    "TABLES", "WELFARE", "WIN_RATES", "Column", "Measure", "Sample", "caption", "columns", "columns_of_kind",
    "descriptions", "logged_columns", "measure", "measures", "register", "self_match_values", "unregister", "values",
]
