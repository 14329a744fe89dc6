"""Fig. 5 (6, 7) — weight distribution: per layer and group, a normalised histogram and a
Gaussian kernel density estimate of all weights of that layer pooled over the group's trials.
Rows = experiments (datasets) of one model family, columns = layers.

Drawn from the weight-KDE data (:mod:`weightzoo.analysis.figuredata.weight_kde`: per
group a random subsample of at most ``max_samples`` weights, its KDE and the panel's
x-range, the ``clip_quantile`` .. ``1 - clip_quantile`` quantiles of all groups' samples).
The histogram is normalised over all samples of the group (mass outside the range is
simply not drawn).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib.axes import Axes

from ..analysis.figuredata.store import FigureData, group_rules, read_all
from . import common as c


def _draw_group(ax: Axes, values: np.ndarray, kde, color: str, edges: np.ndarray) -> None:
    width = edges[1] - edges[0]
    ax.hist(
        values,
        bins=edges,
        weights=np.full(values.size, 1.0 / (values.size * width)),
        histtype="stepfilled",
        color=color,
        alpha=0.25,
    )
    if len(kde):
        ax.plot(kde["x"], kde["density"], color=color, linewidth=1.4)


def _panel(ax: Axes, exp: FigureData, label: str, bins: int, log_density: bool) -> None:
    panel = c.layer_panel(ax, exp, label)
    if panel is None:
        return
    rows = exp.rows_of(label)
    lo, hi = panel["lo"], panel["hi"]
    edges = np.linspace(lo, hi, bins + 1)
    for g in c.DRAW_ORDER:
        mine = rows[rows["group"] == g]
        samples = mine.loc[mine["part"] == "sample", "x"].to_numpy(dtype=float)
        if samples.size:
            _draw_group(ax, samples, mine[mine["part"] == "kde"], c.GROUP_COLORS[g], edges)
    ax.set_xlim(lo, hi)
    if log_density:
        ax.set_yscale("log")
    c.label_axes(ax, f"{label} weight", "density", panel["n_skipped"])


def draw(
    inputs: Mapping[str, Sequence[str]],
    out_pdf: str,
    out_png: str,
    *,
    number: int = 5,
    bins: int = 60,
    log_density: bool = False,
    dpi: int = c.DPI,
) -> None:
    """Draw Fig. 5 from the weight-KDE data ``inputs["data"]`` of one model family's
    experiments (rows) and their layers (columns).

    ``bins``: histogram bins; ``log_density``: log y-axis.
    """
    if bins < 1:
        raise ValueError("need bins >= 1")
    experiments = read_all(inputs["data"], "weight_kde")
    options = experiments[0].options
    clip = options["clip_quantile"]
    c.draw_layer_grid(
        experiments,
        lambda ax, exp, label: _panel(ax, exp, label, bins, log_density),
        (out_pdf, out_png),
        title=f"{c.figure_label(number)}weight distribution per layer and group",
        caption=f"Normalised histogram (shaded) and Gaussian KDE (line) of the "
        f"{options['weights']} weights of each layer pooled over a group's trials (random "
        f"subsample of at most {options['max_samples']} weights per group, seed "
        f"{options['seed']}); x-range: {clip:g}..{1 - clip:g} quantiles of all groups.",
        group_rules=group_rules(experiments),
        marker="",
        dpi=dpi,
    )
