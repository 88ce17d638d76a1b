"""Figure ``groups``: win rate per voter group at the largest size, and per group vs training pairs.

Without per-group verdicts (an LLM judge) it shows each group's held-out pair accuracy instead
(``eval/pair_accuracy_groups.csv``).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from prefsweep.plots.axes import PairsAxis, with_positions
from prefsweep.plots.draw import draw_series, tie_line, win_rate_ylim
from prefsweep.plots.inputs import FigureInputs
from prefsweep.plots.legends import figure_legend, series_handle, tie_handle
from prefsweep.plots.options import PlotOptions, new_figure, paper_style
from prefsweep.plots.result import PlotResult, placeholder_result, plotted_frame, record, series_records
from prefsweep.plots.rows import finite_rows, series_rows
from prefsweep.plots.seeds import aggregate_over_seeds
from prefsweep.plots.style import TIE_COLOR, baseline_label, series_color, series_key, series_label


def accuracy_as_groups(accuracy_groups: pd.DataFrame, win_rates: pd.DataFrame) -> pd.DataFrame:
    """Per-group held-out pair accuracy (``eval/pair_accuracy_groups.csv``,
    :data:`prefsweep.eval.pair_accuracy.GROUP_TABLE_COLUMNS`) in the shape :func:`voter_groups` reads:
    ``win_rate`` = the accuracy, the model's cell and training pairs from ``win_rates``."""
    cell = win_rates[["model_id", "kind", "arm", "matching", "size", "seed", "n_pairs"]].drop_duplicates("model_id")
    acc = accuracy_groups[["model_id", "group", "accuracy"]].rename(columns={"accuracy": "win_rate"})
    return acc.merge(cell, on="model_id", how="inner")


