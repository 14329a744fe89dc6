"""Fig. 8 (9, 10) — node strength compared between consecutive layers, coloured by group.

The strength of node i of a layer is s_i = Σ_j |w_ij| over its incoming weights (the
layer's ``incoming_axes``; for ``nn.Linear`` ``[out, in]`` the row sum of |W|). Widths
differ between trials, so nodes cannot be paired across trials or layers; each trial is
therefore reduced to one number per layer, its mean (or median) node strength, and a
panel plots layer l (x) against layer l+1 (y), one dot per trial. Rows = experiments
(datasets) of one model family, columns = pairs of consecutive layers (FC1 vs FC2, FC2 vs
FC3). A trial is left out of a panel when any weight of the two layers is not finite.

Drawn from the features table (``strength_mean`` / ``strength_median``; ``docs/features.md``).
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

REDUCTIONS = ("mean", "median")


def _panel(
    ax: Axes, table: pd.DataFrame, pair: tuple[str, str], reduce: str, which: str, log: bool
) -> None:
    first, second = pair
    values, n_skipped = layer_values(table, f"strength_{reduce}", pair, which)
    ax.set_title(f"{dataset_label(table['dataset'].iat[0])} — {first} vs {second}", fontsize=10)
    if values.empty:
        note_panel(ax, f"no trials with finite {first} and {second} weights")
        return
    scatter_by_group(
        ax, values[first].to_numpy(), values[second].to_numpy(), values["group"].to_numpy()
    )
    if log:
        ax.set_xscale("log")
        ax.set_yscale("log")
    ax.set_xlabel(f"{reduce} node strength {first}")
    ax.set_ylabel(f"{reduce} node strength {second}")
    note_skipped(ax, n_skipped)


def make(
    sources: Sequence[str],
    group_paths: Sequence[str],
    out_pdf: str,
    out_png: str,
    *,
    number: int = 8,
    reduce: str = "mean",
    log_axes: bool = False,
    weights: str = "final",
    dpi: int = DPI,
) -> None:
    """Draw Fig. 8 for the experiments of one model family (rows) and layer pairs (columns).

    ``sources``: features tables (``.parquet``), or zoos (``.h5``) whose table is computed
    here from them and ``group_paths``; ``reduce``: ``mean`` or ``median`` node strength
    per trial and layer; ``log_axes``: log x and y; ``weights``: ``final`` or ``initial``.
    """
    if reduce not in REDUCTIONS:
        raise ValueError(f"reduce must be one of {REDUCTIONS}, got {reduce!r}")
    tables = load_tables(sources, group_paths)
    pairs = [list(zip(x[:-1], x[1:], strict=True)) for x in (layer_labels(t) for t in tables)]
    fig, axes = new_figure(len(tables), max(1, max(len(p) for p in pairs)))
    for i, (table, table_pairs) in enumerate(zip(tables, pairs, strict=True)):
        for j in range(axes.shape[1]):
            if j < len(table_pairs):
                _panel(axes[i, j], table, table_pairs[j], reduce, weights, log_axes)
            else:
                note_panel(axes[i, j], "no such pair of layers")
        add_group_legend(axes[i, 0], trial_counts(table))
    set_titles(
        fig,
        f"Fig. {number} — node strength of consecutive layers, "
        f"{figure_models(t['model'].iat[0] for t in tables)}",
        f"Node strength s_i = Σ_j |w_ij| over incoming {weights} weights. Widths differ "
        f"across trials, so each trial is one dot: its {reduce} node strength in layer l (x) "
        "vs layer l+1 (y), coloured by accuracy group.",
    )
    save_figure(fig, out_pdf, out_png, dpi)
