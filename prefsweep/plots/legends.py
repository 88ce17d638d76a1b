"""Legends outside the axes: one per figure (right, or below a one-column figure) or one per axes."""

from __future__ import annotations

from typing import Any

from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from prefsweep.plots.options import PlotOptions
from prefsweep.plots.style import MATCHING_MARKERS, TIE_COLOR, baseline_label, series_color, series_dashes, series_label


def figure_legend(fig: Figure, handles: list, opts: PlotOptions, title: str | None = None) -> None:
    """One legend for the whole figure, outside every axes (right, or below when narrow)."""
    if not handles:
        return
    if opts.narrow:
        kw = dict(loc="outside lower center", title=title, handlelength=1.6, columnspacing=0.8, handletextpad=0.5,
                  alignment="left")
        leg = fig.legend(handles=handles, ncols=2, **kw)
        box = leg.get_window_extent(fig.canvas.get_renderer())
        if box.width / fig.dpi > opts.width_in - 0.1:  # two columns would be clipped: one column
            leg.remove()
            leg = fig.legend(handles=handles, ncols=1, **kw)
            box = leg.get_window_extent(fig.canvas.get_renderer())
        # The legend takes its own room below the axes instead of squeezing them.
        fig.set_figheight(fig.get_figheight() + box.height / fig.dpi + 0.1)
    else:
        fig.legend(handles=handles, loc="outside right upper", ncols=1, title=title, alignment="left")


#: Height of one legend row at the figures' legend font size (8 pt), inches.
LEGEND_ROW_IN = 0.19


def axes_legends(fig: Figure, items: list[tuple[Axes, list, str | None]], opts: PlotOptions) -> None:
    """A legend to the right of each axes of a one-column figure; one legend below when narrow
    (entries of later axes prefixed with their title, e.g. "sc − maj: prompt")."""
    if opts.narrow:
        merged: dict[str, Any] = {}
        for i, (_, handles, title) in enumerate(items):
            for h in handles:
                if i and h.get_gid() == "optional":
                    continue
                if i and title:
                    h.set_label(f"{title}, {h.get_label()}")
                merged.setdefault(h.get_label(), h)
        figure_legend(fig, list(merged.values()), opts)
        return
    # A legend taller than its axes (a study: a line per init x arm x matching) would squeeze the
    # axes: each axes gets at least its legend's height (about LEGEND_ROW_IN a row).
    panel = fig.get_figheight() / max(1, len(items))
    needed = sum(max(panel, LEGEND_ROW_IN * (len(handles) + bool(title)) + 0.5) for _, handles, title in items)
    if needed > fig.get_figheight():
        fig.set_figheight(needed)
    for ax, handles, title in items:
        if handles:
            ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0, title=title,
                      alignment="left")


def tie_handle(baseline: str) -> Line2D:
    """Legend entry of the tie line (win rate 0.5 against ``baseline``)."""
    return Line2D([], [], color=TIE_COLOR, linewidth=0.7, label=f"tie with {baseline_label(baseline)} (0.5)")


def series_handle(arm: str, matching: str, label: str | None = None) -> Line2D:
    """Legend entry of a line: its color, marker and dashes (:mod:`prefsweep.plots.style`)."""
    dashes = series_dashes(arm)
    return Line2D([], [], color=series_color(arm, matching), marker=MATCHING_MARKERS.get(matching, "o"),
                  label=label or series_label(arm, matching), **({"dashes": dashes} if dashes else {}))
