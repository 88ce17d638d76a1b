"""Figure ``distortion``: distortion (best achievable welfare over the model's, >= 1) vs training pairs.

Drawn from ``eval/welfare.csv`` (the electorate judge only).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from prefsweep.plots.axes import PairsAxis, with_positions
from prefsweep.plots.draw import draw_series, draw_welfare_references
from prefsweep.plots.inputs import FigureInputs
from prefsweep.plots.legends import figure_legend, series_handle
from prefsweep.plots.options import PlotOptions, new_figure, paper_style
from prefsweep.plots.result import PlotResult, placeholder_result, plotted_frame, record, series_records
from prefsweep.plots.rows import welfare_lines
from prefsweep.plots.seeds import aggregate_over_seeds
from prefsweep.plots.style import TIE_COLOR, series_key


def distortion_vs_pairs(welfare: pd.DataFrame, opts: PlotOptions) -> PlotResult:
    """Distortion (best achievable welfare over the model's, summed over questions;
    1 = the best achievable answer everywhere) vs actual training pairs per arm x matching, mean
    over seeds with the interval band. Infinite distortions (every answer at the bottom of every
    voter's scale) are left out and named."""
    name = "distortion"
    missing: list[str] = []
    with paper_style(opts):
        lines = welfare_lines(welfare, "distortion", "", missing, "eval/welfare.csv") if len(welfare) else welfare
        if lines.empty:
            return placeholder_result(name, opts, "Distortion vs training pairs",
                                      "No DPO or zero-point rows with a finite distortion in eval/welfare.csv: "
                                      "nothing to draw.", missing)
        agg = aggregate_over_seeds(lines, ["arm", "matching", "size"], "value", opts.ci, x="n_pairs",
                                   bounds=(1.0, math.inf))
        axis = PairsAxis.for_values(agg["x"])
        agg = with_positions(agg, axis)
        fig = new_figure(opts, 2.55)
        ax = fig.subplots()
        records = series_records(agg, "a")
        ax.axhline(1.0, color=TIE_COLOR, linewidth=0.7, zorder=1, gid="optimum")
        records.append(record("a", "hline", "best achievable (1)", y=1.0))
        draw_series(ax, agg, axis)
        ref_handles = draw_welfare_references(ax, welfare, "distortion", "", "a", records)
        axis.apply(ax)
        ax.set_ylabel("distortion (best / achieved welfare)")
        finite = [y for y in [*agg["y"], *agg["y_low"], *agg["y_high"], 1.0] if np.isfinite(y)]
        ax.set_ylim(0.98, max(finite) + max(0.05, 0.08 * (max(finite) - 1.0)))
        legend = [series_handle(a, m) for a, m in sorted({*zip(agg["arm"], agg["matching"])}, key=series_key)]
        legend.append(Patch(color="0.6", alpha=0.35, label=f"{opts.ci:g}% CI over seeds"))
        legend += ref_handles
        legend.append(Line2D([], [], color=TIE_COLOR, linewidth=0.7, label="best achievable (1)"))
        figure_legend(fig, legend, opts)
    return PlotResult(name, fig, plotted_frame(records), missing=missing)


def build(inputs: FigureInputs, opts: PlotOptions) -> PlotResult:
    """The figure from the prepared tables (the registry's entry point; needs the welfare table)."""
    return distortion_vs_pairs(inputs.welfare, opts)
