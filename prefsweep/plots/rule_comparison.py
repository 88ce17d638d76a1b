"""Figure ``rule_comparison``: the rules side by side at each series size N (a panel per N).

Each rule arm's win-rate difference to the reference arm (``eval/arm_differences.csv``) with the
table's CI, one marker per matching (and init).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.lines import Line2D

from prefsweep.plots.inputs import FigureInputs
from prefsweep.plots.legends import figure_legend
from prefsweep.plots.options import PlotOptions, new_figure, paper_style
from prefsweep.plots.result import PlotResult, placeholder_result, plotted_frame, record
from prefsweep.plots.rows import init_lines, split_arm
from prefsweep.plots.style import MATCHING_MARKERS, MATCHINGS_ORDER, TIE_COLOR, series_color, series_key


def rule_comparison(diffs: pd.DataFrame | None, opts: PlotOptions, reference_arm: str) -> PlotResult:
    """The rules side by side, a panel per series size N > 0.

    x = the non-reference arms (rules, in :data:`RULE_ORDER`), y = ``diff`` (the arm's win rate
    minus the reference arm's, paired over questions and seeds, ``eval/arm_differences.csv``)
    with the table's ``ci_low``/``ci_high`` as error bars; one marker per matching (and init),
    side by side around each rule's position; 0 = no difference.
    """
    name = "rule_comparison"
    with paper_style(opts):
        d = diffs[np.isfinite(diffs["diff"].to_numpy(dtype=float))] if diffs is not None and len(diffs) else None
        if d is None or d.empty:
            return placeholder_result(name, opts, "Rules vs the reference arm",
                                      "No rows in eval/arm_differences.csv: no rule to compare.", [])
        d = init_lines(d)
        refs = sorted(set(d["ref_arm"]) - {""})
        reference_arm = refs[0] if len(refs) == 1 else reference_arm
        rules = sorted({split_arm(a)[0] for a in d["arm"]}, key=lambda a: series_key((a, "prompt")))
        variants = sorted({(split_arm(a)[1], m) for a, m in zip(d["arm"], d["matching"])},
                          key=lambda v: (v[0], MATCHINGS_ORDER.index(v[1]) if v[1] in MATCHINGS_ORDER else 9))
        sizes = sorted(int(x) for x in set(d["size"]))
        fig = new_figure(opts, 2.4)
        axes = fig.subplots(1, len(sizes), squeeze=False, sharey=True)[0]
        width = 0.7 / max(len(variants), 1)
        records, handles = [], {}
        for ax, size in zip(axes, sizes):
            ax.axhline(0.0, color=TIE_COLOR, linewidth=0.7, zorder=1, gid="zero-difference")
            for j, (init, matching) in enumerate(variants):
                for i, rule in enumerate(rules):
                    arm = f"{rule}|{init}" if init else rule
                    row = d[(d["arm"] == arm) & (d["matching"] == matching) & (d["size"] == size)]
                    if row.empty:
                        continue
                    r = row.iloc[0]
                    x = i + (j - (len(variants) - 1) / 2) * width
                    color = series_color(rule, matching)
                    lo, hi = float(r["ci_low"]), float(r["ci_high"])
                    yerr = [[max(0.0, r["diff"] - lo)], [max(0.0, hi - r["diff"])]] if np.isfinite(lo) and np.isfinite(hi) else None
                    style = dict(color=color, marker=MATCHING_MARKERS.get(matching, "o"), markersize=4,
                                 mfc=color if not init or j % 2 == 0 else "white")
                    ax.errorbar([x], [r["diff"]], yerr=yerr, linestyle="none", capsize=2, elinewidth=0.8,
                                capthick=0.8, zorder=3, gid=f"rule:{rule}:{matching}:{init}", **style)
                    label = f"{matching}-matched" + (f", from {init}" if init else "")
                    handles.setdefault(label, Line2D([], [], linestyle="none", label=label,
                                                     **{**style, "color": "0.3", "mfc": "0.3" if style["mfc"] != "white" else "white"}))
                    n_seeds = r["n_seeds"]
                    records.append(record(f"N={size}", "point", label, x=float(i), x_plot=x, y=float(r["diff"]),
                                          y_low=lo, y_high=hi, n_models=int(n_seeds) if np.isfinite(n_seeds) else 0,
                                          interval="table CI", arm=arm, matching=matching, size=size))
            ax.set_xticks(range(len(rules)))
            ax.set_xticklabels(rules, rotation=30, ha="right")
            ax.set_xlim(-0.6, len(rules) - 0.4)
            ax.set_title(f"N = {size}")
        axes[0].set_ylabel(f"win-rate difference vs {reference_arm}")
        legend = list(handles.values())
        legend.append(Line2D([], [], color=TIE_COLOR, linewidth=0.7, label=f"no difference to {reference_arm}"))
        figure_legend(fig, legend, opts)
    return PlotResult(name, fig, plotted_frame(records), notes=[f"reference_arm={reference_arm}"])


def build(inputs: FigureInputs, opts: PlotOptions) -> PlotResult:
    """The figure from the prepared tables (the registry's entry point): the differences of the
    win rates' judge only."""
    diffs = inputs.diffs
    if diffs is not None and len(diffs):
        diffs = diffs[diffs["judge"] == inputs.judge]
    return rule_comparison(diffs, opts, inputs.reference_arm)
