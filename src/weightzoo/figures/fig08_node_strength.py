"""Fig. 8 (9, 10) — node strength compared between consecutive layers, coloured by group.

The strength of node i of a layer is s_i = Σ_j |w_ij| over its incoming weights (the
layer's ``incoming_axes``; for ``nn.Linear`` ``[out, in]`` the row sum of |W|). Widths
differ between trials, so nodes cannot be paired across trials or layers; each trial is
therefore reduced to one number per layer, its mean (or median) node strength, and a
panel plots layer l (x) against layer l+1 (y), one dot per trial. Rows = experiments
(datasets) of one model family, columns = pairs of consecutive layers of an architecture
(FC1 vs FC2, FC2 vs FC3; an imported zoo's architectures each add their own pairs). A
trial is left out of a panel when any weight of the two layers is not finite.

Drawn from the features table (``strength_mean`` / ``strength_median``; ``docs/features.md``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pandas as pd
from matplotlib.axes import Axes

from ..analysis.figuredata import tables as T
from . import common as c

REDUCTIONS = ("mean", "median")


def _panel(
    ax: Axes, table: pd.DataFrame, pair: tuple[str, str], reduce: str, which: str, log: bool
) -> None:
    first, second = pair
    values, n_skipped = T.layer_values(table, f"strength_{reduce}", pair, which)
    c.panel_title(ax, table["dataset"].iat[0], f"{first} vs {second}")
    if values.empty:
        c.note_panel(ax, f"no trials with finite {first} and {second} weights")
        return
    c.scatter_by_group(
        ax, values[first].to_numpy(), values[second].to_numpy(), values["group"].to_numpy()
    )
    if log:
        ax.set_xscale("log")
        ax.set_yscale("log")
    c.label_axes(
        ax, f"{reduce} node strength {first}", f"{reduce} node strength {second}", n_skipped
    )


def draw(
    inputs: Mapping[str, Sequence[str]],
    out_pdf: str,
    out_png: str,
    *,
    number: int = 8,
    reduce: str = "mean",
    log_axes: bool = False,
    weights: str = "final",
    dpi: int = c.DPI,
) -> None:
    """Draw Fig. 8 from the features tables ``inputs["features"]`` of one model family's
    experiments (rows) and their pairs of consecutive layers (columns).

    ``reduce``: ``mean`` or ``median`` node strength per trial and layer; ``log_axes``: log
    x and y; ``weights``: ``final`` or ``initial``.
    """
    if reduce not in REDUCTIONS:
        raise ValueError(f"reduce must be one of {REDUCTIONS}, got {reduce!r}")
    tables = T.read_tables(inputs["features"])
    c.draw_grid(
        [T.consecutive_layers(t) for t in tables],
        lambda ax, i, pair: _panel(ax, tables[i], pair, reduce, weights, log_axes),
        [T.trial_counts(t) for t in tables],
        (out_pdf, out_png),
        title=f"{c.figure_label(number)}node strength of consecutive layers, "
        f"{c.figure_models(t['model'].iat[0] for t in tables)}",
        caption=f"Node strength s_i = Σ_j |w_ij| over incoming {weights} weights. Widths "
        f"differ across trials, so each trial is one dot: its {reduce} node strength in "
        "layer l (x) vs layer l+1 (y), coloured by accuracy group.",
        group_rules=T.group_rules(tables),
        missing="no such pair of layers",
        dpi=dpi,
    )
