"""Summary figure of the claims table: a verdict grid per experiment (drawing only).

Rows are the tests (claims 1-6 and the rank correlations with accuracy), columns the layers
(then the layer pairs of claim 5a and the final-vs-others comparison of claim 3). Each cell
is split in two: the left half is the pooled test, the right half the test within
architecture (in three where the experiment's training settings vary per trial: the right
third is within architecture with the settings controlled); its colour is the verdict,
white where the test could not be run (too few trials). The numbers come from
:mod:`weightzoo.analysis.claims` alone.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from matplotlib.patches import Patch, Rectangle

from ..analysis.claims.definitions import SCOPES, SETTINGS_SCOPE
from ..analysis.claims.files import read_claims
from ..analysis.claims.grid import column_order, test_rows
from .common import experiment_title, finish, new_figure

VERDICT_COLORS = {
    "supported": "#1b7837",
    "contradicted": "#c51b7d",
    "inconclusive": "#d9d9d9",
    "untested": "#ffffff",
}


def _cell_color(row: pd.Series | None) -> str:
    if row is None:
        return "none"
    if row["verdict"] == "inconclusive" and not np.isfinite(row["p_value"]):
        return VERDICT_COLORS["untested"]
    return VERDICT_COLORS[row["verdict"]]


def _scopes(df: pd.DataFrame) -> tuple[str, ...]:
    """The scopes a cell is split into: pooled, within, and the settings-controlled one
    where the experiment's training settings vary per trial."""
    return (*SCOPES, SETTINGS_SCOPE) if (df["scope"] == SETTINGS_SCOPE).any() else SCOPES


def draw_experiment(ax, df: pd.DataFrame, title: str) -> None:
    present = set(zip(df["claim"], df["test"], strict=True))
    tests = [t for t in test_rows() if t[:2] in present]  # claim 9 only with reconstructions
    columns = column_order(df)
    scopes = _scopes(df)
    width = 0.9 / len(scopes)
    lookup = {
        (r["claim"], r["test"], r["layer"], r["scope"]): r
        for _, r in df[df["scope"].isin(scopes)].iterrows()
    }
    for y, (claim, test, _) in enumerate(tests):
        for x, column in enumerate(columns):
            for part, scope in enumerate(scopes):
                row = lookup.get((claim, test, column, scope))
                if row is None:
                    continue
                ax.add_patch(
                    Rectangle(
                        (x - 0.45 + width * part, y - 0.42),
                        width,
                        0.84,
                        facecolor=_cell_color(row),
                        edgecolor="0.6",
                        linewidth=0.4,
                    )
                )
    ax.set_xlim(-0.5, len(columns) - 0.5)
    ax.set_ylim(len(tests) - 0.5, -0.5)
    ax.set_xticks(range(len(columns)), columns, rotation=30, ha="right", fontsize=7)
    ax.set_yticks(range(len(tests)), [label for *_, label in tests], fontsize=6.5)
    ax.set_title(title, fontsize=9)
    ax.tick_params(length=0)
    for side in ax.spines.values():
        side.set_visible(False)


def draw(
    inputs: Mapping[str, Sequence[str]], out_pdf: str, out_png: str, *, number: int = 0
) -> None:
    """Draw the verdict grid of the claims table ``inputs["claims"]`` (one CSV)."""
    draw_table(read_claims(inputs["claims"][0]), out_pdf, out_png)


def draw_table(table: pd.DataFrame, out_pdf: str | os.PathLike, out_png: str | os.PathLike) -> None:
    """Draw the verdict grid of every experiment in ``table`` (the claims CSV, read)."""
    experiments = list(dict.fromkeys(table["experiment"])) or ["(none)"]
    n_cols = max(
        (len(column_order(table[table["experiment"] == e])) for e in experiments), default=1
    )
    fig, axes = new_figure(len(experiments), 1, panel_size=(4.4 + 0.5 * n_cols, 3.4))
    for ax, experiment in zip(axes[:, 0], experiments, strict=True):
        df = table[table["experiment"] == experiment]
        if df.empty:
            ax.set_axis_off()
            ax.set_title("no claims tested", fontsize=9)
            continue
        first = df.iloc[0]
        title = f"{experiment_title(first['model'], first['dataset'])} ({experiment})"
        draw_experiment(ax, df, title)
    handles = [Patch(facecolor=c, edgecolor="0.6", label=v) for v, c in VERDICT_COLORS.items()]
    handles[-1].set_label("not testable (too few trials)")
    axes[0, 0].legend(
        handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=7, frameon=False
    )
    caption = (
        "Each cell: left half pooled over architectures, right half within architecture "
        "(labels permuted only inside each architecture). Supported / contradicted: "
        "Benjamini-Hochberg q < alpha and the 95 % bootstrap CI on the expected / other side "
        "of 0; otherwise inconclusive. Columns: layers, then consecutive layer pairs "
        "(claim 5a) and final layer vs the others (claim 3). Numbers: results/claims/claims.csv."
    )
    if len(_scopes(table)) > len(SCOPES):
        caption += (
            " Experiments whose training settings vary per trial: cells in thirds, the right "
            f"third within architecture with the settings controlled ({SETTINGS_SCOPE}; rank "
            "correlations only, white for the group contrasts)."
        )
    finish(
        fig,
        "The paper's claims, tested (high vs low/mid trials)",
        caption,
        {},  # the claims table does not record the group rules
        (out_pdf, out_png),
    )
