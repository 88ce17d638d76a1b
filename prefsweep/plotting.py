"""The paper's figures, built from the win-rate tables of one experiment.

Inputs: the CSV tables :mod:`prefsweep.winrate` writes, read with
:func:`prefsweep.winrate.read_table` against the column tuples defined there (the one
definition of each table; a file with other columns is an error): ``eval/win_rates.csv``
(:data:`~prefsweep.winrate.WIN_RATE_COLUMNS`), ``eval/win_rates_groups.csv``
(:data:`~prefsweep.winrate.GROUP_COLUMNS`), ``eval/arm_differences.csv``
(:data:`~prefsweep.winrate.DIFF_COLUMNS`) and, when checkpoints are evaluated,
``eval/evolution.csv`` (same columns as ``win_rates.csv``: checkpoints and final DPO models,
each final model at its real ``step``). Text columns are '' where empty, numbers NaN. The zero
point (the DPO init model, kind sft or base) appears once per arm x matching line with size 0
and n_pairs 0; other models not on a line (baselines, base or SFT when it is no init) have
arm "". The reference arm's series have matching ``shared``. With several inits (``dpo.init`` a
list) a line is an init x arm x matching: :func:`init_lines` writes its arm as ``arm|init``
(also in the plotted values), drawn in the arm x matching's color with a line style per init
(solid: the first init, dashed: the next).

Figures (each returned with the table of exactly the values it draws, see ``PLOT_COLUMNS``):

1. ``win_rate_vs_pairs``: (a) win rate vs actual training pairs, one line per arm x matching,
   mean over seeds with a t-interval band; the zero point at the left end of every line on a
   broken log axis; base, SFT and baseline models as dashed horizontal lines; (b) the arm
   differences (every rule arm and matching, minus the reference arm).
2. ``evolution``: win rate vs training step, one panel per arm x matching, one line per size,
   from the zero point (step 0) through the checkpoints to the final model (a star).
3. ``groups``: win rate per voter group at the largest size, and per group vs training pairs.
4. ``length``: mean answer length and position-flip rate vs training pairs.
5. ``rule_comparison``: the rules side by side at each series size N (a panel per N): each rule
   arm's win-rate difference to the reference arm (``eval/arm_differences.csv``) with its CI,
   one marker per matching (and init).

From the welfare table ``eval/welfare.csv`` (:data:`prefsweep.welfare.WELFARE_COLUMNS`; the
electorate judge only, :data:`WELFARE_FIGURES`):

6. ``welfare``: welfare (mean utility) vs training pairs, one line per arm x matching: all voters
   (utilitarian), the worst-off group (egalitarian) and one panel per voter group.
7. ``distortion``: distortion (best achievable welfare over the model's, >= 1) vs training pairs.

Uncertainty: a point that averages k >= 2 models (seeds) gets the two-sided Student-t interval
``mean +- t_{(1+ci)/2, k-1} * sd / sqrt(k)`` (sd with ddof=1) at level ``ci`` (config
``plots.ci``). A point backed by one model (the zero point, a one-seed run) gets that model's
own interval from the table (``ci_low``/``ci_high``: uncertainty over eval questions) instead.
The ``interval`` column of every plotted-values table says which was used.

Every figure is drawn inside :func:`paper_style` (8 pt text, 9 pt titles, TrueType fonts in
PDF) at ``plots.width_in`` inches wide; legends sit outside the axes. A table with nothing to
draw (no rows, or no finite values: e.g. models without a valid verdict) gives a placeholder
figure that says why instead of an exception; rows left out are named in the result's ``missing``.
"""

from __future__ import annotations

import contextlib
import io
import math
import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # the workflow and the tests run headless

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.colors import to_rgb  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402
from matplotlib.ticker import FixedLocator, FuncFormatter, NullFormatter  # noqa: E402
from scipy import stats  # noqa: E402

from prefsweep.config import ConfigError, schema_properties  # noqa: E402
from prefsweep.io import atomic_write_bytes, atomic_write_json, atomic_write_text, sha256_file  # noqa: E402
from prefsweep.paths import FIGURES, WELFARE_FIGURES  # noqa: E402,F401  (names of the figures)
from prefsweep.winrate import config_value  # noqa: E402


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

_CB = sns.color_palette("colorblind")
#: One color per arm x matching, fixed whatever subset an experiment has, so that a series keeps
#: its color in every figure and across experiments.
SERIES_COLORS: dict[tuple[str, str], tuple[float, float, float]] = {
    ("maj", "shared"): _CB[0], ("maj", "prompt"): _CB[9], ("maj", "size"): _CB[4],
    ("sc", "shared"): _CB[3], ("sc", "prompt"): _CB[1], ("sc", "size"): _CB[2],
}
#: Rule arms named by their rule (``sc.rule`` a list): one hue per rule, in this order first
#: (others by a stable hash of the name); size-matched a darker shade of prompt-matched.
RULE_ORDER = ("borda", "copeland", "maximal_lottery", "schulze", "beat_path", "ranked_pairs", "minimax",
              "instant_runoff", "plurality", "c1_maximal_lottery", "split_cycle", "stable_voting")
_RULE_HUES = [sns.color_palette("tab10")[i] for i in (1, 2, 3, 4, 5, 6, 8, 9)]
MATCHING_MARKERS = {"shared": "o", "prompt": "^", "size": "s"}
MATCHINGS_ORDER = ("shared", "prompt", "size")
_SERIES_ORDER = list(SERIES_COLORS)
#: Line styles of the inits of a list ``dpo.init``, in config order (solid, dashed).
INIT_DASHES = ("", (4, 1.6), (1.2, 1.2))
#: Horizontal reference models: SFT black, base grey, baselines in colors no series uses.
_HLINE_COLORS = [_CB[5], _CB[7], _CB[6], _CB[8]]
_HLINE_DASHES = [(0, (5, 2)), (0, (1.5, 1.5)), (0, (6, 2, 1.5, 2)), (0, (3, 1, 1, 1, 1, 1))]
TIE_COLOR = "0.55"

#: Decades between the zero point's stand-in position and the smallest positive x.
ZERO_GAP_DECADES = 0.7


# --------------------------------------------------------------------------------------------
# Options and style


@dataclass(frozen=True)
class PlotOptions:
    """The config section ``plots``; its keys, defaults and bounds are in
    workflow/schemas/config.schema.yaml (the validated config carries every value).

    formats: file formats besides the CSV (png, pdf, svg); dpi: raster resolution; width_in:
    figure width in inches (3.3 one column, 6.8 two columns); ci: level in percent of the
    Student-t interval over seeds.
    """

    formats: tuple[str, ...]
    dpi: int
    width_in: float
    ci: float

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> "PlotOptions":
        """Options from a job's config slice (its ``plots`` section). A missing key is a
        :class:`~prefsweep.config.ConfigError` naming it; an unknown one too."""
        plots = config_value(config, "plots")
        known = schema_properties("plots")
        unknown = sorted(set(plots) - set(known))
        if unknown:
            raise ConfigError(f"plots: unknown key(s) {unknown}; known: {list(known)}")
        values = {k: config_value(config, f"plots.{k}") for k in known}
        values["formats"] = tuple(values["formats"])
        return cls(**values)

    @property
    def interval_name(self) -> str:
        return f"t{self.ci:g} over seeds"

    @property
    def narrow(self) -> bool:
        """A one-column figure: legends go below the axes instead of to their right."""
        return self.width_in < 5.0


