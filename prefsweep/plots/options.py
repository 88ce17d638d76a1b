"""The config section ``plots`` as options, the paper's rc style, and new figures at its width.

:class:`PlotOptions` is built from a job's config slice only (no defaults here: the schema,
workflow/schemas/config.schema.yaml, is their one home). :func:`paper_style` is the context every
figure is drawn and saved in: 8 pt text, 9 pt titles, TrueType fonts in PDF and SVG.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import matplotlib

matplotlib.use("Agg")  # the workflow and the tests run headless

import matplotlib.pyplot as plt  # noqa: E402
import seaborn as sns  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from prefsweep.config import ConfigError, schema_properties  # noqa: E402
from prefsweep.eval.inputs import config_value  # noqa: E402


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
        """How a Student-t interval over seeds is named in the plotted-values tables."""
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


def new_figure(opts: PlotOptions, height_in: float) -> Figure:
    """A figure ``plots.width_in`` wide and ``height_in`` high, laid out by matplotlib's constrained layout."""
    return plt.figure(figsize=(opts.width_in, height_in), layout="constrained")
