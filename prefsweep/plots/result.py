"""What a figure builder returns: the figure, the table of exactly the values it draws, and why
it is a placeholder (a figure that says why there is nothing to draw, instead of an exception)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
from matplotlib.figure import Figure

from prefsweep.plots.options import PlotOptions, new_figure
from prefsweep.plots.style import series_label


#: Columns of every plotted-values table (one row per drawn point, bar or horizontal line).
#: panel: which axes; element: line|hline|bar|point|final; label: legend text of the element;
#: x: the value (training pairs, nominal size or step; 0 for the zero point); x_plot: where it
#: sits on the axis (the zero point's stand-in position on a broken log axis); y, y_low, y_high:
#: the value and its drawn interval; n_models: models averaged; interval: how y_low/y_high
#: were obtained ("t<ci> over seeds", "model CI", "table CI" or "").
PLOT_COLUMNS = (
    "panel", "element", "label", "arm", "matching", "size", "group", "step", "x", "x_plot",
    "y", "y_low", "y_high", "n_models", "interval",
)


@dataclass
class PlotResult:
    """A built figure, the table of what it draws, and why it is a placeholder (or None)."""

    name: str
    figure: Figure
    data: pd.DataFrame
    placeholder: str | None = None
    notes: list[str] = field(default_factory=list)
    #: What the figure leaves out and why (e.g. models without a valid verdict).
    missing: list[str] = field(default_factory=list)


def record(panel: str, element: str, label: str, *, y: float, x: float = math.nan,
           x_plot: float = math.nan, y_low: float = math.nan, y_high: float = math.nan,
           n_models: int = 0, interval: str = "", model: pd.Series | None = None,
           **extra: Any) -> dict[str, Any]:
    """One row of a plotted-values table (:data:`PLOT_COLUMNS`; unset numbers NaN, texts ''):
    ``model`` fills arm, matching and size from a table row, ``extra`` any other column."""
    rec = dict.fromkeys(PLOT_COLUMNS, math.nan)
    rec.update(panel=panel, element=element, label=label, x=x, x_plot=x_plot, y=y, y_low=y_low,
               y_high=y_high, n_models=n_models, interval=interval, arm="", matching="", group="")
    if model is not None:
        rec.update(arm=model.get("arm", ""), matching=model.get("matching", ""), size=model.get("size", math.nan))
    rec.update(extra)
    return rec


def series_records(agg: pd.DataFrame, panel: str, **extra: Any) -> list[dict[str, Any]]:
    """One "line" row per aggregated point of ``agg`` (:func:`prefsweep.plots.seeds.aggregate_over_seeds`
    with ``x_plot``) in ``panel``."""
    recs = []
    for _, r in agg.iterrows():
        recs.append(record(
            panel, "line", series_label(r["arm"], r["matching"]), x=r["x"], x_plot=r["x_plot"], y=r["y"],
            y_low=r["y_low"], y_high=r["y_high"], n_models=int(r["n_models"]), interval=r["interval"],
            arm=r["arm"], matching=r["matching"], size=r["size"], **extra,
            **({"group": r["group"]} if "group" in r else {}),
        ))
    return recs


def plotted_frame(records: list[dict[str, Any]]) -> pd.DataFrame:
    """The plotted-values table of ``records``, exactly :data:`PLOT_COLUMNS`."""
    df = pd.DataFrame(records, columns=list(PLOT_COLUMNS))
    return df


def placeholder_figure(opts: PlotOptions, title: str, reason: str) -> Figure:
    """A figure that says why there is nothing to draw (keeps the workflow's outputs complete)."""
    fig = new_figure(opts, 1.6)
    ax = fig.add_subplot()
    ax.set_axis_off()
    ax.text(0.5, 0.62, title, ha="center", va="center", fontsize=9, weight="bold", transform=ax.transAxes)
    ax.text(0.5, 0.35, reason, ha="center", va="center", fontsize=8, wrap=True, transform=ax.transAxes,
            gid="placeholder")
    return fig


def placeholder_result(name: str, opts: PlotOptions, title: str, reason: str, missing: list[str]) -> PlotResult:
    """The result of a figure with nothing to draw: a placeholder figure and an empty table."""
    return PlotResult(name, placeholder_figure(opts, title, reason), plotted_frame([]), placeholder=reason,
                      missing=list(missing))