@contextlib.contextmanager
def paper_style(opts: PlotOptions) -> Iterator[None]:
    """Seaborn's paper context and ticks style at 8 pt (titles 9 pt), without touching globals."""
    rc = {
        "font.size": 8, "axes.titlesize": 9, "axes.labelsize": 8, "xtick.labelsize": 8,
        "ytick.labelsize": 8, "legend.fontsize": 8, "legend.title_fontsize": 8,
        "axes.linewidth": 0.6, "lines.linewidth": 1.3, "lines.markersize": 4.5,
        "xtick.major.width": 0.6, "ytick.major.width": 0.6, "xtick.minor.width": 0.4,
        "legend.frameon": False, "legend.handlelength": 2.2, "figure.dpi": 100,
        "savefig.dpi": opts.dpi, "pdf.fonttype": 42, "ps.fonttype": 42, "svg.fonttype": "none",
        "axes.titlelocation": "left",
    }
    with sns.axes_style("ticks"), sns.plotting_context("paper"), plt.rc_context(rc):
        yield


# --------------------------------------------------------------------------------------------
# Selecting rows of the tables


def finite_rows(df: pd.DataFrame, column: str, what: str, missing: list[str]) -> pd.DataFrame:
    """Rows whose ``column`` is a finite number; the others are named in ``missing`` (a model
    without a valid verdict has no win rate, so it is left out, not drawn as 0)."""
    ok = np.isfinite(pd.to_numeric(df[column], errors="coerce").to_numpy(dtype=float))
    dropped = df[~ok]
    if len(dropped):
        ids = list(dict.fromkeys(dropped["model_id"]))
        missing.append(f"{what}: {len(dropped)} row(s) without {column} left out "
                       f"({', '.join(ids[:8])}{', ...' if len(ids) > 8 else ''})")
    return df[ok]


def split_arm(arm: str) -> tuple[str, str]:
    """``(arm, init)`` of a line's arm (``arm|init`` with several inits, :func:`init_lines`)."""
    arm, _, init = str(arm).partition("|")
    return arm, init


def init_lines(df: pd.DataFrame | None) -> pd.DataFrame | None:
    """With rows of several inits (``init`` column), the arm of every row on a line becomes
    ``arm|init`` so that each init x arm x matching is a line of its own; else ``df`` as it is."""
    if df is None or "init" not in df.columns or not len(df):
        return df
    inits = sorted(set(df["init"].fillna("")) - {""})
    if len(inits) < 2:
        return df
    on_line = (df["arm"].fillna("") != "") & (df["init"].fillna("") != "")
    out = df.copy()
    out.loc[on_line, "arm"] = out.loc[on_line, "arm"].astype(str) + "|" + out.loc[on_line, "init"].astype(str)
    return out


def series_label(arm: str, matching: str) -> str:
    base, init = split_arm(arm)
    return f"{base} ({matching})" + (f", from {init}" if init else "")


def _mix(color: tuple[float, float, float], other: float, share: float) -> tuple[float, float, float]:
    return tuple(float(c * (1 - share) + other * share) for c in color)


def series_color(arm: str, matching: str) -> tuple[float, float, float]:
    arm, _ = split_arm(arm)
    if (arm, matching) in SERIES_COLORS:
        return SERIES_COLORS[(arm, matching)]
    if arm in RULE_ORDER:
        hue = _RULE_HUES[RULE_ORDER.index(arm) % len(_RULE_HUES)]
    else:  # a stable hash (str hash() changes between processes)
        import zlib

        hue = _RULE_HUES[zlib.crc32(arm.encode()) % len(_RULE_HUES)]
    return _mix(hue, 0.0, 0.35) if matching == "size" else tuple(hue)


def series_dashes(arm: str, inits: Sequence[str] = ("sft", "base")) -> Any:
    """Line style of a line's init (:data:`INIT_DASHES`; solid without an init)."""
    _, init = split_arm(arm)
    if not init:
        return ""
    return INIT_DASHES[min(list(inits).index(init) if init in inits else 0, len(INIT_DASHES) - 1)]


def _series_key(key: tuple[str, str]) -> tuple:
    arm, init = split_arm(key[0])
    base = (arm, key[1])
    order = _SERIES_ORDER.index(base) if base in _SERIES_ORDER else len(_SERIES_ORDER)
    rule = RULE_ORDER.index(arm) if arm in RULE_ORDER else len(RULE_ORDER)
    return (order, rule, arm, key[1], init)


def series_rows(win_rates: pd.DataFrame) -> pd.DataFrame:
    """Final models of the arm x matching lines, zero point included (not checkpoints)."""
    wr = win_rates
    return wr[(wr["arm"] != "") & (wr["kind"] != "checkpoint")]


def reference_rows(win_rates: pd.DataFrame) -> pd.DataFrame:
    """SFT, base and baseline models, one row each (horizontal lines), SFT first.

    SFT and base are taken from their own rows (arm "") or, when one is a zero point and so only
    appears on the lines, from its first line copy. The comparison baseline itself is left out (its win
    rate against itself is the tie line).
    """
    wr = win_rates
    rows = wr[wr["kind"].isin(["sft", "base", "baseline"])]
    rows = rows[rows["model_id"] != rows["baseline"]]
    rows = rows.assign(_o=rows["kind"].map({"sft": 0, "base": 1, "baseline": 2}), _line=rows["arm"] != "")
    rows = rows.sort_values(["_o", "model_id", "_line"], kind="stable").drop_duplicates("model_id")
    return rows.drop(columns=["_o", "_line"]).assign(arm="", matching="", size=math.nan)


def comparison(win_rates: pd.DataFrame) -> tuple[str, str]:
    """The (judge, baseline) all rows are measured with; ValueError if the table mixes several."""
    pairs = sorted({(j, b) for j, b in zip(win_rates["judge"], win_rates["baseline"])})
    if len(pairs) > 1:
        raise ValueError(
            f"win-rate table mixes judges/baselines {pairs}: the figures compare models under one "
            "judge and one baseline; split the table first"
        )
    return pairs[0] if pairs else ("", "")


def baseline_label(baseline: str) -> str:
    """How a comparison baseline reads on an axis: 'SFT', 'reference answers', a model name."""
    if baseline == "reference":
        return "reference answers"
    if baseline == "sft":
        return "SFT"
    if baseline == "base":
        return "base model"
    if baseline.startswith("baseline-"):
        return baseline[len("baseline-"):]
    return baseline or "baseline"


def model_label(row: pd.Series) -> str:
    """Legend text of a reference model row: 'SFT', 'base model' or the baseline's config name."""
    if row["kind"] == "sft":
        return "SFT"
    if row["kind"] == "base":
        return "base model"
    return baseline_label(row["model_id"])


# --------------------------------------------------------------------------------------------
# Statistics


def seed_interval(values: Iterable[float], ci: float) -> tuple[float, float, float, int]:
    """Mean and two-sided Student-t interval over models: ``(mean, low, high, k)``.

    ``mean +- t_{(1+ci/100)/2, k-1} * s / sqrt(k)`` with ``s`` the sample sd (ddof=1) of the k
    finite values. k < 2 gives NaN bounds; k = 0 a NaN mean.
    """
    v = np.asarray([x for x in values if x is not None and np.isfinite(x)], dtype=float)
    k = len(v)
    if k == 0:
        return math.nan, math.nan, math.nan, 0
    mean = float(v.mean())
    if k < 2:
        return mean, math.nan, math.nan, k
    half = float(stats.t.ppf(0.5 + ci / 200.0, k - 1) * v.std(ddof=1) / math.sqrt(k))
    return mean, mean - half, mean + half, k


