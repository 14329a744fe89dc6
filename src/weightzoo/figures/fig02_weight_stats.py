"""Fig. 2 (3, 4) — weight strength: per layer, mean (x) vs standard deviation (y) of each
trial's weights, coloured by group. Rows = experiments (datasets) of one model family,
columns = layers (input side first). One dot per trial; a trial is left out of a panel
when any of its weights in that layer is not finite.

Drawn from the features table (columns ``w_mean``, ``w_std``; ``docs/features.md``).
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd
from matplotlib.axes import Axes

from ..analysis.features import layer_labels, layer_values, load_tables, trial_counts
from .common import (
    DPI,
    add_group_legend,
    dataset_label,
    figure_models,
    new_figure,
    note_panel,
    note_skipped,
    save_figure,
    scatter_by_group,
    set_titles,
)


def _panel(ax: Axes, table: pd.DataFrame, label: str, which: str) -> None:
    means, n_skipped = layer_values(table, "w_mean", [label], which)
    stds, _ = layer_values(table, "w_std", [label], which)
    ax.set_title(f"{dataset_label(table['dataset'].iat[0])} — {label}", fontsize=10)
    if means.empty:
        note_panel(ax, f"no trials with finite {label} weights")
        return
    scatter_by_group(ax, means[label].to_numpy(), stds[label].to_numpy(), means["group"].to_numpy())
    ax.set_xlabel(f"mean of {label} weights")
    ax.set_ylabel("standard deviation")
    note_skipped(ax, n_skipped)


def make(
    sources: Sequence[str],
    group_paths: Sequence[str],
    out_pdf: str,
    out_png: str,
    *,
    number: int = 2,
    weights: str = "final",
    dpi: int = DPI,
) -> None:
    """Draw Fig. 2 for the experiments of one model family (rows) and their layers (columns).

    ``sources``: features tables (``.parquet``), or zoos (``.h5``) whose table is computed
    here from them and ``group_paths``; ``weights``: ``final`` (trained, the paper's
    figure) or ``initial`` weights.
    """
    tables = load_tables(sources, group_paths)
    layers = [layer_labels(t) for t in tables]
    fig, axes = new_figure(len(tables), max(len(x) for x in layers))
    for i, (table, labels) in enumerate(zip(tables, layers, strict=True)):
        for j in range(axes.shape[1]):
            if j < len(labels):
                _panel(axes[i, j], table, labels[j], weights)
            else:
                note_panel(axes[i, j], "no such layer")
        add_group_legend(axes[i, 0], trial_counts(table))
    set_titles(
        fig,
        f"Fig. {number} — weight mean vs std per layer, "
        f"{figure_models(t['model'].iat[0] for t in tables)}",
        f"One dot per trial: mean (x) and standard deviation (y) of its {weights} weights of "
        "the layer, coloured by accuracy group (legend: trials per group in that experiment).",
    )
    save_figure(fig, out_pdf, out_png, dpi)
