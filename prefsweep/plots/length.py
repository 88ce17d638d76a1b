"""Figure ``length``: mean answer length and the judge's position-flip rate vs training pairs."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from prefsweep.plots.axes import PairsAxis, with_positions
from prefsweep.plots.draw import draw_reference_lines, draw_series, panel_placeholder
from prefsweep.plots.inputs import FigureInputs
from prefsweep.plots.legends import figure_legend, series_handle
from prefsweep.plots.options import PlotOptions, new_figure, paper_style
from prefsweep.plots.result import PlotResult, placeholder_result, plotted_frame, record, series_records
from prefsweep.plots.rows import comparison, finite_rows, reference_rows, series_rows
from prefsweep.plots.seeds import aggregate_over_seeds
from prefsweep.plots.style import MATCHING_MARKERS, baseline_label, series_color, series_key, series_label


def length_and_order(win_rates: pd.DataFrame, opts: PlotOptions) -> PlotResult:
    """(a) mean answer length vs training pairs (mean over seeds, interval band);
    (b) position-flip rate of the judge per model (one dot per model, line = mean over seeds).
    SFT and baselines appear as dashed lines in both panels."""
    name = "length"
    with paper_style(opts):
        lines = series_rows(win_rates)
        if lines.empty:
            return placeholder_result(name, opts, "Answer length and position flips",
                                      "No DPO or zero-point rows in eval/win_rates.csv: nothing to draw.", [])
        refs = reference_rows(win_rates)
        _, baseline = comparison(win_rates)
        axis = PairsAxis.for_values(lines["n_pairs"])
        # Side by side; stacked in a one-column figure.
        fig = new_figure(opts, 3.9 if opts.narrow else 2.45)
        ax_len, ax_flip = fig.subplots(2, 1) if opts.narrow else fig.subplots(1, 2)
        records: list[dict] = []
        handles: dict[str, Any] = {}
        # (a) length: mean_words, the win-rate step's whitespace word count.
        missing: list[str] = []
        ln = finite_rows(lines, "mean_words", "length", missing)
        if ln.empty:
            panel_placeholder(ax_len, "No answer lengths (mean_words) in eval/win_rates.csv.")
        else:
            agg = with_positions(aggregate_over_seeds(ln, ["arm", "matching", "size"], "mean_words", opts.ci,
                                                      x="n_pairs", fallback=None, bounds=(0, math.inf)), axis)
            draw_series(ax_len, agg, axis)
            records += series_records(agg, "a")
            for h in draw_reference_lines(ax_len, refs, "mean_words", "a", records, fmt="{:.0f}"):
                handles.setdefault(h.get_label().rsplit(" (", 1)[0], h)
            # The answers every model is compared with (reference answers or the baseline model).
            blen = win_rates["baseline_mean_words"].dropna().unique()
            if len(blen) == 1:
                label = f"{baseline_label(baseline)} (baseline)"
                style = dict(color="0.35", linestyle=(0, (1, 1.2)), linewidth=1.0)
                ax_len.axhline(float(blen[0]), zorder=1, gid="hline:baseline-answers", **style)
                handles.setdefault(label, Line2D([], [], label=label, **style))
                records.append(record("a", "hline", label, y=float(blen[0]), n_models=1))
            axis.apply(ax_len)
            ax_len.set_ylabel("mean answer length (words)")
        ax_len.set_title("a   answer length")
        # (b) position flips.
        fl = finite_rows(lines, "flip_rate", "flip rate", missing)
        if fl.empty:
            panel_placeholder(ax_flip, "No flip_rate in eval/win_rates.csv\n(the judge is not asked "
                                        "both orders).")
        else:
            fl = fl[~((fl["size"] == 0) & fl.duplicated(["arm", "matching", "size"]))]
            agg = with_positions(aggregate_over_seeds(fl, ["arm", "matching", "size"], "flip_rate", opts.ci,
                                                      x="n_pairs", fallback=None), axis)
            draw_series(ax_flip, agg, axis, band=False)
            for (arm, matching), s in fl.groupby(["arm", "matching"]):
                xp = axis.pos(s["n_pairs"].to_numpy())
                ax_flip.scatter(xp, s["flip_rate"], s=9, color=series_color(arm, matching), alpha=0.55,
                                linewidths=0, zorder=4, marker=MATCHING_MARKERS.get(matching, "o"),
                                gid=f"models:{series_label(arm, matching)}")
                for (_, r), x_plot in zip(s.iterrows(), xp):
                    records.append(record("b", "point", r["model_id"], x=r["n_pairs"], x_plot=float(x_plot),
                                          y=r["flip_rate"], n_models=1, arm=arm, matching=matching,
                                          size=r["size"]))
            records += series_records(agg, "b")
            for h in draw_reference_lines(ax_flip, refs, "flip_rate", "b", records):
                handles.setdefault(h.get_label().rsplit(" (", 1)[0], h)
            axis.apply(ax_flip)
            ax_flip.set_ylabel("flip rate (share of questions)")
            top = max(0.1, float(np.nanmax([*fl["flip_rate"], *refs["flip_rate"].fillna(0)])) * 1.15)
            ax_flip.set_ylim(0, min(1.0, top))
        ax_flip.set_title("b   judge position flips")
        series = sorted({*zip(lines["arm"], lines["matching"])}, key=series_key)
        legend = [series_handle(a, m) for a, m in series]
        legend.append(Patch(color="0.6", alpha=0.35, label=f"{opts.ci:g}% CI over seeds"))
        for k, h in handles.items():
            h.set_label(k)
            legend.append(h)
        figure_legend(fig, legend, opts)
    return PlotResult(name, fig, plotted_frame(records), missing=missing)


def build(inputs: FigureInputs, opts: PlotOptions) -> PlotResult:
    """The figure from the prepared tables (the registry's entry point)."""
    return length_and_order(inputs.win_rates, opts)
