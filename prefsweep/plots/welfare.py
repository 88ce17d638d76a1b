"""Figure ``welfare``: welfare (mean utility) vs training pairs, one line per arm x matching.

Panels: all voters (utilitarian), the worst-off group (egalitarian), one per voter group. Drawn
from ``eval/welfare.csv`` (:data:`prefsweep.eval.welfare.WELFARE_COLUMNS`; the electorate judge
only).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.patches import Patch

from prefsweep.plots.axes import PairsAxis, with_positions
from prefsweep.plots.draw import draw_series, draw_welfare_references
from prefsweep.plots.inputs import FigureInputs
from prefsweep.plots.legends import figure_legend, series_handle
from prefsweep.plots.options import PlotOptions, new_figure, paper_style
from prefsweep.plots.result import PlotResult, placeholder_result, plotted_frame, series_records
from prefsweep.plots.rows import welfare_lines
from prefsweep.plots.seeds import aggregate_over_seeds
from prefsweep.plots.style import series_key


def welfare_vs_pairs(welfare: pd.DataFrame, opts: PlotOptions) -> PlotResult:
    """Welfare vs actual training pairs per arm x matching, mean over seeds with the
    interval band (a single model: its bootstrap interval over questions): (a) all voters
    (utilitarian), (b) the worst-off group (egalitarian), then one panel per voter group. The
    panels share the y axis (mean utility)."""
    name = "welfare"
    missing: list[str] = []
    with paper_style(opts):
        groups = list(dict.fromkeys(welfare.loc[welfare["measure"] == "group", "group"])) if len(welfare) else []
        panels = [("utilitarian", "", "all voters (utilitarian)"), ("egalitarian", "", "worst-off group (egalitarian)")]
        panels += [("group", g, f"group {g}") for g in groups]
        data = {p: welfare_lines(welfare, p[0], p[1], missing, "eval/welfare.csv") for p in panels}
        if all(d.empty for d in data.values()):
            return placeholder_result(name, opts, "Welfare vs training pairs",
                                      "No DPO or zero-point rows with a welfare value in eval/welfare.csv: "
                                      "nothing to draw.", missing)
        aggs = {p: aggregate_over_seeds(d, ["arm", "matching", "size"], "value", opts.ci, x="n_pairs", bounds=None)
                for p, d in data.items()}
        axis = PairsAxis.for_values(pd.concat([a["x"] for a in aggs.values()]))
        ncols = min(2 if opts.narrow else 3, len(panels))
        nrows = math.ceil(len(panels) / ncols)
        fig = new_figure(opts, 0.5 + 1.75 * nrows)
        axes = fig.subplots(nrows, ncols, squeeze=False, sharey=True)
        records: list[dict] = []
        handles: dict[str, Any] = {}
        all_y: list[float] = []
        for i, (p, label) in enumerate(zip(panels, [t for _, _, t in panels])):
            ax = axes.flat[i]
            letter = "abcdefghijklmnopqrstuvwxyz"[i]
            panel = f"{letter}:{p[0]}" + (f":{p[1]}" if p[1] else "")
            agg = with_positions(aggs[p], axis)
            draw_series(ax, agg, axis, gid_prefix=f"welfare:{p[0]}:{p[1]}")
            records += [{**r, "group": p[1]} for r in series_records(agg, panel)]
            for h in draw_welfare_references(ax, welfare, p[0], p[1], panel, records):
                handles.setdefault(h.get_label(), h)
            all_y += [*agg["y"], *agg["y_low"], *agg["y_high"]]
            axis.apply(ax, label="training pairs (log scale)" if i + ncols >= len(panels) else "")
            ax.set_title(f"{letter}   {label}")
            if i % ncols == 0:
                ax.set_ylabel("welfare (mean utility)")
        for ax in axes.flat[len(panels):]:
            ax.set_axis_off()
        finite = [y for y in all_y if np.isfinite(y)]
        if finite:
            lo, hi = min(finite), max(finite)
            pad = max(0.05, 0.08 * (hi - lo))
            axes.flat[0].set_ylim(lo - pad, hi + pad)
        series = sorted({*zip(pd.concat(list(aggs.values()))["arm"], pd.concat(list(aggs.values()))["matching"])},
                        key=series_key)
        legend = [series_handle(a, m) for a, m in series]
        legend.append(Patch(color="0.6", alpha=0.35, label=f"{opts.ci:g}% CI over seeds"))
        legend += list(handles.values())
        figure_legend(fig, legend, opts)
    return PlotResult(name, fig, plotted_frame(records), missing=missing)


def build(inputs: FigureInputs, opts: PlotOptions) -> PlotResult:
    """The figure from the prepared tables (the registry's entry point; needs the welfare table)."""
    return welfare_vs_pairs(inputs.welfare, opts)
