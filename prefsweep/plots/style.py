"""How a series and a reference model look in every figure: colors, markers, line styles, labels.

A series (a line) is an arm x matching, or with several inits an ``arm|init`` x matching
(:func:`prefsweep.plots.rows.init_lines`). Its color is fixed by the arm x matching whatever
subset an experiment has (:data:`SERIES_COLORS`, then one hue per rule of :data:`RULE_ORDER`),
so a series keeps its color in every figure and across experiments; its marker is its
matching's, its dashes its init's (solid: the first init). Models off the lines (SFT, base,
baselines) are dashed horizontal lines (:func:`hline_style`).
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from typing import Any

import pandas as pd
import seaborn as sns

from prefsweep.plots.rows import split_arm


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
#: Marker of each matching, and the order matchings are listed in.
MATCHING_MARKERS = {"shared": "o", "prompt": "^", "size": "s"}
MATCHINGS_ORDER = ("shared", "prompt", "size")
_SERIES_ORDER = list(SERIES_COLORS)
#: Line styles of the inits of a list ``dpo.init``, in config order (solid, dashed).
INIT_DASHES = ("", (4, 1.6), (1.2, 1.2))
#: Horizontal reference models: SFT black, base grey, baselines in colors no series uses.
_HLINE_COLORS = [_CB[5], _CB[7], _CB[6], _CB[8]]
_HLINE_DASHES = [(0, (5, 2)), (0, (1.5, 1.5)), (0, (6, 2, 1.5, 2)), (0, (3, 1, 1, 1, 1, 1))]
#: The tie line (win rate 0.5) and the no-difference line (0).
TIE_COLOR = "0.55"


def series_label(arm: str, matching: str) -> str:
    """Legend text of a line: ``arm (matching)``, with ``, from <init>`` when it has an init."""
    base, init = split_arm(arm)
    return f"{base} ({matching})" + (f", from {init}" if init else "")


def _mix(color: tuple[float, float, float], other: float, share: float) -> tuple[float, float, float]:
    """``color`` moved ``share`` of the way towards the grey level ``other``."""
    return tuple(float(c * (1 - share) + other * share) for c in color)


def series_color(arm: str, matching: str) -> tuple[float, float, float]:
    """Color of a line: :data:`SERIES_COLORS`, else its rule's hue (darker when size-matched);
    the same for every init of an arm x matching."""
    arm, _ = split_arm(arm)
    if (arm, matching) in SERIES_COLORS:
        return SERIES_COLORS[(arm, matching)]
    if arm in RULE_ORDER:
        hue = _RULE_HUES[RULE_ORDER.index(arm) % len(_RULE_HUES)]
    else:  # a stable hash (str hash() changes between processes)
        hue = _RULE_HUES[zlib.crc32(arm.encode()) % len(_RULE_HUES)]
    return _mix(hue, 0.0, 0.35) if matching == "size" else tuple(hue)


def series_dashes(arm: str, inits: Sequence[str] = ("sft", "base")) -> Any:
    """Line style of a line's init (:data:`INIT_DASHES`; solid without an init)."""
    _, init = split_arm(arm)
    if not init:
        return ""
    return INIT_DASHES[min(list(inits).index(init) if init in inits else 0, len(INIT_DASHES) - 1)]


def series_key(key: tuple[str, str]) -> tuple:
    """Sort key of an ``(arm, matching)`` line: palette order, then :data:`RULE_ORDER`, then name, init."""
    arm, init = split_arm(key[0])
    base = (arm, key[1])
    order = _SERIES_ORDER.index(base) if base in _SERIES_ORDER else len(_SERIES_ORDER)
    rule = RULE_ORDER.index(arm) if arm in RULE_ORDER else len(RULE_ORDER)
    return (order, rule, arm, key[1], init)


def hline_style(i_baseline: int | None | str) -> dict[str, Any]:
    """Line style of a horizontal reference model: SFT (None), base ("base"), else the i-th baseline."""
    if i_baseline is None:  # SFT
        return dict(color="0.15", linestyle=(0, (5, 2)), linewidth=1.0)
    if i_baseline == "base":
        return dict(color="0.45", linestyle=(0, (1, 1.2)), linewidth=1.1)
    j = i_baseline % len(_HLINE_COLORS)
    return dict(color=_HLINE_COLORS[j], linestyle=_HLINE_DASHES[(j + 1) % len(_HLINE_DASHES)], linewidth=1.0)


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
