"""Drawing shared by the figures: series lines with interval bands, reference and tie lines, limits.

Every artist gets a ``gid`` (``series:<label>``, ``hline:<model_id>``, ``tie``, ...) so that tests
and readers can find it; every drawn value is also recorded (:func:`prefsweep.plots.result.record`).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.axes import Axes
from matplotlib.colors import to_rgb
from matplotlib.lines import Line2D

from prefsweep.plots.axes import PairsAxis
from prefsweep.plots.result import record
from prefsweep.plots.style import (
    MATCHING_MARKERS,
    TIE_COLOR,
    hline_style,
    model_label,
    series_color,
    series_dashes,
    series_key,
    series_label,
)


def lineplot(ax: Axes, data: pd.DataFrame, x: str, y: str, hue: str, palette: dict, order: list,
             markers: dict | None = None, gid: str = "line", dashes: dict | None = None, **kws: Any) -> None:
    """One ``sns.lineplot`` of already aggregated values (no estimator), a line per ``hue``
    level; each line gets the gid ``"{gid}:{level}"`` so tests and readers can find it."""
    n_before = len(ax.lines)
    labels = ax.get_xlabel(), ax.get_ylabel()  # seaborn would name the axes after the columns
    style = dict(style=hue, style_order=order, markers=markers,
                 dashes=dashes if dashes and any(dashes.values()) else False) if markers else {}
    sns.lineplot(data=data, x=x, y=y, hue=hue, hue_order=order, palette=palette, estimator=None, sort=True,
                 legend=False, ax=ax, markeredgewidth=0, zorder=3, **style, **kws)
    ax.set_xlabel(labels[0])
    ax.set_ylabel(labels[1])
    by_color = {tuple(to_rgb(c)): level for level, c in palette.items()}
    new = ax.lines[n_before:]
    present = [level for level in order if level in set(data[hue])]
    if len(by_color) < len(palette) and len(new) == len(present):
        # two levels share a color (one line per init): seaborn draws them in hue order
        for line, level in zip(new, present):
            line.set_gid(f"{gid}:{level}")
        return
    for line in new:
        line.set_gid(f"{gid}:{by_color.get(tuple(to_rgb(line.get_color())), '?')}")


def draw_series(ax: Axes, agg: pd.DataFrame, axis: PairsAxis | None, band: bool = True,
                gid_prefix: str = "series") -> None:
    """Lines (one sns.lineplot of the aggregated values, hue = arm x matching) + interval bands
    + error bars at the zero point."""
    keys = sorted({*zip(agg["arm"], agg["matching"])}, key=series_key)
    if not keys:
        return
    labels = [series_label(*k) for k in keys]
    data = agg.assign(series=[series_label(a, m) for a, m in zip(agg["arm"], agg["matching"])])
    lineplot(ax, data, "x_plot", "y", "series", dict(zip(labels, (series_color(*k) for k in keys))), labels,
             markers=dict(zip(labels, (MATCHING_MARKERS.get(k[1], "o") for k in keys))), gid=gid_prefix,
             dashes=dict(zip(labels, (series_dashes(k[0]) for k in keys))))
    for (arm, matching), label in zip(keys, labels):
        g = data[data["series"] == label].sort_values("x_plot")
        color = series_color(arm, matching)
        if not band:
            continue
        # A band over the positive sizes; the zero point (left of the axis break, where a band
        # would bridge the break) and any point without a band neighbour get error bars.
        pos = g[g["x"] > 0] if axis is not None else g
        ok = np.isfinite(pos["y_low"]) & np.isfinite(pos["y_high"])
        if ok.sum() >= 2:
            ax.fill_between(pos["x_plot"][ok], pos["y_low"][ok], pos["y_high"][ok], color=color,
                            alpha=0.18, linewidth=0, zorder=2, gid=f"band:{label}")
            bars = g[g["x"] == 0] if axis is not None else g.iloc[0:0]
        else:
            bars = g
        bars = bars[np.isfinite(bars["y_low"]) & np.isfinite(bars["y_high"])]
        for _, r in bars.iterrows():
            ax.errorbar(r["x_plot"], r["y"], yerr=[[max(0.0, r["y"] - r["y_low"])], [max(0.0, r["y_high"] - r["y"])]],
                        color=color, capsize=2, elinewidth=0.8, capthick=0.8, fmt="none", zorder=2,
                        gid=f"errorbar:{label}")


def tie_line(ax: Axes, y: float = 0.5) -> None:
    """The tie line: a win rate of 0.5 against the baseline."""
    ax.axhline(y, color=TIE_COLOR, linewidth=0.7, zorder=1, gid="tie")


def win_rate_ylim(ax: Axes, values: Iterable[float]) -> None:
    """Limits that contain every drawn value and the tie line, padded, inside [0, 1]."""
    v = np.asarray([x for x in values if np.isfinite(x)] + [0.5], dtype=float)
    lo, hi = float(v.min()), float(v.max())
    pad = max(0.04, 0.08 * (hi - lo))
    ax.set_ylim(max(-0.02, lo - pad), min(1.02, hi + pad))


def draw_reference_lines(ax: Axes, refs: pd.DataFrame, value: str, panel: str,
                         records: list[dict], fmt: str = "{:.2f}") -> list[Line2D]:
    """Dashed horizontal lines for SFT and baselines at their ``value``; returns legend handles."""
    handles = []
    i_baseline = 0
    for _, r in refs.iterrows():
        y = r[value]
        if not np.isfinite(y):
            continue
        style = hline_style(None if r["kind"] == "sft" else "base" if r["kind"] == "base" else i_baseline)
        i_baseline += r["kind"] == "baseline"
        label = f"{model_label(r)} ({fmt.format(y)})"
        ax.axhline(y, zorder=1, gid=f"hline:{r['model_id']}", **style)
        handles.append(Line2D([], [], label=label, **style))
        records.append(record(panel, "hline", label, y=y, n_models=1, model=r))
    return handles


def draw_welfare_references(ax: Axes, welfare: pd.DataFrame, measure: str, group: str, panel: str,
                            records: list[dict]) -> list[Line2D]:
    """Dashed lines for the models off the lines (base or SFT when it is no init, baselines)."""
    rows = welfare[(welfare["measure"] == measure) & (welfare["group"] == group) & (welfare["arm"] == "")]
    rows = rows[np.isfinite(rows["value"].to_numpy(dtype=float))]
    handles = []
    for i, (_, r) in enumerate(rows.drop_duplicates("model_id").iterrows()):
        style = hline_style(None if r["kind"] == "sft" else "base" if r["kind"] == "base" else i)
        label = model_label(r)
        ax.axhline(r["value"], zorder=1, gid=f"hline:{r['model_id']}", **style)
        handles.append(Line2D([], [], label=label, **style))
        records.append(record(panel, "hline", label, y=r["value"], n_models=1))
    return handles


def panel_placeholder(ax: Axes, reason: str) -> None:
    """An empty panel that says why there is nothing to draw in it."""
    ax.text(0.5, 0.5, reason, ha="center", va="center", fontsize=8, wrap=True, transform=ax.transAxes,
            color="0.3", gid="placeholder")
    ax.set_xticks([])
    ax.set_yticks([])
