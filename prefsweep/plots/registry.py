"""The figures of the plots job, in the order it builds them: name, what it shows, caption, table.

Imports nothing heavy (no matplotlib, seaborn or scipy: 4-5 s): the Snakefile names every output
of the plots job from here on each dry-run. A figure's drawing code is imported when it is built.

Contract of a figure ``<name>``: a module ``prefsweep.plots.<name>`` with
``build(inputs: FigureInputs, opts: PlotOptions) -> PlotResult`` (the result named ``<name>``), a
row in :data:`REGISTRY` and a report caption ``workflow/report/<name>.rst``. The plots job writes
``plots/<name>.<format>`` for every format of ``plots.formats`` and ``plots/<name>.csv``, the
values it draws (:data:`prefsweep.plots.result.PLOT_COLUMNS`).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the types only: importing them would import matplotlib
    from prefsweep.plots.inputs import FigureInputs
    from prefsweep.plots.options import PlotOptions
    from prefsweep.plots.result import PlotResult


@dataclass(frozen=True)
class FigureSpec:
    """One figure: its ``name``, what it ``shows`` (one line), and whether it is drawn from the
    welfare table (``eval/welfare.csv``, the electorate judge only; built when that is given)."""

    name: str
    shows: str
    welfare: bool = False

    @property
    def caption(self) -> str:
        """The report caption's file name, under ``workflow/report/``."""
        return f"{self.name}.rst"

    def builder(self) -> Callable[[FigureInputs, PlotOptions], PlotResult]:
        """``prefsweep.plots.<name>.build`` (importing it imports matplotlib)."""
        return importlib.import_module(f"prefsweep.plots.{self.name}").build


REGISTRY: tuple[FigureSpec, ...] = (
    FigureSpec("win_rate_vs_pairs", "win rate vs training pairs, and the arm differences"),
    FigureSpec("evolution", "win rate vs training step, through the evaluated checkpoints"),
    FigureSpec("groups", "win rate (or held-out pair accuracy) per voter group"),
    FigureSpec("length", "mean answer length and the judge's position-flip rate"),
    FigureSpec("rule_comparison", "each rule's win-rate difference to the reference arm, per size"),
    FigureSpec("welfare", "welfare of all voters, of the worst-off group and of each group", welfare=True),
    FigureSpec("distortion", "distortion (best achievable over achieved welfare)", welfare=True),
)
#: Names of all figures, in build order.
NAMES = tuple(f.name for f in REGISTRY)
#: The figures of the win-rate tables (always built).
FIGURES = tuple(f.name for f in REGISTRY if not f.welfare)
#: The figures of the welfare table (built when it is given).
WELFARE_FIGURES = tuple(f.name for f in REGISTRY if f.welfare)


def figure(name: str) -> FigureSpec:
    """The figure called ``name``; ValueError naming the known ones if there is none."""
    for spec in REGISTRY:
        if spec.name == name:
            return spec
    raise ValueError(f"unknown figure {name!r}; known: {list(NAMES)}")


def plotted(welfare: bool) -> tuple[str, ...]:
    """The figures the plots job builds, in order: the welfare figures only with the welfare table."""
    return tuple(f.name for f in REGISTRY if welfare or not f.welfare)


def build(inputs: FigureInputs, opts: PlotOptions, only: Sequence[str] | None = None) -> list[PlotResult]:
    """Build the figures named in ``only`` (default: :func:`plotted` for the inputs), in registry order.

    ValueError for an unknown name, or for a welfare figure when ``inputs`` has no welfare table.
    """
    only = plotted(inputs.welfare is not None) if only is None else only
    unknown = [n for n in only if n not in NAMES]
    if unknown:
        raise ValueError(f"unknown figure(s) {unknown}; known: {list(NAMES)}")
    specs = [f for f in REGISTRY if f.name in only]
    without = [f.name for f in specs if f.welfare and inputs.welfare is None]
    if without:
        raise ValueError(f"figure(s) {without} need the welfare table (eval/welfare.csv)")
    return [spec.builder()(inputs, opts) for spec in specs]
