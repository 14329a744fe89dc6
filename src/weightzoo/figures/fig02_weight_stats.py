"""Fig. 2 (3, 4) — weight strength: per layer, mean (x) vs standard deviation (y) of each
trial's weights, coloured by group. Rows = experiments (datasets) of one model family,
columns = layers (input side first). One dot per trial; a trial is left out of a panel
when any of its weights in that layer is not finite.
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


def mean_std(w: np.ndarray, layer: LayerInfo) -> np.ndarray:
    """``[T, 2]``: mean and standard deviation of each trial's weights of one layer."""
    flat = w.reshape(len(w), -1)
    return np.column_stack(
        [flat.mean(axis=1, dtype=np.float64), flat.std(axis=1, dtype=np.float64)]
    )


def _panel(ax: Axes, exp: Experiment, label: str, which: str) -> None:
    feats = trial_features(exp, [label], mean_std, which)
    ax.set_title(f"{dataset_label(exp.zoo.dataset)} — {label}", fontsize=10)
    if feats.n == 0:
        note_panel(ax, f"no trials with finite {label} weights")
        return
    stats = feats.values[label]
    scatter_by_group(ax, stats[:, 0], stats[:, 1], feats.groups)
    ax.set_xlabel(f"mean of {label} weights")
    ax.set_ylabel("standard deviation")
    note_skipped(ax, feats.n_skipped)


def make(
    zoo_paths: Sequence[str],
    group_paths: Sequence[str],
    out_pdf: str,
    out_png: str,
    *,
    number: int = 2,
    weights: str = "final",
    dpi: int = DPI,
) -> None:
    """Draw Fig. 2 for the experiments of one model family (rows) and their layers (columns).

    ``weights``: ``final`` (trained, the paper's figure) or ``initial`` weights.
    """
    experiments = load_experiments(zoo_paths, group_paths, weights=(weights,))
    layers = [e.layer_labels() for e in experiments]
    fig, axes = new_figure(len(experiments), max(len(x) for x in layers))
    for i, (exp, labels) in enumerate(zip(experiments, layers, strict=True)):
        for j in range(axes.shape[1]):
            if j < len(labels):
                _panel(axes[i, j], exp, labels[j], weights)
            else:
                note_panel(axes[i, j], "no such layer")
        add_group_legend(axes[i, 0], exp.counts())
    set_titles(
        fig,
        f"Fig. {number} — weight mean vs std per layer, {figure_models(experiments)}",
        f"One dot per trial: mean (x) and standard deviation (y) of its {weights} weights of "
        "the layer, coloured by accuracy group (legend: trials per group in that experiment).",
    )
    save_figure(fig, out_pdf, out_png, dpi)
