"""The registry of the eval tables' columns: each column declared once, by its measure.

A *measure* (:class:`Measure`) is a named group of columns of one or more tables
(:data:`TABLES`), each column with a kind and a one-line description (:class:`Column`). A
table's columns are :func:`columns`: the measures :data:`LAYOUT` lists for it, in that order,
then every other measure registered for it, in registration order. A column name has one kind
in every table (the kind types the table files, :mod:`prefsweep.eval.table_io`).

Contract of a measure added to a per-model table (:data:`PER_MODEL_TABLES`: ``win_rates``, also
written as ``evolution.csv``, and ``win_rates_groups``): ``compute(sample)`` returns one value
per column from one model's judged questions (:class:`Sample`; for the groups table, one voter
group's); ``self_match(sample)`` the values of the baseline judged against itself (the zero
point under ``eval.baseline: zero``, which is never judged), by default ``compute`` of the
sample whose every question is a tie. Measures without ``compute`` are key columns that the
table's builder fills; the other tables are built by their own code (:data:`LAYOUT` names
their measures) and take no further measures.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pandas as pd

if TYPE_CHECKING:
    from prefsweep.eval.inputs import ModelInputs

#: ``win_rates.csv`` and ``evolution.csv``: one row per model, judge and line.
WIN_RATES = "win_rates"
#: ``win_rates_groups.csv`` and ``evolution_groups.csv``: one row per model, judge, line and voter group.
GROUPS = "win_rates_groups"
#: ``arm_differences.csv`` and ``evolution_differences.csv``: arm minus reference arm.
DIFFERENCES = "arm_differences"
#: ``pair_accuracy.csv``: held-out preference accuracy, one row per model.
PAIR_ACCURACY = "pair_accuracy"
#: ``pair_accuracy_groups.csv``: the same per voter group.
PAIR_ACCURACY_GROUPS = "pair_accuracy_groups"
#: ``welfare.csv`` (electorate judge): welfare and distortion of every model of the win-rate table.
WELFARE = "welfare"
TABLES = (WIN_RATES, GROUPS, DIFFERENCES, PAIR_ACCURACY, PAIR_ACCURACY_GROUPS, WELFARE)
#: Tables whose rows are computed measure by measure (:func:`values`): the ones a new measure joins.
PER_MODEL_TABLES = (WIN_RATES, GROUPS)
#: Column kinds: ``text`` ('' when empty), ``int`` (nullable), ``float``, ``bool``.
KINDS = ("text", "int", "float", "bool")

#: The built-in measures of every table, in column order (the CSV files' column order).
LAYOUT: dict[str, tuple[str, ...]] = {
    WIN_RATES: ("model", "judge", "win_rate", "length_controlled", "answer_words", "well_formed"),
    GROUPS: ("model", "judge", "group", "win_rate"),
    DIFFERENCES: ("arm_pair", "arm_difference"),
    PAIR_ACCURACY: ("pair_accuracy", "model_cell"),
    PAIR_ACCURACY_GROUPS: ("group_pair_accuracy", "model_cell"),
    WELFARE: ("model", "welfare"),
}


@dataclass(frozen=True)
class Column:
    """One column: its name, :data:`KINDS` kind, a one-line description, and whether the win-rate
    job logs it to wandb as a summary value of the model (``logged``)."""

    name: str
    kind: str
    description: str
    logged: bool = False


@dataclass(frozen=True)
class Sample:
    """What a per-model measure computes from: one model's judged questions against its baseline.

    ``outcomes``: the model's per-question rows of one judge (and voter group), as
    :func:`prefsweep.eval.judgments.judgment_frames` makes them (question_id, outcome, score,
    flip, ...); ``inputs``: the models' answers and metadata; ``n_boot``, ``seed``: the bootstrap
    (config ``eval.bootstrap``); ``questions``: the question ids every model of the judge is
    judged on.
    """

    outcomes: pd.DataFrame
    model: str
    baseline: str
    inputs: ModelInputs
    n_boot: int
    seed: int
    questions: tuple[str, ...]


Values = Mapping[str, Any]


@dataclass(frozen=True)
class Measure:
    """A named group of columns of ``tables``; ``compute`` and ``self_match`` as in the module
    docstring (``None``: key columns, or a table built by its own code)."""

    name: str
    tables: tuple[str, ...]
    columns: tuple[Column, ...]
    compute: Callable[[Sample], Values] | None = None
    self_match: Callable[[Sample], Values] | None = None

    @property
    def names(self) -> tuple[str, ...]:
        """The column names, in order."""
        return tuple(c.name for c in self.columns)


_REGISTRY: dict[str, Measure] = {}


def _check(measure: Measure) -> None:
    """Raise ``ValueError`` naming the measure when it breaks the module's contract."""
    where = f"measure {measure.name!r}"
    if measure.name in _REGISTRY:
        raise ValueError(f"{where}: already registered")
    if not measure.tables or set(measure.tables) - set(TABLES):
        raise ValueError(f"{where}: tables {list(measure.tables)}; expected some of {list(TABLES)}")
    if not measure.columns:
        raise ValueError(f"{where}: declares no columns")
    for c in measure.columns:
        if c.kind not in KINDS:
            raise ValueError(f"{where}: column {c.name!r} has kind {c.kind!r}; expected one of {list(KINDS)}")
        if not c.description.strip() or "\n" in c.description:
            raise ValueError(f"{where}: column {c.name!r} needs a one-line description")
        other = _kinds().get(c.name)
        if other is not None and other != c.kind:
            raise ValueError(f"{where}: column {c.name!r} is {c.kind}, but {other} in another measure; "
                             "a column name has one kind in every table")
    for table in measure.tables:
        taken = {n for m in _REGISTRY.values() if table in m.tables for n in m.names}
        clash = sorted(taken & set(measure.names)) or sorted(n for n in set(measure.names)
                                                               if measure.names.count(n) > 1)
        if clash:
            raise ValueError(f"{where}: columns {clash} already in table {table!r}")
        built_in = measure.name in LAYOUT[table]
        if not built_in and (table not in PER_MODEL_TABLES or measure.compute is None):
            raise ValueError(f"{where}: table {table!r} takes only measures with compute(), in "
                             f"{list(PER_MODEL_TABLES)}; its other columns are declared by {list(LAYOUT[table])}")


