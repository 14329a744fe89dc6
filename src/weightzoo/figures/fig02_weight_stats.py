"""Fig. 2 (3, 4) — weight strength: per layer, mean (x) vs standard deviation (y) of each
trial's weights, coloured by group. Rows = experiments (datasets) of one model family,
columns = layers (input side first). One dot per trial; a trial is left out of a panel
when any of its weights in that layer is not finite.

Drawn from the features table (columns ``w_mean``, ``w_std``; ``docs/features.md``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pandas as pd
from matplotlib.axes import Axes

from ..analysis.figuredata import tables as T
from . import common as c


def _panel(ax: Axes, table: pd.DataFrame, label: str, which: str) -> None:
    means, n_skipped = T.layer_values(table, "w_mean", [label], which)
    stds, _ = T.layer_values(table, "w_std", [label], which)
    c.panel_title(ax, table["dataset"].iat[0], label)
    if means.empty:
        c.note_panel(ax, f"no trials with finite {label} weights")
        return
    c.scatter_by_group(
        ax, means[label].to_numpy(), stds[label].to_numpy(), means["group"].to_numpy()
    )
    c.label_axes(ax, f"mean of {label} weights", "standard deviation", n_skipped)


def draw(
    inputs: Mapping[str, Sequence[str]],
    out_pdf: str,
    out_png: str,
    *,
    number: int = 2,
    weights: str = "final",
    dpi: int = c.DPI,
) -> None:
    """Draw Fig. 2 from the features tables ``inputs["features"]`` of one model family's
    experiments (rows) and their layers (columns).

    ``weights``: ``final`` (trained, the paper's figure) or ``initial`` weights.
    """
    tables = T.read_tables(inputs["features"])
    c.draw_grid(
        [T.layer_labels(t) for t in tables],
        lambda ax, i, label: _panel(ax, tables[i], label, weights),
        [T.trial_counts(t) for t in tables],
        (out_pdf, out_png),
        title=f"{c.figure_label(number)}weight mean vs std per layer, "
        f"{c.figure_models(t['model'].iat[0] for t in tables)}",
        caption=f"One dot per trial: mean (x) and standard deviation (y) of its {weights} "
        "weights of the layer, coloured by accuracy group (legend: trials per group in that "
        "experiment).",
        group_rules=T.group_rules(tables),
        dpi=dpi,
    )
