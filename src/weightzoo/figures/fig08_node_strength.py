"""Fig. 8 (9, 10) — node strength compared between consecutive layers, coloured by group.

The strength of node i of a layer is s_i = Σ_j |w_ij| over its incoming weights (the
layer's ``incoming_axes``; for ``nn.Linear`` ``[out, in]`` the row sum of |W|). Widths
differ between trials, so nodes cannot be paired across trials or layers; each trial is
therefore reduced to one number per layer, its mean (or median) node strength, and a
panel plots layer l (x) against layer l+1 (y), one dot per trial. Rows = experiments
(datasets) of one model family, columns = pairs of consecutive layers (FC1 vs FC2, FC2 vs
FC3). A trial is left out of a panel when any weight of the two layers is not finite.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from matplotlib.axes import Axes

from ..models import LayerInfo
from .common import (
    DPI,
    Experiment,
    add_group_legend,
    dataset_label,
    figure_models,
    load_experiments,
    new_figure,
    note_panel,
    note_skipped,
    save_figure,
    scatter_by_group,
    set_titles,
    trial_features,
)

REDUCTIONS = {"mean": np.mean, "median": np.median}


def node_strengths(w: np.ndarray, layer: LayerInfo) -> np.ndarray:
    """``[T, nodes]``: Σ|w| over the incoming axes of each trial's weight tensor."""
    axes = tuple(a + 1 for a in layer.incoming_axes)  # +1: leading trial axis
    s = np.abs(w).sum(axis=axes, dtype=np.float64)
    return s.reshape(len(w), -1)


def reduced_strength(reduce: str):
    """Feature function: one number per trial, the ``reduce`` of its node strengths."""
    fn = REDUCTIONS[reduce]
    return lambda w, layer: fn(node_strengths(w, layer), axis=1)[:, None]


def _panel(
    ax: Axes, exp: Experiment, pair: tuple[str, str], reduce: str, which: str, log: bool
) -> None:
    first, second = pair
    feats = trial_features(exp, pair, reduced_strength(reduce), which)
    ax.set_title(f"{dataset_label(exp.zoo.dataset)} — {first} vs {second}", fontsize=10)
    if feats.n == 0:
        note_panel(ax, f"no trials with finite {first} and {second} weights")
        return
    scatter_by_group(ax, feats.values[first][:, 0], feats.values[second][:, 0], feats.groups)
    if log:
        ax.set_xscale("log")
        ax.set_yscale("log")
    ax.set_xlabel(f"{reduce} node strength {first}")
    ax.set_ylabel(f"{reduce} node strength {second}")
    note_skipped(ax, feats.n_skipped)


def make(
    zoo_paths: Sequence[str],
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

    ``reduce``: ``mean`` or ``median`` node strength per trial and layer; ``log_axes``:
    log x and y; ``weights``: ``final`` or ``initial``.
    """
    if reduce not in REDUCTIONS:
        raise ValueError(f"reduce must be one of {tuple(REDUCTIONS)}, got {reduce!r}")
    experiments = load_experiments(zoo_paths, group_paths, weights=(weights,))
    pairs = [list(zip(x[:-1], x[1:], strict=True)) for x in (e.layer_labels() for e in experiments)]
    fig, axes = new_figure(len(experiments), max(1, max(len(p) for p in pairs)))
    for i, (exp, exp_pairs) in enumerate(zip(experiments, pairs, strict=True)):
        for j in range(axes.shape[1]):
            if j < len(exp_pairs):
                _panel(axes[i, j], exp, exp_pairs[j], reduce, weights, log_axes)
            else:
                note_panel(axes[i, j], "no such pair of layers")
        add_group_legend(axes[i, 0], exp.counts())
    set_titles(
        fig,
        f"Fig. {number} — node strength of consecutive layers, {figure_models(experiments)}",
        f"Node strength s_i = Σ_j |w_ij| over incoming {weights} weights. Widths differ "
        f"across trials, so each trial is one dot: its {reduce} node strength in layer l (x) "
        "vs layer l+1 (y), coloured by accuracy group.",
    )
    save_figure(fig, out_pdf, out_png, dpi)
