"""Accuracy kept by networks rebuilt from predictor networks, against the compression
ratio: one panel per experiment, a line per accuracy group (median, interquartile band),
the shared representation as a separate marker. Drawing only: the numbers are
:func:`weightzoo.analysis.reconstruct.summary.accuracy_curves` of the reconstruction
tables that rule reconstruct wrote."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pandas as pd
from matplotlib.ticker import NullLocator

from ..analysis.reconstruct.summary import accuracy_curves
from .common import DRAW_ORDER, GROUP_COLORS, experiment_title, finish, new_figure, note_panel


def _panel(ax, curves: pd.DataFrame, title: str) -> None:
    if curves.empty:
        note_panel(ax, "no reconstructed trials")
        return
    for group in DRAW_ORDER:
        own = curves[(curves["kind"] == "own") & (curves["group"] == group)].sort_values("ratio")
        color = GROUP_COLORS[group]
        if not own.empty:
            n = int(own["n"].max())
            ax.plot(own["ratio"], own["drop_median"], marker="o", markersize=3, color=color,
                    label=f"{group} (n={n})")  # fmt: skip
            ax.fill_between(own["ratio"], own["drop_q25"], own["drop_q75"], color=color,
                            alpha=0.15, linewidth=0)  # fmt: skip
        shared = curves[(curves["kind"] == "shared") & (curves["group"] == group)]
        if not shared.empty:
            ax.scatter(shared["ratio"], shared["drop_median"], marker="*", s=60, color=color,
                       edgecolors="k", linewidths=0.4)  # fmt: skip
    ax.axhline(0.5, color="0.5", linewidth=0.8, linestyle=":")
    ax.set_xscale("log")
    # only the configured ratios are labelled (a shared star's mean ratio may sit close
    # to one and its label would overprint it)
    ticks = sorted(curves.loc[curves["kind"] == "own", "ratio"].dropna().unique())
    ax.set_xticks(ticks, [f"{t:.2g}" for t in ticks], fontsize=7)
    ax.xaxis.set_minor_locator(NullLocator())
    ax.set_xlabel("ratio: predictor / network parameters")
    ax.set_ylabel("accuracy drop (points)")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=6, loc="best")


def draw(
    inputs: Mapping[str, Sequence[str]], out_pdf: str, out_png: str, *, number=0, dpi=150
) -> None:
    """Draw the figure from the reconstruction tables ``inputs["reconstruct"]``."""
    from ..analysis.reconstruct.summary import read_table

    tables = [read_table(p) for p in inputs["reconstruct"]]
    curves = accuracy_curves(pd.concat(tables, ignore_index=True)) if tables else pd.DataFrame()
    experiments = list(dict.fromkeys(curves["experiment"])) if len(curves) else []
    fig, axes = new_figure(1, max(1, len(experiments)), (3.6, 3.2))
    for ax, experiment in zip(axes[0], experiments or [None], strict=True):
        part = curves[curves["experiment"] == experiment] if experiment else curves
        title = experiment_title(part["model"].iat[0], part["dataset"].iat[0]) if len(part) else ""
        _panel(ax, part, title)
    finish(
        fig,
        "Accuracy kept by networks rebuilt from predictor networks",
        "Median drop of test accuracy (points; band: interquartile range) of each trial "
        "rebuilt from its own predictor network, against the compression ratio, per accuracy "
        "group; stars: the zoo's shared representation (one predictor per architecture and a "
        "latent code per trial) at its mean ratio per trial. Dotted: 0.5 points.",
        {},
        (out_pdf, out_png),
        dpi,
    )
