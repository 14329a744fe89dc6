"""Fig. 11 (12, 13) — weight projection: 2-D t-SNE of each trial's weights of one layer,
coloured by group. Rows = experiments (datasets) of one model family, columns = layers.

Drawn from the t-SNE data (:mod:`weightzoo.analysis.figuredata.tsne`, whose docstring
says what is embedded per trial); a layer that was not embedded (too few trials, or all
with the same descriptor) says why in its panel. Trials with non-finite weights in the
layer are left out and counted in the panel's corner.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from matplotlib.axes import Axes

from ..analysis.figuredata.store import FigureData, group_rules, read_all
from . import common as c


def describe_descriptor(descriptor: str, n_quantiles: int, pca_dims: int) -> str:
    if descriptor == "quantiles":
        return f"{n_quantiles} quantiles + mean + std of the layer's weights"
    return f"raw flattened weights (PCA to {pca_dims} dims when longer)"


def _panel(ax: Axes, exp: FigureData, label: str) -> None:
    panel = c.layer_panel(ax, exp, label)
    if panel is None:
        return
    points = exp.rows_of(label)
    x, y = points["x"].to_numpy(dtype=float), points["y"].to_numpy(dtype=float)
    c.scatter_by_group(ax, x, y, points["group"].to_numpy(dtype=str))
    c.label_axes(ax, "t-SNE 1", "t-SNE 2", panel["n_skipped"])


def draw(
    inputs: Mapping[str, Sequence[str]],
    out_pdf: str,
    out_png: str,
    *,
    number: int = 11,
    dpi: int = c.DPI,
) -> None:
    """Draw Fig. 11 from the t-SNE data ``inputs["data"]`` of one model family's
    experiments (rows) and their layers (columns)."""
    experiments = read_all(inputs["data"], "tsne")
    o = experiments[0].options
    what = describe_descriptor(o["descriptor"], o["n_quantiles"], o["pca_dims"])
    c.draw_layer_grid(
        experiments,
        _panel,
        (out_pdf, out_png),
        title=f"{c.figure_label(number)}t-SNE of per-layer weights ({o['descriptor']})",
        caption=f"One dot per trial, coloured by accuracy group. Embedded per trial: {what} "
        f"({o['weights']} weights). t-SNE: PCA init, perplexity min({o['perplexity']:g}, "
        f"(n-1)/3), random_state {o['seed']}, {o['max_iter']} iterations.",
        group_rules=group_rules(experiments),
        dpi=dpi,
    )
