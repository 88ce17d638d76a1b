"""Figure ``evolution``: win rate vs training step, a panel per arm x matching, a line per size.

Each line runs from the zero point (step 0) through the evaluated checkpoints to the final model
(a star). Rows come from ``eval/evolution.csv`` (checkpoints and final DPO models, each final
model at its real ``step``) and ``eval/win_rates.csv``.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.lines import Line2D

from prefsweep.plots.axes import PairsAxis
from prefsweep.plots.draw import lineplot, tie_line, win_rate_ylim
from prefsweep.plots.inputs import FigureInputs
from prefsweep.plots.legends import figure_legend, tie_handle
from prefsweep.plots.options import PlotOptions, new_figure, paper_style
from prefsweep.plots.result import PlotResult, placeholder_result, plotted_frame, record
from prefsweep.plots.rows import comparison, finite_rows
from prefsweep.plots.seeds import aggregate_over_seeds
from prefsweep.plots.style import baseline_label, series_key, series_label


def evolution(
    win_rates: pd.DataFrame,
    evolution_table: pd.DataFrame | None,
    opts: PlotOptions,
) -> PlotResult:
    """Win rate vs training step, a panel per arm x matching, a line per size N.

    Points: step 0 = the zero point of the line (the init model), then every evaluated
    checkpoint, then the final model at its real step (its run's ``global_step``), each the mean
    over seeds at that step; a star marks the final model, so every curve ends at its star.
    Rows come from ``evolution_table`` (eval/evolution.csv) and ``win_rates`` (each model once).
    Panels are the lines with at least one evaluated checkpoint.
    """
    name = "evolution"
    missing: list[str] = []
    with paper_style(opts):
        frames = [win_rates] + ([evolution_table] if evolution_table is not None and len(evolution_table) else [])
        # evolution.csv repeats the final rows of win_rates.csv; a model is one row per line.
        allrows = pd.concat(frames, ignore_index=True).drop_duplicates(
            ["model_id", "arm", "matching", "size"], keep="first")
        allrows = finite_rows(allrows, "win_rate", "evolution", missing)
        on_line = allrows[allrows["arm"] != ""]
        ckpt = on_line[(on_line["kind"] == "checkpoint") & np.isfinite(on_line["step"])]
        if ckpt.empty:
            return placeholder_result(name, opts, "Training evolution",
                                      "No evaluated checkpoints with a win rate (eval.checkpoints is off, or no "
                                      "checkpoint rows in eval/win_rates.csv or eval/evolution.csv).", missing)
        judge, baseline = comparison(allrows)
        zero = on_line[(on_line["kind"] != "checkpoint") & (on_line["size"] == 0)]
        finals = on_line[(on_line["kind"] == "dpo") & (on_line["size"] > 0)]
        no_step = finals[~np.isfinite(finals["step"])]
        if len(no_step):
            missing.append(f"evolution: {len(no_step)} final model(s) without a step left out "
                           f"({', '.join(no_step['model_id'][:8])})")
        finals = finals[np.isfinite(finals["step"])]
        # The curve of a cell: checkpoints, then the final model at its own step. A checkpoint
        # at its run's final step is the final model (prefsweep.eval.tables keeps only the final).
        run = ["arm", "matching", "size", "seed", "step"]
        same = ckpt.merge(finals[run], on=run, how="left", indicator=True)["_merge"].eq("both").to_numpy()
        points = pd.concat([ckpt[~same], finals], ignore_index=True)
        sizes = sorted(points["size"].unique())
        palette = dict(zip(sizes, sns.color_palette("crest", len(sizes))))
        series = sorted({*zip(ckpt["arm"], ckpt["matching"])}, key=series_key)
        ncols = min(2 if opts.narrow else 3, len(series))
        nrows = math.ceil(len(series) / ncols)
        # Step 0 is the zero point (when the table has it), left of the axis break.
        axis = PairsAxis.for_values([*([0.0] if len(zero) else []), *points["step"]])
        fig = new_figure(opts, 0.5 + 1.85 * nrows)
        axes = fig.subplots(nrows, ncols, squeeze=False, sharey=True, sharex=True)
        records: list[dict] = []
        all_y: list[float] = []
        for i, (arm, matching) in enumerate(series):
            ax = axes.flat[i]
            label = series_label(arm, matching)
            ax.set_title(label)
            tie_line(ax)
            s_points = points[(points["arm"] == arm) & (points["matching"] == matching)]
            s_zero = zero[(zero["arm"] == arm) & (zero["matching"] == matching)]
            panel_lines = []
            for size in sorted(s_points["size"].unique()):
                pts = s_points[s_points["size"] == size]
                agg = aggregate_over_seeds(pts, ["step"], "win_rate", opts.ci, fallback=None)
                if len(s_zero):
                    z = s_zero.iloc[0]
                    agg = pd.concat([pd.DataFrame([dict(step=0.0, y=z["win_rate"], y_low=math.nan, y_high=math.nan,
                                                        n_models=1, interval="")]), agg], ignore_index=True)
                agg = agg.sort_values("step")
                agg["x_plot"] = axis.pos(agg["step"].to_numpy())
                panel_lines.append(agg.assign(size_id=f"n{int(size)}"))
                all_y += list(agg["y"])
                for _, r in agg.iterrows():
                    records.append(record(label, "line", f"N = {int(size)}", x=r["step"], x_plot=r["x_plot"],
                                          y=r["y"], y_low=r["y_low"], y_high=r["y_high"],
                                          n_models=int(r["n_models"]), interval=r["interval"], arm=arm,
                                          matching=matching, size=size, step=r["step"]))
                fin = finals[(finals["arm"] == arm) & (finals["matching"] == matching) & (finals["size"] == size)]
                fagg = aggregate_over_seeds(fin, ["size"], "win_rate", opts.ci, x="step", fallback=None)
                for _, r in fagg.iterrows():
                    ax.plot([axis.pos(r["x"])], [r["y"]], marker="*", markersize=8, color=palette[size],
                            markeredgecolor="black", markeredgewidth=0.5, linestyle="none", zorder=4,
                            gid=f"final:{label}:n{int(size)}")
                    all_y.append(r["y"])
                    records.append(record(label, "final", f"N = {int(size)} final", x=r["x"],
                                          x_plot=axis.pos(r["x"]),
                                          y=r["y"], n_models=int(r["n_models"]), arm=arm, matching=matching,
                                          size=size, step=r["x"]))
            if panel_lines:
                ids = [f"n{int(n)}" for n in sizes]
                lineplot(ax, pd.concat(panel_lines, ignore_index=True), "x_plot", "y", "size_id",
                         {f"n{int(n)}": c for n, c in palette.items()}, ids, markers=dict.fromkeys(ids, "o"),
                         gid=f"evolution:{label}", markersize=3)
            axis.apply(ax, label="")
            records.append(record(label, "hline", tie_handle(baseline).get_label(), y=0.5, arm=arm,
                                  matching=matching))
        for ax in axes.flat[len(series):]:
            ax.set_axis_off()
        for ax in axes.flat[max(0, len(series) - ncols): len(series)]:  # lowest panel of each column
            ax.tick_params(labelbottom=True)
        fig.supxlabel("training step (log scale)", fontsize=8)  # once: per-panel labels would collide
        for row in axes:
            row[0].set_ylabel(f"win rate vs {baseline_label(baseline)}")
        win_rate_ylim(axes.flat[0], all_y)
        handles = [Line2D([], [], color=palette[s], marker="o", markersize=3, label=f"N = {int(s)}") for s in sizes]
        handles.append(Line2D([], [], color="0.5", marker="*", markersize=8, markeredgecolor="black",
                              markeredgewidth=0.5, linestyle="none", label="final model"))
        handles.append(tie_handle(baseline))
        figure_legend(fig, handles, opts, title="series size N")
    return PlotResult(name, fig, plotted_frame(records), notes=[f"judge={judge}", f"baseline={baseline}"],
                      missing=missing)


def build(inputs: FigureInputs, opts: PlotOptions) -> PlotResult:
    """The figure from the prepared tables (the registry's entry point)."""
    return evolution(inputs.win_rates, inputs.evolution, opts)
