"""The broken log axis of training pairs (or steps): the zero point drawn left of an axis break."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.ticker import FixedLocator, FuncFormatter, NullFormatter


#: Decades between the zero point's stand-in position and the smallest positive x.
ZERO_GAP_DECADES = 0.7


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

    def apply(self, ax: Axes, label: str = "training pairs (log scale)") -> None:
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
        """Tick label: "0" at the zero point, thousands as "k"."""
        if self.zero and math.isclose(x, self.x_zero):
            return "0"
        if x >= 1000:
            return f"{x / 1000:g}k"
        return f"{x:g}"


def with_positions(agg: pd.DataFrame, axis: PairsAxis) -> pd.DataFrame:
    """A copy of ``agg`` (rows with an ``x``) with ``x_plot``, each x's position on ``axis``."""
    agg = agg.copy()
    agg["x_plot"] = axis.pos(agg["x"].to_numpy()) if len(agg) else []
    return agg
