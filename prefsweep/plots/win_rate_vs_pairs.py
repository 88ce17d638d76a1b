"""Figure ``win_rate_vs_pairs``: (a) win rate vs actual training pairs, (b) the arm differences.

(a) one line per arm x matching, mean over seeds with a t-interval band; the zero point at the
left end of every line on a broken log axis; base, SFT and baseline models as dashed horizontal
lines. (b) every rule arm and matching minus the reference arm (``eval/arm_differences.csv``).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from prefsweep.plots.axes import PairsAxis, with_positions
from prefsweep.plots.draw import draw_reference_lines, draw_series, lineplot, panel_placeholder, tie_line, win_rate_ylim
from prefsweep.plots.inputs import FigureInputs
from prefsweep.plots.legends import axes_legends, series_handle, tie_handle
from prefsweep.plots.options import PlotOptions, new_figure, paper_style
from prefsweep.plots.result import PlotResult, placeholder_result, plotted_frame, record, series_records
from prefsweep.plots.rows import comparison, finite_rows, init_lines, reference_rows, series_rows, split_arm
from prefsweep.plots.seeds import aggregate_over_seeds
from prefsweep.plots.style import (
    MATCHING_MARKERS,
    TIE_COLOR,
    baseline_label,
    series_color,
    series_dashes,
    series_key,
    series_label,
)


def win_rate_vs_pairs(
    win_rates: pd.DataFrame,
    diffs: pd.DataFrame | None,
    opts: PlotOptions,
    reference_arm: str,
) -> PlotResult:
    """(a) win rate vs actual training pairs; (b) arm difference vs series size.

    (a) x = mean ``n_pairs`` of a cell's models (the prompt-matched other arm at its real pair
    count), y = mean win rate over seeds with the interval band; the zero point (size 0) starts
    every line at the "0" tick; SFT and baselines as dashed lines; the tie line at 0.5.
    (b) drawn when ``diffs`` is given: ``diff`` per matching vs nominal size N, with the
    table's ``ci_low``/``ci_high`` as error bars and 0 as reference.
    """
    name = "win_rate_vs_pairs"
    missing: list[str] = []
    with paper_style(opts):
        lines = finite_rows(series_rows(win_rates), "win_rate", "eval/win_rates.csv", missing)
        if lines.empty:
            return placeholder_result(name, opts, "Win rate vs training pairs",
                                      "No DPO or zero-point rows with a win rate in eval/win_rates.csv: "
                                      "nothing to draw.", missing)
        judge, baseline = comparison(win_rates)
        agg = aggregate_over_seeds(lines, ["arm", "matching", "size"], "win_rate", opts.ci, x="n_pairs")
        axis = PairsAxis.for_values(agg["x"])
        agg = with_positions(agg, axis)
        refs = reference_rows(win_rates)
        has_diffs = diffs is not None
        fig = new_figure(opts, 2.55 + (2.0 if has_diffs else 0.0))
        axes = fig.subplots(2 if has_diffs else 1, 1, squeeze=False)[:, 0]
        ax = axes[0]
        records = series_records(agg, "a")
        tie_line(ax)
        draw_series(ax, agg, axis)
        ref_handles = draw_reference_lines(ax, refs, "win_rate", "a", records)
        records.append(record("a", "hline", tie_handle(baseline).get_label(), y=0.5))
        axis.apply(ax)
        ax.set_ylabel(f"win rate vs {baseline_label(baseline)}")
        win_rate_ylim(ax, [*agg["y"], *agg["y_low"], *agg["y_high"], *refs["win_rate"]])
        ax.set_title("a   win rate vs training pairs" if has_diffs else "")
        handles = [series_handle(a, m) for a, m in sorted({*zip(agg["arm"], agg["matching"])}, key=series_key)]
        handles.append(Patch(color="0.6", alpha=0.35, label=f"{opts.ci:g}% CI over seeds"))
        handles += ref_handles
        handles.append(tie_handle(baseline))
        items = [(ax, handles, None)]
        if has_diffs:
            d = diffs[diffs["judge"] == judge] if len(diffs) else diffs
            diff_records, diff_handles, diff_title = _draw_differences(axes[1], d, opts, reference_arm)
            records += diff_records
            items.append((axes[1], diff_handles, diff_title))
        axes_legends(fig, items, opts)
        fig.get_layout_engine().set(h_pad=0.06)
    return PlotResult(name, fig, plotted_frame(records), notes=[f"judge={judge}", f"baseline={baseline}"],
                      missing=missing)


def _diff_title(diffs: pd.DataFrame, reference_arm: str) -> str:
    """Panel b's title: ``<rule arm> − <reference arm>`` ("rule" for several rule arms)."""
    arms = sorted({split_arm(a)[0] for a in diffs["arm"]} - {""}) if len(diffs) else []
    refs = sorted(set(diffs["ref_arm"]) - {""}) if len(diffs) else []
    reference_arm = refs[0] if len(refs) == 1 else reference_arm
    other = arms[0] if len(arms) == 1 else "rule"
    return f"{other} − {reference_arm}"