def aggregate_over_seeds(
    df: pd.DataFrame,
    keys: Sequence[str],
    value: str,
    ci: float,
    x: str | None = None,
    fallback: tuple[str, str] | None = ("ci_low", "ci_high"),
    bounds: tuple[float, float] | None = (0.0, 1.0),
) -> pd.DataFrame:
    """One row per ``keys`` group: y (mean over distinct models), y_low/y_high, n_models, x.

    Distinct models are distinct ``model_id``s, except at size 0 where every row is the one
    zero-point model. A group of one model takes its interval from the ``fallback`` columns.
    ``x`` (if given) is averaged over the models (actual pairs are the same for every seed).
    Bounds are clipped to ``bounds``, the range of the quantity.
    """
    out: list[dict[str, Any]] = []
    if df.empty:
        return pd.DataFrame(columns=[*keys, "x", "y", "y_low", "y_high", "n_models", "interval"])
    for key, g in df.groupby(list(keys), sort=True, dropna=False):
        key = key if isinstance(key, tuple) else (key,)
        g = g[np.isfinite(g[value])]
        if g.empty:
            continue
        if "size" in g.columns and (g["size"] == 0).all():
            g = g.iloc[:1]
        elif "model_id" in g.columns and (g["model_id"] != "").all():
            g = g.drop_duplicates("model_id")
        mean, lo, hi, k = seed_interval(g[value], ci)
        interval = f"t{ci:g} over seeds" if k >= 2 else ""
        if k == 1 and fallback is not None and all(c in g.columns for c in fallback):
            lo, hi = float(g[fallback[0]].iloc[0]), float(g[fallback[1]].iloc[0])
            interval = "model CI" if np.isfinite(lo) and np.isfinite(hi) else ""
        if bounds is not None and np.isfinite(lo):
            lo, hi = max(lo, bounds[0]), min(hi, bounds[1])
        row = dict(zip(keys, key))
        row.update(
            x=float(g[x].mean()) if x else math.nan, y=mean, y_low=lo, y_high=hi, n_models=k,
            interval=interval,
        )
        out.append(row)
    return pd.DataFrame(out, columns=[*keys, "x", "y", "y_low", "y_high", "n_models", "interval"])


# --------------------------------------------------------------------------------------------
# The broken log axis of training pairs


@dataclass(frozen=True)
class PairsAxis:
    """A log axis of training pairs with the zero point drawn left of an axis break.

    A log axis cannot show 0, so the zero point sits at ``x_zero`` (ZERO_GAP_DECADES left of
    the smallest positive value), is labelled "0", and is separated from the positive range by
    a break mark at ``x_break``.
    """

    x_zero: float
    x_break: float
    x_min: float
    x_max: float
    zero: bool = True

    @classmethod
    def for_values(cls, values: Iterable[float]) -> "PairsAxis":
        """The axis of ``values``; without a 0 among them, a plain log axis (no "0", no break)."""
        values = [x for x in values if np.isfinite(x)]
        v = np.asarray([x for x in values if x > 0], dtype=float)
        lo, hi = (float(v.min()), float(v.max())) if len(v) else (1.0, 1.0)
        x_zero = lo / 10**ZERO_GAP_DECADES
        return cls(x_zero=x_zero, x_break=math.sqrt(x_zero * lo), x_min=lo, x_max=hi,
                   zero=any(x == 0 for x in values))

    def pos(self, x: Any) -> Any:
        """Axis position of value(s) ``x``: ``x`` itself, ``x_zero`` for 0."""
        arr = np.asarray(x, dtype=float)
        out = np.where(arr > 0, arr, self.x_zero)
        return float(out) if out.ndim == 0 else out

    def apply(self, ax: plt.Axes, label: str = "training pairs (log scale)") -> None:
        """Log scale, limits, ticks ("0" at the zero point, none inside the break), break mark."""
        ax.set_xscale("log")
        pad = 10**0.18
        left = (self.x_zero if self.zero else self.x_min) / pad
        right = max(self.x_max, self.x_min * 10**0.5) * pad
        ax.set_xlim(left, right)
        k0, k1 = math.floor(math.log10(self.x_break)), math.ceil(math.log10(right))
        decades = [10.0**k for k in range(k0, k1 + 1) if self.x_break < 10.0**k <= right]
        majors = decades
        if len(decades) < 2:
            majors = [m * 10.0**k for k in range(k0, k1 + 1) for m in (1, 2, 5)
                      if self.x_break * 1.15 < m * 10.0**k <= right]
        minors = [m * 10.0**k for k in range(k0, k1 + 1) for m in range(2, 10)
                  if self.x_break < m * 10.0**k <= right and m * 10.0**k not in majors]
        ax.xaxis.set_major_locator(FixedLocator([self.x_zero, *majors] if self.zero else majors))
        ax.xaxis.set_minor_locator(FixedLocator(minors))
        ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _: self._fmt(x)))
        ax.xaxis.set_minor_formatter(NullFormatter())
        if self.zero:  # the break: a white gap in the spine with two slashes
            # zorder: above the spine (2.5), below the data lines (3).
            ax.text(self.x_break, 0.0, "//", transform=ax.get_xaxis_transform(), ha="center",
                    va="center", fontsize=8, clip_on=False, zorder=2.6,
                    bbox=dict(facecolor="white", edgecolor="none", pad=0.3), gid="axis-break")
        ax.set_xlabel(label)

    def _fmt(self, x: float) -> str:
        if self.zero and math.isclose(x, self.x_zero):
            return "0"
        if x >= 1000:
            return f"{x / 1000:g}k"
        return f"{x:g}"


# --------------------------------------------------------------------------------------------
# Drawing helpers


def _new_figure(opts: PlotOptions, height_in: float) -> Figure:
    return plt.figure(figsize=(opts.width_in, height_in), layout="constrained")


def _figure_legend(fig: Figure, handles: list, opts: PlotOptions, title: str | None = None) -> None:
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


def _axes_legends(fig: Figure, items: list[tuple[plt.Axes, list, str | None]], opts: PlotOptions) -> None:
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
        _figure_legend(fig, list(merged.values()), opts)
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


def _tie_handle(baseline: str) -> Line2D:
    return Line2D([], [], color=TIE_COLOR, linewidth=0.7, label=f"tie with {baseline_label(baseline)} (0.5)")


def _series_handle(arm: str, matching: str, label: str | None = None) -> Line2D:
    dashes = series_dashes(arm)
    return Line2D([], [], color=series_color(arm, matching), marker=MATCHING_MARKERS.get(matching, "o"),
                  label=label or series_label(arm, matching), **({"dashes": dashes} if dashes else {}))