def voter_groups(groups: pd.DataFrame, opts: PlotOptions, baseline: str,
                 accuracy_groups: pd.DataFrame | None = None, win_rates: pd.DataFrame | None = None) -> PlotResult:
    """(a) win rate per voter group and series at the largest size N (bars: mean over
    seeds, error bars: interval); (b) one panel per group, win rate vs training pairs.

    When the judge gives no per-group verdicts (an LLM judge) and ``accuracy_groups`` has rows,
    the figure shows each group's held-out pair accuracy instead (how often a model ranks first
    what the group's own majority prefers; :mod:`prefsweep.eval.pair_accuracy`), 0.5 being chance."""
    name = "groups"
    missing: list[str] = []
    notes: list[str] = []
    ylabel = f"win rate vs {baseline_label(baseline)}" if baseline else "win rate"
    tie = tie_handle(baseline)
    with paper_style(opts):
        g = finite_rows(series_rows(groups), "win_rate", "eval/win_rates_groups.csv", missing)
        if g.empty and accuracy_groups is not None and win_rates is not None and len(accuracy_groups):
            g = finite_rows(series_rows(accuracy_as_groups(accuracy_groups, win_rates)), "win_rate",
                            "eval/pair_accuracy_groups.csv", missing)
            ylabel = "held-out pair accuracy"
            tie = Line2D([], [], color=TIE_COLOR, linewidth=0.7, label="chance (0.5)")
            notes.append("the judge has no voter groups: per-group held-out pair accuracy "
                         "(eval/pair_accuracy_groups.csv) instead of win rates")
        if g.empty:
            return placeholder_result(name, opts, "Win rate per voter group",
                                      "No per-group win rates (eval/win_rates_groups.csv has no rows with a win rate: "
                                      "the judge has no voter groups, or no model has a valid verdict).", missing)
        group_names = list(dict.fromkeys(g["group"]))
        series = sorted({*zip(g["arm"], g["matching"])}, key=series_key)
        n_max = g["size"].max()
        ncols = min(2 if opts.narrow else 4, len(group_names))
        nrows_b = math.ceil(len(group_names) / ncols)
        fig = new_figure(opts, 2.0 + 1.75 * nrows_b)
        gs = fig.add_gridspec(1 + nrows_b, ncols, height_ratios=[1.15] + [1.0] * nrows_b)
        ax_a = fig.add_subplot(gs[0, :])
        records: list[dict] = []
        # (a) bars at the largest size.
        top = aggregate_over_seeds(g[g["size"] == n_max], ["group", "arm", "matching"], "win_rate", opts.ci,
                                   x="n_pairs")
        width = 0.8 / len(series)
        tie_line(ax_a)
        for j, (arm, matching) in enumerate(series):
            s = top[(top["arm"] == arm) & (top["matching"] == matching)].set_index("group")
            xs, ys, lo, hi = [], [], [], []
            for i, grp in enumerate(group_names):
                if grp not in s.index:
                    continue
                r = s.loc[grp]
                xs.append(i - 0.4 + width * (j + 0.5))
                ys.append(r["y"])
                lo.append(max(0.0, r["y"] - r["y_low"]) if np.isfinite(r["y_low"]) else 0.0)
                hi.append(max(0.0, r["y_high"] - r["y"]) if np.isfinite(r["y_high"]) else 0.0)
                records.append(record("a", "bar", series_label(arm, matching), x=r["x"], x_plot=xs[-1], y=r["y"],
                                      y_low=r["y_low"], y_high=r["y_high"], n_models=int(r["n_models"]),
                                      interval=r["interval"], arm=arm, matching=matching, size=n_max, group=grp))
            ax_a.bar(xs, ys, width=width * 0.92, color=series_color(arm, matching), zorder=2,
                     gid=f"bars:{series_label(arm, matching)}")
            ax_a.errorbar(xs, ys, yerr=[lo, hi], fmt="none", color="0.2", capsize=1.5, elinewidth=0.7,
                          capthick=0.7, zorder=3)
        records.append(record("a", "hline", tie.get_label(), y=0.5))
        ax_a.set_xticks(range(len(group_names)), group_names)
        ax_a.set_xlim(-0.6, len(group_names) - 0.4)
        ax_a.set_xlabel("voter group")
        ax_a.set_ylabel(ylabel)
        ax_a.set_title(f"a   largest series size, N = {int(n_max)}")
        win_rate_ylim(ax_a, [*top["y"], *top["y_low"], *top["y_high"], 0.0])
        # (b) per group vs training pairs.
        agg = aggregate_over_seeds(g, ["group", "arm", "matching", "size"], "win_rate", opts.ci, x="n_pairs")
        axis = PairsAxis.for_values(agg["x"])
        agg = with_positions(agg, axis)
        first = None
        for i, grp in enumerate(group_names):
            ax = fig.add_subplot(gs[1 + i // ncols, i % ncols], sharey=first)
            first = first or ax
            sub = agg[agg["group"] == grp]
            tie_line(ax)
            draw_series(ax, sub, axis, gid_prefix=f"group:{grp}")
            # x label only under the lowest panel of each column.
            xlabel = "training pairs (log scale)" if ncols <= 2 else "pairs (log scale)"
            axis.apply(ax, label=xlabel if i + ncols >= len(group_names) else "")
            ax.set_title(("b   " if i == 0 else "") + grp)
            if i % ncols == 0:
                ax.set_ylabel(ylabel)
            else:
                ax.tick_params(labelleft=False)
            records += series_records(sub, f"b:{grp}")
        if first is not None:
            win_rate_ylim(first, [*agg["y"], *agg["y_low"], *agg["y_high"]])
        handles = [series_handle(a, m) for a, m in series]
        handles.append(Patch(color="0.6", alpha=0.35, label=f"{opts.ci:g}% CI over seeds"))
        handles.append(tie)
        figure_legend(fig, handles, opts)
    return PlotResult(name, fig, plotted_frame(records), notes=notes, missing=missing)


def build(inputs: FigureInputs, opts: PlotOptions) -> PlotResult:
    """The figure from the prepared tables (the registry's entry point)."""
    return voter_groups(inputs.groups, opts, inputs.baseline, inputs.accuracy_groups, inputs.win_rates)