def _draw_differences(ax: Axes, diffs: pd.DataFrame, opts: PlotOptions,
                      reference_arm: str) -> tuple[list[dict], list, str]:
    """Panel b: every non-reference arm's difference to the reference arm per matching (a line
    per arm x matching, and init) vs nominal size N, with the table's CI as error bars."""
    refs = sorted(set(diffs["ref_arm"]) - {""}) if len(diffs) else []
    reference_arm = refs[0] if len(refs) == 1 else reference_arm
    title = _diff_title(diffs, reference_arm)
    ax.set_title(f"b   {title} at matched size")
    d = diffs[np.isfinite(diffs["diff"])] if len(diffs) else diffs
    if d.empty:
        panel_placeholder(ax, "No rows in eval/arm_differences.csv: no arm difference to draw.")
        return [], [], title
    d = init_lines(d)
    several = len({split_arm(a)[0] for a in d["arm"]}) > 1
    axis = PairsAxis.for_values(d["size"])
    records = []
    ax.axhline(0.0, color=TIE_COLOR, linewidth=0.7, zorder=1, gid="zero-difference")
    handles = []
    keys = sorted({*zip(d["arm"], d["matching"])}, key=series_key)

    def label_of(arm: str, matching: str) -> str:
        return series_label(arm, matching) if several or split_arm(arm)[1] else f"{matching}-matched"

    d = d.assign(x_plot=axis.pos(d["size"].to_numpy()), line=[label_of(a, m) for a, m in zip(d["arm"], d["matching"])])
    labels = [label_of(*k) for k in keys]
    lineplot(ax, d, "x_plot", "diff", "line", {lab: series_color(*k) for lab, k in zip(labels, keys)}, labels,
             markers={lab: MATCHING_MARKERS.get(k[1], "o") for lab, k in zip(labels, keys)}, gid="diff",
             dashes={lab: series_dashes(k[0]) for lab, k in zip(labels, keys)})
    for (arm, matching), label in zip(keys, labels):
        g = d[(d["arm"] == arm) & (d["matching"] == matching)].sort_values("size")
        color, marker = series_color(arm, matching), MATCHING_MARKERS.get(matching, "o")
        xp = g["x_plot"].to_numpy()
        lo, hi = g["ci_low"].to_numpy(), g["ci_high"].to_numpy()
        ok = np.isfinite(lo) & np.isfinite(hi)
        if ok.any():
            ax.errorbar(xp[ok], g["diff"].to_numpy()[ok],
                        yerr=np.clip([g["diff"].to_numpy()[ok] - lo[ok], hi[ok] - g["diff"].to_numpy()[ok]], 0, None),
                        color=color, fmt="none", capsize=2, elinewidth=0.8, capthick=0.8, zorder=2)
        handles.append(series_handle(arm, matching, label=label))
        handles[-1].set_marker(marker)
        for (_, r), x_plot in zip(g.iterrows(), xp):
            n_models = r["n_seeds"]
            records.append(record("b", "line", label, x=r["size"], x_plot=float(x_plot), y=r["diff"],
                                  y_low=r["ci_low"], y_high=r["ci_high"],
                                  n_models=int(n_models) if np.isfinite(n_models) else 0,
                                  interval="table CI", arm=arm, matching=matching, size=r["size"]))
    records.append(record("b", "hline", "no difference (0)", y=0.0))
    axis.apply(ax, label=f"series size N ({reference_arm} pairs, log scale)")
    ax.set_ylabel("win-rate difference")
    handles.append(Line2D([], [], color=TIE_COLOR, linewidth=0.7, label="no difference", gid="optional"))
    return records, handles, title


def build(inputs: FigureInputs, opts: PlotOptions) -> PlotResult:
    """The figure from the prepared tables (the registry's entry point)."""
    return win_rate_vs_pairs(inputs.win_rates, inputs.diffs, opts, inputs.reference_arm)
