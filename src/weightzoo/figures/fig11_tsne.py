"""Fig. 11 (12, 13) — weight projection: 2-D t-SNE of each trial's weights of one layer,
coloured by group. Rows = experiments (datasets) of one model family, columns = layers.

What is embedded per trial (``descriptor``):

* ``quantiles`` (default): ``n_quantiles`` quantiles of the trial's weights of the layer
  (at probabilities (k + 0.5) / n_quantiles) plus their mean and standard deviation: a
  fixed-length, permutation-invariant vector, comparable across trials of different widths
  (hidden units of a trained net can be permuted without changing the function);
* ``raw``: the flattened weight tensor itself, only possible when all trials share the
  layer's shape (an error otherwise); vectors longer than ``pca_dims`` are first reduced
  by PCA to ``pca_dims`` components (the usual t-SNE preprocessing).

t-SNE: ``sklearn.manifold.TSNE`` with PCA initialisation, ``random_state=seed`` and
perplexity ``min(perplexity, (n - 1) / 3)``; panels with fewer than 4 trials are not
embedded and say so. Trials with non-finite weights in the layer are left out.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from matplotlib.axes import Axes

from ..analysis.trials import (
    Experiment,
    check_raw_shapes,
    embed,
    load_experiments,
    quantile_descriptor,
    raw_descriptor,
    trial_features,
)
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

DESCRIPTORS = ("quantiles", "raw")
MIN_TRIALS = 4


def describe_descriptor(descriptor: str, n_quantiles: int, pca_dims: int) -> str:
    if descriptor == "quantiles":
        return f"{n_quantiles} quantiles + mean + std of the layer's weights"
    return f"raw flattened weights (PCA to {pca_dims} dims when longer)"


def _panel(ax: Axes, exp: Experiment, label: str, options: dict) -> None:
    if options["descriptor"] == "raw":
        fn = raw_descriptor
    else:
        fn = quantile_descriptor(options["n_quantiles"])
    feats = trial_features(exp, [label], fn, options["weights"])
    ax.set_title(f"{dataset_label(exp.zoo.dataset)} — {label}", fontsize=10)
    x = feats.values[label]
    if feats.n < MIN_TRIALS:
        note_panel(
            ax,
            f"t-SNE skipped: {feats.n} trial(s) with finite {label} weights (needs ≥ {MIN_TRIALS})",
        )
        return
    if np.ptp(x, axis=0).max() == 0:
        note_panel(ax, "t-SNE skipped: all trials have the same descriptor")
        return
    xy = embed(x, options["seed"], options["perplexity"], options["max_iter"], options["pca_dims"])
    scatter_by_group(ax, xy[:, 0], xy[:, 1], feats.groups)
    ax.set_xlabel("t-SNE 1")
    ax.set_ylabel("t-SNE 2")
    note_skipped(ax, feats.n_skipped)


def make(
    zoo_paths: Sequence[str],
    group_paths: Sequence[str],
    out_pdf: str,
    out_png: str,
    *,
    number: int = 11,
    descriptor: str = "quantiles",
    n_quantiles: int = 64,
    perplexity: float = 30.0,
    max_iter: int = 1000,
    pca_dims: int = 50,
    seed: int = 0,
    weights: str = "final",
    dpi: int = DPI,
) -> None:
    """Draw Fig. 11 for the experiments of one model family (rows) and their layers (columns).

    ``descriptor``: ``quantiles`` or ``raw`` (see module docstring); ``n_quantiles``: length of
    the quantile descriptor; ``perplexity``: upper bound of t-SNE's perplexity; ``max_iter``:
    t-SNE iterations (>= 250); ``pca_dims``: PCA reduction of longer raw vectors; ``seed``:
    t-SNE/PCA random state; ``weights``: ``final`` or ``initial``.
    """
    if descriptor not in DESCRIPTORS:
        raise ValueError(f"descriptor must be one of {DESCRIPTORS}, got {descriptor!r}")
    if n_quantiles < 1 or pca_dims < 2 or max_iter < 250:
        raise ValueError("need n_quantiles >= 1, pca_dims >= 2 and max_iter >= 250")
    experiments = load_experiments(zoo_paths, group_paths, weights=(weights,))
    if descriptor == "raw":
        check_raw_shapes(experiments)
    options = {
        "descriptor": descriptor,
        "n_quantiles": n_quantiles,
        "perplexity": perplexity,
        "max_iter": max_iter,
        "pca_dims": pca_dims,
        "seed": seed,
        "weights": weights,
    }
    layers = [e.layer_labels() for e in experiments]
    fig, axes = new_figure(len(experiments), max(len(x) for x in layers))
    for i, (exp, labels) in enumerate(zip(experiments, layers, strict=True)):
        for j in range(axes.shape[1]):
            if j < len(labels):
                _panel(axes[i, j], exp, labels[j], options)
            else:
                note_panel(axes[i, j], "no such layer")
        add_group_legend(axes[i, 0], exp.counts())
    what = describe_descriptor(descriptor, n_quantiles, pca_dims)
    models = figure_models(e.zoo.model for e in experiments)
    set_titles(
        fig,
        f"Fig. {number} — t-SNE of per-layer weights ({descriptor}), {models}",
        f"One dot per trial, coloured by accuracy group. Embedded per trial: {what} "
        f"({weights} weights). t-SNE: PCA init, perplexity min({perplexity:g}, (n-1)/3), "
        f"random_state {seed}, {max_iter} iterations.",
    )
    save_figure(fig, out_pdf, out_png, dpi)
