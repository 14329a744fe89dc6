"""Relative weight change (RWC) per layer over the epochs, per accuracy group (not in the
paper: Agrawal et al. 2020's view of training, on the zoo's recorded layer dynamics).

Grid: one row per experiment of the model (dataset), one column per analysed layer, input
side first. Per group a line for the median over its trials and a band from the 25th to
the 75th percentile. The values come from the RWC data
(:mod:`weightzoo.analysis.figuredata.rwc`); this module only draws. The y axis is
logarithmic (RWC falls by orders of magnitude over training) unless a median is not
positive.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pandas as pd
from matplotlib.axes import Axes

from ..analysis.figuredata.store import FigureData, group_rules, read_all
from . import common as c


def _draw_layer(ax: Axes, bands: pd.DataFrame) -> None:
    """Median line and interquartile band of each group in one layer's panel."""
    for group in c.DRAW_ORDER:
        mine = bands[bands["group"] == group].sort_values("epoch")
        if mine.empty:
            continue
        color = c.GROUP_COLORS[group]
        ax.plot(mine["epoch"], mine["median"], color=color, linewidth=1.2)
        ax.fill_between(mine["epoch"], mine["q25"], mine["q75"], color=color, alpha=0.2, lw=0)
    if (bands["median"] > 0).all() and (bands["q25"] > 0).all():
        ax.set_yscale("log")


def _row(axes: Sequence[Axes], exp: FigureData, layers: list[str]) -> None:
    for ax, layer in zip(axes, layers, strict=True):
        mine = exp.rows_of(layer)
        ax.set_title(f"{c.experiment_title(exp.model, exp.dataset)} · {layer}", fontsize=9)
        ax.set_xlabel("epoch")
        if mine.empty:
            c.note_panel(ax, f"no {layer} layer in this experiment")
            continue
        _draw_layer(ax, mine)
        c.note_skipped(ax, exp.panel(layer)["n_skipped"])
    axes[0].set_ylabel("relative weight change")
    c.add_group_legend(axes[0], exp.counts, marker="")


def draw(
    inputs: Mapping[str, Sequence[str]],
    out_pdf: str,
    out_png: str,
    *,
    number: int = 0,
    dpi: int = c.DPI,
) -> None:
    """Draw the RWC figure from the RWC data ``inputs["data"]`` of one model family's
    experiments. ``number``: 0, not a paper figure, not shown."""
    experiments = read_all(inputs["data"], "rwc")
    layers = list(dict.fromkeys(label for e in experiments for label in e.layers))
    fig, axes = c.new_figure(len(experiments), len(layers), panel_size=(3.2, 2.6))
    for row, exp in zip(axes, experiments, strict=True):
        _row(row, exp, layers)
    c.finish(
        fig,
        f"Relative weight change per layer over training, "
        f"{c.figure_models(e.model for e in experiments)}",
        "RWC of a layer in epoch t: mean over its weights of |w(t) − w(t−1)| / "
        "(|w(t−1)| + 1e-8) (Agrawal et al. 2020; docs/dynamics.md). Per accuracy group, "
        "the line is the median over its trials and the band spans the 25th to 75th "
        "percentile (legend: trials per group). Rows: datasets; columns: layers, input "
        "side first.",
        group_rules(experiments),
        (out_pdf, out_png),
        dpi,
    )