def _lineplot(ax: plt.Axes, data: pd.DataFrame, x: str, y: str, hue: str, palette: dict, order: list,
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


def _draw_series(ax: plt.Axes, agg: pd.DataFrame, axis: PairsAxis | None, band: bool = True,
                 gid_prefix: str = "series") -> None:
    """Lines (one sns.lineplot of the aggregated values, hue = arm x matching) + interval bands
    + error bars at the zero point."""
    keys = sorted({*zip(agg["arm"], agg["matching"])}, key=_series_key)
    if not keys:
        return
    labels = [series_label(*k) for k in keys]
    data = agg.assign(series=[series_label(a, m) for a, m in zip(agg["arm"], agg["matching"])])
    _lineplot(ax, data, "x_plot", "y", "series", dict(zip(labels, (series_color(*k) for k in keys))), labels,
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


def _tie_line(ax: plt.Axes, y: float = 0.5) -> None:
    ax.axhline(y, color=TIE_COLOR, linewidth=0.7, zorder=1, gid="tie")


def _win_rate_ylim(ax: plt.Axes, values: Iterable[float]) -> None:
    """Limits that contain every drawn value and the tie line, padded, inside [0, 1]."""
    v = np.asarray([x for x in values if np.isfinite(x)] + [0.5], dtype=float)
    lo, hi = float(v.min()), float(v.max())
    pad = max(0.04, 0.08 * (hi - lo))
    ax.set_ylim(max(-0.02, lo - pad), min(1.02, hi + pad))


def _hline_style(i_baseline: int | None | str) -> dict[str, Any]:
    if i_baseline is None:  # SFT
        return dict(color="0.15", linestyle=(0, (5, 2)), linewidth=1.0)
    if i_baseline == "base":
        return dict(color="0.45", linestyle=(0, (1, 1.2)), linewidth=1.1)
    j = i_baseline % len(_HLINE_COLORS)
    return dict(color=_HLINE_COLORS[j], linestyle=_HLINE_DASHES[(j + 1) % len(_HLINE_DASHES)], linewidth=1.0)


def _draw_reference_lines(ax: plt.Axes, refs: pd.DataFrame, value: str, panel: str,
                          records: list[dict], fmt: str = "{:.2f}") -> list[Line2D]:
    """Dashed horizontal lines for SFT and baselines at their ``value``; returns legend handles."""
    handles = []
    i_baseline = 0
    for _, r in refs.iterrows():
        y = r[value]
        if not np.isfinite(y):
            continue
        style = _hline_style(None if r["kind"] == "sft" else "base" if r["kind"] == "base" else i_baseline)
        i_baseline += r["kind"] == "baseline"
        label = f"{model_label(r)} ({fmt.format(y)})"
        ax.axhline(y, zorder=1, gid=f"hline:{r['model_id']}", **style)
        handles.append(Line2D([], [], label=label, **style))
        records.append(_record(panel, "hline", label, y=y, n_models=1, model=r))
    return handles


def _record(panel: str, element: str, label: str, *, y: float, x: float = math.nan,
            x_plot: float = math.nan, y_low: float = math.nan, y_high: float = math.nan,
            n_models: int = 0, interval: str = "", model: pd.Series | None = None,
            **extra: Any) -> dict[str, Any]:
    rec = dict.fromkeys(PLOT_COLUMNS, math.nan)
    rec.update(panel=panel, element=element, label=label, x=x, x_plot=x_plot, y=y, y_low=y_low,
               y_high=y_high, n_models=n_models, interval=interval, arm="", matching="", group="")
    if model is not None:
        rec.update(arm=model.get("arm", ""), matching=model.get("matching", ""), size=model.get("size", math.nan))
    rec.update(extra)
    return rec


def _series_records(agg: pd.DataFrame, panel: str, **extra: Any) -> list[dict[str, Any]]:
    recs = []
    for _, r in agg.iterrows():
        recs.append(_record(
            panel, "line", series_label(r["arm"], r["matching"]), x=r["x"], x_plot=r["x_plot"], y=r["y"],
            y_low=r["y_low"], y_high=r["y_high"], n_models=int(r["n_models"]), interval=r["interval"],
            arm=r["arm"], matching=r["matching"], size=r["size"], **extra,
            **({"group": r["group"]} if "group" in r else {}),
        ))
    return recs


def plotted_frame(records: list[dict[str, Any]]) -> pd.DataFrame:
    df = pd.DataFrame(records, columns=list(PLOT_COLUMNS))
    return df


def placeholder_figure(opts: PlotOptions, title: str, reason: str) -> Figure:
    """A figure that says why there is nothing to draw (keeps the workflow's outputs complete)."""
    fig = _new_figure(opts, 1.6)
    ax = fig.add_subplot()
    ax.set_axis_off()
    ax.text(0.5, 0.62, title, ha="center", va="center", fontsize=9, weight="bold", transform=ax.transAxes)
    ax.text(0.5, 0.35, reason, ha="center", va="center", fontsize=8, wrap=True, transform=ax.transAxes,
            gid="placeholder")
    return fig


def _panel_placeholder(ax: plt.Axes, reason: str) -> None:
    ax.text(0.5, 0.5, reason, ha="center", va="center", fontsize=8, wrap=True, transform=ax.transAxes,
            color="0.3", gid="placeholder")
    ax.set_xticks([])
    ax.set_yticks([])


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


# --------------------------------------------------------------------------------------------
# Figure 1: win rate vs training pairs (+ arm difference)


def _with_positions(agg: pd.DataFrame, axis: PairsAxis) -> pd.DataFrame:
    agg = agg.copy()
    agg["x_plot"] = axis.pos(agg["x"].to_numpy()) if len(agg) else []
    return agg


def win_rate_vs_pairs(
    win_rates: pd.DataFrame,
    diffs: pd.DataFrame | None,
    opts: PlotOptions,
    reference_arm: str,
) -> PlotResult:
    """Figure 1: (a) win rate vs actual training pairs; (b) arm difference vs series size.

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
            return _placeholder(name, opts, "Win rate vs training pairs",
                                "No DPO or zero-point rows with a win rate in eval/win_rates.csv: nothing to draw.",
                                missing)
        judge, baseline = comparison(win_rates)
        agg = aggregate_over_seeds(lines, ["arm", "matching", "size"], "win_rate", opts.ci, x="n_pairs")
        axis = PairsAxis.for_values(agg["x"])
        agg = _with_positions(agg, axis)
        refs = reference_rows(win_rates)
        has_diffs = diffs is not None
        fig = _new_figure(opts, 2.55 + (2.0 if has_diffs else 0.0))
        axes = fig.subplots(2 if has_diffs else 1, 1, squeeze=False)[:, 0]
        ax = axes[0]
        records = _series_records(agg, "a")
        _tie_line(ax)
        _draw_series(ax, agg, axis)
        ref_handles = _draw_reference_lines(ax, refs, "win_rate", "a", records)
        records.append(_record("a", "hline", _tie_handle(baseline).get_label(), y=0.5))
        axis.apply(ax)
        ax.set_ylabel(f"win rate vs {baseline_label(baseline)}")
        _win_rate_ylim(ax, [*agg["y"], *agg["y_low"], *agg["y_high"], *refs["win_rate"]])
        ax.set_title("a   win rate vs training pairs" if has_diffs else "")
        handles = [_series_handle(a, m) for a, m in sorted({*zip(agg["arm"], agg["matching"])}, key=_series_key)]
        handles.append(Patch(color="0.6", alpha=0.35, label=f"{opts.ci:g}% CI over seeds"))
        handles += ref_handles
        handles.append(_tie_handle(baseline))
        items = [(ax, handles, None)]
        if has_diffs:
            d = diffs[diffs["judge"] == judge] if len(diffs) else diffs
            diff_records, diff_handles, diff_title = _draw_differences(axes[1], d, opts, reference_arm)
            records += diff_records
            items.append((axes[1], diff_handles, diff_title))
        _axes_legends(fig, items, opts)
        fig.get_layout_engine().set(h_pad=0.06)
    return PlotResult(name, fig, plotted_frame(records), notes=[f"judge={judge}", f"baseline={baseline}"],
                      missing=missing)


def _diff_lines(diffs: pd.DataFrame) -> pd.DataFrame:
    """``diffs`` with the arm of every row ``arm|init`` when the table has several inits."""
    return init_lines(diffs) if len(diffs) else diffs


def _diff_title(diffs: pd.DataFrame, reference_arm: str) -> str:
    arms = sorted({split_arm(a)[0] for a in diffs["arm"]} - {""}) if len(diffs) else []
    refs = sorted(set(diffs["ref_arm"]) - {""}) if len(diffs) else []
    reference_arm = refs[0] if len(refs) == 1 else reference_arm
    other = arms[0] if len(arms) == 1 else "rule"
    return f"{other} − {reference_arm}"


def _draw_differences(ax: plt.Axes, diffs: pd.DataFrame, opts: PlotOptions,
                      reference_arm: str) -> tuple[list[dict], list, str]:
    """Panel b: every non-reference arm's difference to the reference arm per matching (a line
    per arm x matching, and init) vs nominal size N, with the table's CI as error bars."""
    refs = sorted(set(diffs["ref_arm"]) - {""}) if len(diffs) else []
    reference_arm = refs[0] if len(refs) == 1 else reference_arm
    title = _diff_title(diffs, reference_arm)
    ax.set_title(f"b   {title} at matched size")
    d = diffs[np.isfinite(diffs["diff"])] if len(diffs) else diffs
    if d.empty:
        _panel_placeholder(ax, "No rows in eval/arm_differences.csv: no arm difference to draw.")
        return [], [], title
    d = _diff_lines(d)
    several = len({split_arm(a)[0] for a in d["arm"]}) > 1
    axis = PairsAxis.for_values(d["size"])
    records = []
    ax.axhline(0.0, color=TIE_COLOR, linewidth=0.7, zorder=1, gid="zero-difference")
    handles = []
    keys = sorted({*zip(d["arm"], d["matching"])}, key=_series_key)

    def label_of(arm: str, matching: str) -> str:
        return series_label(arm, matching) if several or split_arm(arm)[1] else f"{matching}-matched"

    d = d.assign(x_plot=axis.pos(d["size"].to_numpy()), line=[label_of(a, m) for a, m in zip(d["arm"], d["matching"])])
    labels = [label_of(*k) for k in keys]
    _lineplot(ax, d, "x_plot", "diff", "line", {lab: series_color(*k) for lab, k in zip(labels, keys)}, labels,
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
        handles.append(_series_handle(arm, matching, label=label))
        handles[-1].set_marker(marker)
        for (_, r), x_plot in zip(g.iterrows(), xp):
            n_models = r["n_seeds"]
            records.append(_record("b", "line", label, x=r["size"], x_plot=float(x_plot), y=r["diff"],
                                   y_low=r["ci_low"], y_high=r["ci_high"],
                                   n_models=int(n_models) if np.isfinite(n_models) else 0,
                                   interval="table CI", arm=arm, matching=matching, size=r["size"]))
    records.append(_record("b", "hline", "no difference (0)", y=0.0))
    axis.apply(ax, label=f"series size N ({reference_arm} pairs, log scale)")
    ax.set_ylabel("win-rate difference")
    handles.append(Line2D([], [], color=TIE_COLOR, linewidth=0.7, label="no difference", gid="optional"))
    return records, handles, title


def rule_comparison(diffs: pd.DataFrame | None, opts: PlotOptions, reference_arm: str) -> PlotResult:
    """Figure 5: the rules side by side, a panel per series size N > 0.

    x = the non-reference arms (rules, in :data:`RULE_ORDER`), y = ``diff`` (the arm's win rate
    minus the reference arm's, paired over questions and seeds, ``eval/arm_differences.csv``)
    with the table's ``ci_low``/``ci_high`` as error bars; one marker per matching (and init),
    side by side around each rule's position; 0 = no difference.
    """
    name = "rule_comparison"
    with paper_style(opts):
        d = diffs[np.isfinite(diffs["diff"].to_numpy(dtype=float))] if diffs is not None and len(diffs) else None
        if d is None or d.empty:
            return _placeholder(name, opts, "Rules vs the reference arm",
                                "No rows in eval/arm_differences.csv: no rule to compare.", [])
        d = _diff_lines(d)
        refs = sorted(set(d["ref_arm"]) - {""})
        reference_arm = refs[0] if len(refs) == 1 else reference_arm
        rules = sorted({split_arm(a)[0] for a in d["arm"]}, key=lambda a: _series_key((a, "prompt")))
        variants = sorted({(split_arm(a)[1], m) for a, m in zip(d["arm"], d["matching"])},
                          key=lambda v: (v[0], MATCHINGS_ORDER.index(v[1]) if v[1] in MATCHINGS_ORDER else 9))
        sizes = sorted(int(x) for x in set(d["size"]))
        fig = _new_figure(opts, 2.4)
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
                    records.append(_record(f"N={size}", "point", label, x=float(i), x_plot=x, y=float(r["diff"]),
                                           y_low=lo, y_high=hi, n_models=int(n_seeds) if np.isfinite(n_seeds) else 0,
                                           interval="table CI", arm=arm, matching=matching, size=size))
            ax.set_xticks(range(len(rules)))
            ax.set_xticklabels(rules, rotation=30, ha="right")
            ax.set_xlim(-0.6, len(rules) - 0.4)
            ax.set_title(f"N = {size}")
        axes[0].set_ylabel(f"win-rate difference vs {reference_arm}")
        legend = list(handles.values())
        legend.append(Line2D([], [], color=TIE_COLOR, linewidth=0.7, label=f"no difference to {reference_arm}"))
        _figure_legend(fig, legend, opts)
    return PlotResult(name, fig, plotted_frame(records), notes=[f"reference_arm={reference_arm}"])


def _placeholder(name: str, opts: PlotOptions, title: str, reason: str, missing: list[str]) -> PlotResult:
    return PlotResult(name, placeholder_figure(opts, title, reason), plotted_frame([]), placeholder=reason,
                      missing=list(missing))


# --------------------------------------------------------------------------------------------
# Figure 2: training evolution


def evolution(
    win_rates: pd.DataFrame,
    evolution_table: pd.DataFrame | None,
    opts: PlotOptions,
) -> PlotResult:
    """Figure 2: win rate vs training step, a panel per arm x matching, a line per size N.

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
            return _placeholder(name, opts, "Training evolution",
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
        # at its run's final step is the final model (prefsweep.winrate keeps only the final).
        run = ["arm", "matching", "size", "seed", "step"]
        same = ckpt.merge(finals[run], on=run, how="left", indicator=True)["_merge"].eq("both").to_numpy()
        points = pd.concat([ckpt[~same], finals], ignore_index=True)
        sizes = sorted(points["size"].unique())
        palette = dict(zip(sizes, sns.color_palette("crest", len(sizes))))
        series = sorted({*zip(ckpt["arm"], ckpt["matching"])}, key=_series_key)
        ncols = min(2 if opts.narrow else 3, len(series))
        nrows = math.ceil(len(series) / ncols)
        # Step 0 is the zero point (when the table has it), left of the axis break.
        axis = PairsAxis.for_values([*([0.0] if len(zero) else []), *points["step"]])
        fig = _new_figure(opts, 0.5 + 1.85 * nrows)
        axes = fig.subplots(nrows, ncols, squeeze=False, sharey=True, sharex=True)
        records: list[dict] = []
        all_y: list[float] = []
        for i, (arm, matching) in enumerate(series):
            ax = axes.flat[i]
            label = series_label(arm, matching)
            ax.set_title(label)
            _tie_line(ax)
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
                    records.append(_record(label, "line", f"N = {int(size)}", x=r["step"], x_plot=r["x_plot"],
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
                    records.append(_record(label, "final", f"N = {int(size)} final", x=r["x"],
                                           x_plot=axis.pos(r["x"]),
                                           y=r["y"], n_models=int(r["n_models"]), arm=arm, matching=matching,
                                           size=size, step=r["x"]))
            if panel_lines:
                ids = [f"n{int(n)}" for n in sizes]
                _lineplot(ax, pd.concat(panel_lines, ignore_index=True), "x_plot", "y", "size_id",
                          {f"n{int(n)}": c for n, c in palette.items()}, ids, markers=dict.fromkeys(ids, "o"),
                          gid=f"evolution:{label}", markersize=3)
            axis.apply(ax, label="")
            records.append(_record(label, "hline", _tie_handle(baseline).get_label(), y=0.5, arm=arm,
                                   matching=matching))
        for ax in axes.flat[len(series):]:
            ax.set_axis_off()
        for ax in axes.flat[max(0, len(series) - ncols): len(series)]:  # lowest panel of each column
            ax.tick_params(labelbottom=True)
        fig.supxlabel("training step (log scale)", fontsize=8)  # once: per-panel labels would collide
        for row in axes:
            row[0].set_ylabel(f"win rate vs {baseline_label(baseline)}")
        _win_rate_ylim(axes.flat[0], all_y)
        handles = [Line2D([], [], color=palette[s], marker="o", markersize=3, label=f"N = {int(s)}") for s in sizes]
        handles.append(Line2D([], [], color="0.5", marker="*", markersize=8, markeredgecolor="black",
                              markeredgewidth=0.5, linestyle="none", label="final model"))
        handles.append(_tie_handle(baseline))
        _figure_legend(fig, handles, opts, title="series size N")
    return PlotResult(name, fig, plotted_frame(records), notes=[f"judge={judge}", f"baseline={baseline}"],
                      missing=missing)


# --------------------------------------------------------------------------------------------
# Figure 3: voter groups


def accuracy_as_groups(accuracy_groups: pd.DataFrame, win_rates: pd.DataFrame) -> pd.DataFrame:
    """Per-group held-out pair accuracy (``eval/pair_accuracy_groups.csv``,
    :data:`prefsweep.pair_accuracy.GROUP_TABLE_COLUMNS`) in the shape :func:`voter_groups` reads:
    ``win_rate`` = the accuracy, the model's cell and training pairs from ``win_rates``."""
    cell = win_rates[["model_id", "kind", "arm", "matching", "size", "seed", "n_pairs"]].drop_duplicates("model_id")
    acc = accuracy_groups[["model_id", "group", "accuracy"]].rename(columns={"accuracy": "win_rate"})
    return acc.merge(cell, on="model_id", how="inner")


def voter_groups(groups: pd.DataFrame, opts: PlotOptions, baseline: str,
                 accuracy_groups: pd.DataFrame | None = None, win_rates: pd.DataFrame | None = None) -> PlotResult:
    """Figure 3: (a) win rate per voter group and series at the largest size N (bars: mean over
    seeds, error bars: interval); (b) one panel per group, win rate vs training pairs.

    When the judge gives no per-group verdicts (an LLM judge) and ``accuracy_groups`` has rows,
    the figure shows each group's held-out pair accuracy instead (how often a model ranks first
    what the group's own majority prefers; :mod:`prefsweep.pair_accuracy`), 0.5 being chance."""
    name = "groups"
    missing: list[str] = []
    notes: list[str] = []
    ylabel = f"win rate vs {baseline_label(baseline)}" if baseline else "win rate"
    tie = _tie_handle(baseline)
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
            return _placeholder(name, opts, "Win rate per voter group",
                                "No per-group win rates (eval/win_rates_groups.csv has no rows with a win rate: "
                                "the judge has no voter groups, or no model has a valid verdict).", missing)
        group_names = list(dict.fromkeys(g["group"]))
        series = sorted({*zip(g["arm"], g["matching"])}, key=_series_key)
        n_max = g["size"].max()
        ncols = min(2 if opts.narrow else 4, len(group_names))
        nrows_b = math.ceil(len(group_names) / ncols)
        fig = _new_figure(opts, 2.0 + 1.75 * nrows_b)
        gs = fig.add_gridspec(1 + nrows_b, ncols, height_ratios=[1.15] + [1.0] * nrows_b)
        ax_a = fig.add_subplot(gs[0, :])
        records: list[dict] = []
        # (a) bars at the largest size.
        top = aggregate_over_seeds(g[g["size"] == n_max], ["group", "arm", "matching"], "win_rate", opts.ci,
                                   x="n_pairs")
        width = 0.8 / len(series)
        _tie_line(ax_a)
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
                records.append(_record("a", "bar", series_label(arm, matching), x=r["x"], x_plot=xs[-1], y=r["y"],
                                       y_low=r["y_low"], y_high=r["y_high"], n_models=int(r["n_models"]),
                                       interval=r["interval"], arm=arm, matching=matching, size=n_max, group=grp))
            ax_a.bar(xs, ys, width=width * 0.92, color=series_color(arm, matching), zorder=2,
                     gid=f"bars:{series_label(arm, matching)}")
            ax_a.errorbar(xs, ys, yerr=[lo, hi], fmt="none", color="0.2", capsize=1.5, elinewidth=0.7,
                          capthick=0.7, zorder=3)
        records.append(_record("a", "hline", tie.get_label(), y=0.5))
        ax_a.set_xticks(range(len(group_names)), group_names)
        ax_a.set_xlim(-0.6, len(group_names) - 0.4)
        ax_a.set_xlabel("voter group")
        ax_a.set_ylabel(ylabel)
        ax_a.set_title(f"a   largest series size, N = {int(n_max)}")
        _win_rate_ylim(ax_a, [*top["y"], *top["y_low"], *top["y_high"], 0.0])
        # (b) per group vs training pairs.
        agg = aggregate_over_seeds(g, ["group", "arm", "matching", "size"], "win_rate", opts.ci, x="n_pairs")
        axis = PairsAxis.for_values(agg["x"])
        agg = _with_positions(agg, axis)
        first = None
        for i, grp in enumerate(group_names):
            ax = fig.add_subplot(gs[1 + i // ncols, i % ncols], sharey=first)
            first = first or ax
            sub = agg[agg["group"] == grp]
            _tie_line(ax)
            _draw_series(ax, sub, axis, gid_prefix=f"group:{grp}")
            # x label only under the lowest panel of each column.
            xlabel = "training pairs (log scale)" if ncols <= 2 else "pairs (log scale)"
            axis.apply(ax, label=xlabel if i + ncols >= len(group_names) else "")
            ax.set_title(("b   " if i == 0 else "") + grp)
            if i % ncols == 0:
                ax.set_ylabel(ylabel)
            else:
                ax.tick_params(labelleft=False)
            records += _series_records(sub, f"b:{grp}")
        if first is not None:
            _win_rate_ylim(first, [*agg["y"], *agg["y_low"], *agg["y_high"]])
        handles = [_series_handle(a, m) for a, m in series]
        handles.append(Patch(color="0.6", alpha=0.35, label=f"{opts.ci:g}% CI over seeds"))
        handles.append(tie)
        _figure_legend(fig, handles, opts)
    return PlotResult(name, fig, plotted_frame(records), notes=notes, missing=missing)


# --------------------------------------------------------------------------------------------
# Figure 4: length and position diagnostics


def length_and_order(win_rates: pd.DataFrame, opts: PlotOptions) -> PlotResult:
    """Figure 4: (a) mean answer length vs training pairs (mean over seeds, interval band);
    (b) position-flip rate of the judge per model (one dot per model, line = mean over seeds).
    SFT and baselines appear as dashed lines in both panels."""
    name = "length"
    with paper_style(opts):
        lines = series_rows(win_rates)
        if lines.empty:
            return _placeholder(name, opts, "Answer length and position flips",
                                "No DPO or zero-point rows in eval/win_rates.csv: nothing to draw.", [])
        refs = reference_rows(win_rates)
        _, baseline = comparison(win_rates)
        axis = PairsAxis.for_values(lines["n_pairs"])
        # Side by side; stacked in a one-column figure.
        fig = _new_figure(opts, 3.9 if opts.narrow else 2.45)
        ax_len, ax_flip = fig.subplots(2, 1) if opts.narrow else fig.subplots(1, 2)
        records: list[dict] = []
        handles: dict[str, Any] = {}
        # (a) length: mean_words, the win-rate step's whitespace word count.
        missing: list[str] = []
        ln = finite_rows(lines, "mean_words", "length", missing)
        if ln.empty:
            _panel_placeholder(ax_len, "No answer lengths (mean_words) in eval/win_rates.csv.")
        else:
            agg = _with_positions(aggregate_over_seeds(ln, ["arm", "matching", "size"], "mean_words", opts.ci,
                                                       x="n_pairs", fallback=None, bounds=(0, math.inf)), axis)
            _draw_series(ax_len, agg, axis)
            records += _series_records(agg, "a")
            for h in _draw_reference_lines(ax_len, refs, "mean_words", "a", records, fmt="{:.0f}"):
                handles.setdefault(h.get_label().rsplit(" (", 1)[0], h)
            # The answers every model is compared with (reference answers or the baseline model).
            blen = win_rates["baseline_mean_words"].dropna().unique()
            if len(blen) == 1:
                label = f"{baseline_label(baseline)} (baseline)"
                style = dict(color="0.35", linestyle=(0, (1, 1.2)), linewidth=1.0)
                ax_len.axhline(float(blen[0]), zorder=1, gid="hline:baseline-answers", **style)
                handles.setdefault(label, Line2D([], [], label=label, **style))
                records.append(_record("a", "hline", label, y=float(blen[0]), n_models=1))
            axis.apply(ax_len)
            ax_len.set_ylabel("mean answer length (words)")
        ax_len.set_title("a   answer length")
        # (b) position flips.
        fl = finite_rows(lines, "flip_rate", "flip rate", missing)
        if fl.empty:
            _panel_placeholder(ax_flip, "No flip_rate in eval/win_rates.csv\n(the judge is not asked "
                                        "both orders).")
        else:
            fl = fl[~((fl["size"] == 0) & fl.duplicated(["arm", "matching", "size"]))]
            agg = _with_positions(aggregate_over_seeds(fl, ["arm", "matching", "size"], "flip_rate", opts.ci,
                                                       x="n_pairs", fallback=None), axis)
            _draw_series(ax_flip, agg, axis, band=False)
            for (arm, matching), s in fl.groupby(["arm", "matching"]):
                xp = axis.pos(s["n_pairs"].to_numpy())
                ax_flip.scatter(xp, s["flip_rate"], s=9, color=series_color(arm, matching), alpha=0.55,
                                linewidths=0, zorder=4, marker=MATCHING_MARKERS.get(matching, "o"),
                                gid=f"models:{series_label(arm, matching)}")
                for (_, r), x_plot in zip(s.iterrows(), xp):
                    records.append(_record("b", "point", r["model_id"], x=r["n_pairs"], x_plot=float(x_plot),
                                           y=r["flip_rate"], n_models=1, arm=arm, matching=matching,
                                           size=r["size"]))
            records += _series_records(agg, "b")
            for h in _draw_reference_lines(ax_flip, refs, "flip_rate", "b", records):
                handles.setdefault(h.get_label().rsplit(" (", 1)[0], h)
            axis.apply(ax_flip)
            ax_flip.set_ylabel("flip rate (share of questions)")
            top = max(0.1, float(np.nanmax([*fl["flip_rate"], *refs["flip_rate"].fillna(0)])) * 1.15)
            ax_flip.set_ylim(0, min(1.0, top))
        ax_flip.set_title("b   judge position flips")
        series = sorted({*zip(lines["arm"], lines["matching"])}, key=_series_key)
        legend = [_series_handle(a, m) for a, m in series]
        legend.append(Patch(color="0.6", alpha=0.35, label=f"{opts.ci:g}% CI over seeds"))
        for k, h in handles.items():
            h.set_label(k)
            legend.append(h)
        _figure_legend(fig, legend, opts)
    return PlotResult(name, fig, plotted_frame(records), missing=missing)


# --------------------------------------------------------------------------------------------
# Figures 6 and 7: welfare and distortion (ground truth of the synthetic electorate)


def _welfare_lines(welfare: pd.DataFrame, measure: str, group: str, missing: list[str],
                   what: str) -> pd.DataFrame:
    rows = welfare[(welfare["measure"] == measure) & (welfare["group"] == group)]
    return finite_rows(series_rows(rows), "value", what, missing)


def _welfare_references(ax: plt.Axes, welfare: pd.DataFrame, measure: str, group: str, panel: str,
                        records: list[dict]) -> list[Line2D]:
    """Dashed lines for the models off the lines (base or SFT when it is no init, baselines)."""
    rows = welfare[(welfare["measure"] == measure) & (welfare["group"] == group) & (welfare["arm"] == "")]
    rows = rows[np.isfinite(rows["value"].to_numpy(dtype=float))]
    handles = []
    for i, (_, r) in enumerate(rows.drop_duplicates("model_id").iterrows()):
        style = _hline_style(None if r["kind"] == "sft" else "base" if r["kind"] == "base" else i)
        label = model_label(r)
        ax.axhline(r["value"], zorder=1, gid=f"hline:{r['model_id']}", **style)
        handles.append(Line2D([], [], label=label, **style))
        records.append(_record(panel, "hline", label, y=r["value"], n_models=1))
    return handles


def welfare_vs_pairs(welfare: pd.DataFrame, opts: PlotOptions) -> PlotResult:
    """Figure 5: welfare vs actual training pairs per arm x matching, mean over seeds with the
    interval band (a single model: its bootstrap interval over questions): (a) all voters
    (utilitarian), (b) the worst-off group (egalitarian), then one panel per voter group. The
    panels share the y axis (mean utility)."""
    name = "welfare"
    missing: list[str] = []
    with paper_style(opts):
        groups = list(dict.fromkeys(welfare.loc[welfare["measure"] == "group", "group"])) if len(welfare) else []
        panels = [("utilitarian", "", "all voters (utilitarian)"), ("egalitarian", "", "worst-off group (egalitarian)")]
        panels += [("group", g, f"group {g}") for g in groups]
        data = {p: _welfare_lines(welfare, p[0], p[1], missing, "eval/welfare.csv") for p in panels}
        if all(d.empty for d in data.values()):
            return _placeholder(name, opts, "Welfare vs training pairs",
                                "No DPO or zero-point rows with a welfare value in eval/welfare.csv: nothing to draw.",
                                missing)
        aggs = {p: aggregate_over_seeds(d, ["arm", "matching", "size"], "value", opts.ci, x="n_pairs", bounds=None)
                for p, d in data.items()}
        axis = PairsAxis.for_values(pd.concat([a["x"] for a in aggs.values()]))
        ncols = min(2 if opts.narrow else 3, len(panels))
        nrows = math.ceil(len(panels) / ncols)
        fig = _new_figure(opts, 0.5 + 1.75 * nrows)
        axes = fig.subplots(nrows, ncols, squeeze=False, sharey=True)
        records: list[dict] = []
        handles: dict[str, Any] = {}
        all_y: list[float] = []
        for i, (p, label) in enumerate(zip(panels, [t for _, _, t in panels])):
            ax = axes.flat[i]
            letter = "abcdefghijklmnopqrstuvwxyz"[i]
            panel = f"{letter}:{p[0]}" + (f":{p[1]}" if p[1] else "")
            agg = _with_positions(aggs[p], axis)
            _draw_series(ax, agg, axis, gid_prefix=f"welfare:{p[0]}:{p[1]}")
            records += [{**r, "group": p[1]} for r in _series_records(agg, panel)]
            for h in _welfare_references(ax, welfare, p[0], p[1], panel, records):
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
                        key=_series_key)
        legend = [_series_handle(a, m) for a, m in series]
        legend.append(Patch(color="0.6", alpha=0.35, label=f"{opts.ci:g}% CI over seeds"))
        legend += list(handles.values())
        _figure_legend(fig, legend, opts)
    return PlotResult(name, fig, plotted_frame(records), missing=missing)


def distortion_vs_pairs(welfare: pd.DataFrame, opts: PlotOptions) -> PlotResult:
    """Figure 6: distortion (best achievable welfare over the model's, summed over questions;
    1 = the best achievable answer everywhere) vs actual training pairs per arm x matching, mean
    over seeds with the interval band. Infinite distortions (every answer at the bottom of every
    voter's scale) are left out and named."""
    name = "distortion"
    missing: list[str] = []
    with paper_style(opts):
        lines = _welfare_lines(welfare, "distortion", "", missing, "eval/welfare.csv") if len(welfare) else welfare
        if lines.empty:
            return _placeholder(name, opts, "Distortion vs training pairs",
                                "No DPO or zero-point rows with a finite distortion in eval/welfare.csv: nothing to "
                                "draw.", missing)
        agg = aggregate_over_seeds(lines, ["arm", "matching", "size"], "value", opts.ci, x="n_pairs",
                                   bounds=(1.0, math.inf))
        axis = PairsAxis.for_values(agg["x"])
        agg = _with_positions(agg, axis)
        fig = _new_figure(opts, 2.55)
        ax = fig.subplots()
        records = _series_records(agg, "a")
        ax.axhline(1.0, color=TIE_COLOR, linewidth=0.7, zorder=1, gid="optimum")
        records.append(_record("a", "hline", "best achievable (1)", y=1.0))
        _draw_series(ax, agg, axis)
        ref_handles = _welfare_references(ax, welfare, "distortion", "", "a", records)
        axis.apply(ax)
        ax.set_ylabel("distortion (best / achieved welfare)")
        finite = [y for y in [*agg["y"], *agg["y_low"], *agg["y_high"], 1.0] if np.isfinite(y)]
        ax.set_ylim(0.98, max(finite) + max(0.05, 0.08 * (max(finite) - 1.0)))
        legend = [_series_handle(a, m) for a, m in sorted({*zip(agg["arm"], agg["matching"])}, key=_series_key)]
        legend.append(Patch(color="0.6", alpha=0.35, label=f"{opts.ci:g}% CI over seeds"))
        legend += ref_handles
        legend.append(Line2D([], [], color=TIE_COLOR, linewidth=0.7, label="best achievable (1)"))
        _figure_legend(fig, legend, opts)
    return PlotResult(name, fig, plotted_frame(records), missing=missing)


def build_welfare(welfare: pd.DataFrame, opts: PlotOptions, only: Sequence[str] = WELFARE_FIGURES) -> list[PlotResult]:
    """The figures of :data:`WELFARE_FIGURES` named in ``only``, from the welfare table."""
    welfare = init_lines(welfare)
    builders = {"welfare": lambda: welfare_vs_pairs(welfare, opts),
                "distortion": lambda: distortion_vs_pairs(welfare, opts)}
    return [builders[n]() for n in WELFARE_FIGURES if n in only]


# --------------------------------------------------------------------------------------------
# All figures and saving


def build_all(
    win_rates: pd.DataFrame,
    groups: pd.DataFrame,
    diffs: pd.DataFrame | None,
    evolution_table: pd.DataFrame | None,
    opts: PlotOptions,
    reference_arm: str,
    only: Sequence[str] = FIGURES,
    accuracy_groups: pd.DataFrame | None = None,
) -> list[PlotResult]:
    """Build the figures named in ``only`` (default: all of :data:`FIGURES`) from the input
    tables (several inits: lines per init, :func:`init_lines`; ``accuracy_groups``: per-group
    held-out accuracy, the groups figure's fallback)."""
    judge, baseline = comparison(win_rates) if len(win_rates) else ("", "")
    win_rates, groups, evolution_table = init_lines(win_rates), init_lines(groups), init_lines(evolution_table)
    builders = {
        "win_rate_vs_pairs": lambda: win_rate_vs_pairs(win_rates, diffs, opts, reference_arm),
        "evolution": lambda: evolution(win_rates, evolution_table, opts),
        "groups": lambda: voter_groups(groups, opts, baseline, accuracy_groups, win_rates),
        "length": lambda: length_and_order(win_rates, opts),
        "rule_comparison": lambda: rule_comparison(
            diffs[diffs["judge"] == judge] if diffs is not None and len(diffs) else diffs, opts, reference_arm),
    }
    unknown = [n for n in only if n not in builders and n not in WELFARE_FIGURES]
    if unknown:
        raise ValueError(f"unknown figure(s) {unknown}; known: {list(builders)}")
    return [builders[n]() for n in FIGURES if n in only]


def save_result(result: PlotResult, out_dir: str | os.PathLike, opts: PlotOptions) -> list[Path]:
    """Write ``<name>.<fmt>`` for every format and ``<name>.csv`` atomically; close the figure."""
    out_dir = Path(out_dir)
    written = []
    with paper_style(opts):
        for fmt in opts.formats:
            buf = io.BytesIO()
            # No timestamps in the files: equal figures give equal bytes.
            metadata = {"CreationDate": None} if fmt == "pdf" else ({"Date": None} if fmt == "svg" else None)
            result.figure.savefig(buf, format=fmt, dpi=opts.dpi, metadata=metadata)
            path = out_dir / f"{result.name}.{fmt}"
            atomic_write_bytes(path, buf.getvalue())
            written.append(path)
    csv_path = out_dir / f"{result.name}.csv"
    atomic_write_text(csv_path, result.data.to_csv(index=False, float_format="%.6g"))
    written.append(csv_path)
    plt.close(result.figure)
    return written


def write_done(out_dir: str | os.PathLike, results: list[PlotResult], files: dict[str, list[Path]],
               inputs: dict[str, str | None]) -> Path:
    """``done.json``: what was written, which figures are placeholders (and why), input hashes."""
    path = Path(out_dir) / "done.json"
    atomic_write_json(path, {
        "figures": {n: [str(p) for p in ps] for n, ps in files.items()},
        "placeholders": {r.name: r.placeholder for r in results if r.placeholder},
        "notes": {r.name: r.notes for r in results if r.notes},
        "missing": {r.name: r.missing for r in results if r.missing},
        "inputs": {k: (sha256_file(v) if v and Path(v).is_file() else None) for k, v in inputs.items()},
    })
    return path