def register(measure: Measure) -> Measure:
    """Add ``measure`` to the registry (``ValueError`` when it breaks the contract); returns it."""
    _check(measure)
    _REGISTRY[measure.name] = measure
    return measure


def unregister(name: str) -> None:
    """Remove measure ``name`` (tests register measures of their own and remove them)."""
    del _REGISTRY[name]


def measure(name: str) -> Measure:
    """The registered measure ``name``."""
    try:
        return _REGISTRY[name]
    except KeyError:
        raise KeyError(f"no measure {name!r}; registered: {sorted(_REGISTRY)}") from None


def measures(table: str) -> tuple[Measure, ...]:
    """The measures of ``table`` in column order (:data:`LAYOUT`, then registration order)."""
    if table not in TABLES:
        raise KeyError(f"no table {table!r}; expected one of {list(TABLES)}")
    missing = [n for n in LAYOUT[table] if n not in _REGISTRY]
    if missing:
        raise KeyError(f"table {table!r}: built-in measures {missing} are not registered "
                       "(import prefsweep.eval.measures, which registers them)")
    extra = [m for n, m in _REGISTRY.items() if table in m.tables and n not in LAYOUT[table]]
    return tuple(_REGISTRY[n] for n in LAYOUT[table]) + tuple(extra)


def columns(table: str) -> tuple[str, ...]:
    """The column names of ``table``, in the order its file has them."""
    return tuple(c.name for m in measures(table) for c in m.columns)


def descriptions(table: str) -> dict[str, str]:
    """Column name -> one-line description, in column order (figure labels, report captions)."""
    return {c.name: c.description for m in measures(table) for c in m.columns}


def caption(table: str) -> str:
    """reStructuredText list of ``table``'s columns and their descriptions (a report caption's body)."""
    return "\n".join(f"* ``{name}``: {text}" for name, text in descriptions(table).items())


def logged_columns(table: str) -> tuple[str, ...]:
    """The columns of ``table`` logged to wandb as summary values of each model, in column order."""
    return tuple(c.name for m in measures(table) for c in m.columns if c.logged)


def _kinds() -> dict[str, str]:
    return {c.name: c.kind for m in _REGISTRY.values() for c in m.columns}


def columns_of_kind(kind: str) -> frozenset[str]:
    """Every registered column name of ``kind`` (:data:`KINDS`), over all tables."""
    if kind not in KINDS:
        raise KeyError(f"no column kind {kind!r}; expected one of {list(KINDS)}")
    return frozenset(n for n, k in _kinds().items() if k == kind)


def _checked(m: Measure, out: Values) -> Values:
    if set(out) != set(m.names):
        raise ValueError(f"measure {m.name!r} returned {sorted(out)}; expected its columns {list(m.names)}")
    return out


def values(table: str, sample: Sample) -> dict[str, Any]:
    """Every computed measure of per-model ``table`` on ``sample``: column -> value."""
    out: dict[str, Any] = {}
    for m in measures(table):
        if m.compute is not None:
            out.update(_checked(m, m.compute(sample)))
    return out


def all_ties(questions: tuple[str, ...]) -> pd.DataFrame:
    """Per-question rows of a model judged against itself: every question a tie, no flips."""
    n = len(questions)
    return pd.DataFrame({"question_id": list(questions), "outcome": ["tie"] * n, "score": [0.5] * n,
                         "flip": [False] * n})


def self_match_values(table: str, sample: Sample) -> dict[str, Any]:
    """Every computed measure of ``table`` for the baseline against itself (``sample.model`` is
    the baseline; ``sample.outcomes`` is ignored)."""
    tie = dataclasses.replace(sample, outcomes=all_ties(sample.questions))
    out: dict[str, Any] = {}
    for m in measures(table):
        if m.compute is not None:
            out.update(_checked(m, (m.self_match or m.compute)(tie)))
    return out
