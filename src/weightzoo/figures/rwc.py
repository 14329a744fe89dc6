"""Relative weight change (RWC) per layer over the epochs, per accuracy group (not in the
paper: Agrawal et al. 2020's view of training, on the zoo's recorded layer dynamics).

Grid: one row per experiment of the model (dataset), one column per analysed layer, input
side first. Per group a line for the median over its trials and a band from the 25th to
the 75th percentile. The values come from :mod:`weightzoo.analysis.dynamics`; this module
only draws. The y axis is logarithmic (RWC falls by orders of magnitude over training)
unless a median is not positive.
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd
from matplotlib.axes import Axes

from ..analysis.dynamics import dynamics_long, group_bands, nonfinite_trials
from ..analysis.trials import Experiment, load_experiments
from .common import (
    DPI,
    DRAW_ORDER,
    GROUP_COLORS,
    add_group_legend,
    experiment_title,
    figure_models,
    new_figure,
    note_panel,
    note_skipped,
    save_figure,
    set_titles,
)


def _draw_layer(ax: Axes, bands: pd.DataFrame) -> None:
    """Median line and interquartile band of each group in one layer's panel."""
    for group in DRAW_ORDER:
        mine = bands[bands["group"] == group].sort_values("epoch")
        if mine.empty:
            continue
        color = GROUP_COLORS[group]
        ax.plot(mine["epoch"], mine["median"], color=color, linewidth=1.2)
        ax.fill_between(mine["epoch"], mine["q25"], mine["q75"], color=color, alpha=0.2, lw=0)
    if (bands["median"] > 0).all() and (bands["q25"] > 0).all():
        ax.set_yscale("log")


def _row(axes: Sequence[Axes], exp: Experiment, layers: list[str]) -> None:
    long = dynamics_long(exp.zoo, exp.trial_groups, "rwc")
    bands = group_bands(long)
    skipped = nonfinite_trials(long)
    for ax, layer in zip(axes, layers, strict=True):
        mine = bands[bands["layer"] == layer]
        ax.set_title(f"{experiment_title(exp.zoo.model, exp.zoo.dataset)} · {layer}", fontsize=9)
        ax.set_xlabel("epoch")
        if mine.empty:
            note_panel(ax, f"no {layer} layer in this experiment")
            continue
        _draw_layer(ax, mine)
        note_skipped(ax, skipped)
    axes[0].set_ylabel("relative weight change")
    add_group_legend(axes[0], exp.counts(), marker="")


def make(
    zoo_paths: Sequence[str],
    group_paths: Sequence[str],
    out_pdf: str,
    out_png: str,
    *,
    number: int = 0,
    dpi: int = DPI,
) -> None:
    """Draw the RWC figure of the experiments given (their zoos and groups files).
    ``number``: the workflow passes the registry's; 0, not a paper figure, not shown."""
    experiments = load_experiments(zoo_paths, group_paths, weights=())
    layers = list(dict.fromkeys(label for e in experiments for label in e.layer_labels()))
    fig, axes = new_figure(len(experiments), len(layers), panel_size=(3.2, 2.6))
    for row, exp in zip(axes, experiments, strict=True):
        _row(row, exp, layers)
    models = figure_models(e.zoo.model for e in experiments)
    set_titles(
        fig,
        f"Relative weight change per layer over training, {models}",
        "RWC of a layer in epoch t: mean over its weights of |w(t) − w(t−1)| / "
        "(|w(t−1)| + 1e-8) (Agrawal et al. 2020; docs/dynamics.md). Per accuracy group, "
        "the line is the median over its trials and the band spans the 25th to 75th "
        "percentile (legend: trials per group). Rows: datasets; columns: layers, input "
        "side first.",
    )
    save_figure(fig, out_pdf, out_png, dpi)
