"""Fig. 5 (6, 7) — weight distribution: per layer and group, a normalised histogram and a
Gaussian kernel density estimate of all weights of that layer pooled over the group's trials.
Rows = experiments (datasets) of one model family, columns = layers.

Pooled weights can number billions, so each group is represented by a uniform random
subsample without replacement (at most ``max_samples`` weights, fixed ``seed`` per panel);
histogram and KDE (``scipy.stats.gaussian_kde``, Scott's bandwidth) both use it. The
x-range spans the ``clip_quantile`` .. ``1 - clip_quantile`` quantiles of all groups'
samples so a few huge weights do not flatten the plot; the histogram is normalised over
all samples of the group (mass outside the range is simply not drawn).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from matplotlib.axes import Axes

from ..analysis.trials import Experiment, kde_curve, load_experiments, sample_group_weights
from .common import (
    DPI,
    DRAW_ORDER,
    GROUP_COLORS,
    add_group_legend,
    dataset_label,
    figure_models,
    new_figure,
    note_panel,
    note_skipped,
    save_figure,
    set_titles,
)

KDE_POINTS = 400


def _x_range(samples: dict[str, np.ndarray], clip_quantile: float) -> tuple[float, float]:
    pooled = np.concatenate([s for s in samples.values() if s.size])
    lo, hi = np.quantile(pooled, [clip_quantile, 1.0 - clip_quantile])
    if hi <= lo:  # all (clipped) weights equal
        lo, hi = lo - 0.5, hi + 0.5
    return float(lo), float(hi)


def _draw_group(ax: Axes, values: np.ndarray, color: str, edges: np.ndarray) -> None:
    width = edges[1] - edges[0]
    ax.hist(
        values,
        bins=edges,
        weights=np.full(values.size, 1.0 / (values.size * width)),
        histtype="stepfilled",
        color=color,
        alpha=0.25,
    )
    grid = np.linspace(edges[0], edges[-1], KDE_POINTS)
    density = kde_curve(values, grid)
    if density is not None:
        ax.plot(grid, density, color=color, linewidth=1.4)


def _panel(ax: Axes, exp: Experiment, label: str, options: dict, rng: np.random.Generator) -> None:
    samples, n_skipped = sample_group_weights(
        exp, label, rng, options["max_samples"], options["weights"]
    )
    ax.set_title(f"{dataset_label(exp.zoo.dataset)} — {label}", fontsize=10)
    if not any(s.size for s in samples.values()):
        note_panel(ax, f"no trials with finite {label} weights")
        return
    lo, hi = _x_range(samples, options["clip_quantile"])
    edges = np.linspace(lo, hi, options["bins"] + 1)
    for g in DRAW_ORDER:
        if samples[g].size:
            _draw_group(ax, samples[g], GROUP_COLORS[g], edges)
    ax.set_xlim(lo, hi)
    if options["log_density"]:
        ax.set_yscale("log")
    ax.set_xlabel(f"{label} weight")
    ax.set_ylabel("density")
    note_skipped(ax, n_skipped)


def make(
    zoo_paths: Sequence[str],
    group_paths: Sequence[str],
    out_pdf: str,
    out_png: str,
    *,
    number: int = 5,
    max_samples: int = 20000,
    bins: int = 60,
    clip_quantile: float = 0.005,
    log_density: bool = False,
    seed: int = 0,
    weights: str = "final",
    dpi: int = DPI,
) -> None:
    """Draw Fig. 5 for the experiments of one model family (rows) and their layers (columns).

    ``max_samples``: weights per group and panel for histogram and KDE; ``bins``: histogram
    bins; ``clip_quantile``: quantile cut of the x-range each side; ``log_density``: log
    y-axis; ``seed``: subsampling seed; ``weights``: ``final`` or ``initial``.
    """
    if max_samples < 2 or bins < 1 or not 0 <= clip_quantile < 0.5:
        raise ValueError("need max_samples >= 2, bins >= 1 and 0 <= clip_quantile < 0.5")
    options = {
        "max_samples": max_samples,
        "bins": bins,
        "clip_quantile": clip_quantile,
        "log_density": log_density,
        "weights": weights,
    }
    experiments = load_experiments(zoo_paths, group_paths, weights=(weights,))
    layers = [e.layer_labels() for e in experiments]
    fig, axes = new_figure(len(experiments), max(len(x) for x in layers))
    for i, (exp, labels) in enumerate(zip(experiments, layers, strict=True)):
        for j in range(axes.shape[1]):
            if j < len(labels):
                _panel(axes[i, j], exp, labels[j], options, np.random.default_rng([seed, i, j]))
            else:
                note_panel(axes[i, j], "no such layer")
        add_group_legend(axes[i, 0], exp.counts(), marker="")
    models = figure_models(e.zoo.model for e in experiments)
    set_titles(
        fig,
        f"Fig. {number} — weight distribution per layer and group, {models}",
        f"Normalised histogram (shaded) and Gaussian KDE (line) of the {weights} weights of "
        f"each layer pooled over a group's trials (random subsample of at most {max_samples} "
        f"weights per group, seed {seed}); x-range: {clip_quantile:g}..{1 - clip_quantile:g} "
        "quantiles of all groups.",
    )
    save_figure(fig, out_pdf, out_png, dpi)
