"""Summary figure of the claims table: a verdict grid per experiment (drawing only).

Rows are the tests (claims 1-6 and the rank correlations with accuracy), columns the layers
(then the layer pairs of claim 5a and the final-vs-others comparison of claim 3). Each cell
is split in two: the left half is the pooled test, the right half the test within
architecture; its colour is the verdict, white where the test could not be run (too few
trials). The numbers come from :mod:`weightzoo.analysis.claims` alone.
"""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
from matplotlib.patches import Patch, Rectangle

from ..analysis.claims import CLAIMS, SCOPES, UNIVARIATE
from .common import dataset_label, model_label, save_figure, set_titles
from .common import new_figure as _new_figure

VERDICT_COLORS = {
    "supported": "#1b7837",
    "contradicted": "#c51b7d",
    "inconclusive": "#d9d9d9",
    "untested": "#ffffff",
}
ACCURACY_LABELS = {"1": "std", "4a": "kurtosis", "4b": "mass near 0", "5b": "mean strength"}


def _test_rows() -> list[tuple[str, str, str]]:
    """(claim, test kind, row label) in drawing order."""
    kind = {"3": "layers"}
    rows = [(c, kind.get(c, "group"), f"{c}: {text}") for c, text in CLAIMS.items()]
    rows += [
        (c, "accuracy", f"rank corr. of {ACCURACY_LABELS[c]} with accuracy")
        for c in (*UNIVARIATE, "5b")
    ]
    return rows


def _columns(df: pd.DataFrame) -> list[str]:
    """Layers first, then pairs (claim 5a), then "final vs others" (claim 3)."""
    layers = list(dict.fromkeys(df.loc[df["claim"].isin(["1", "2", "6"]), "layer"]))
    pairs = list(dict.fromkeys(df.loc[df["claim"] == "5a", "layer"]))
    others = [c for c in dict.fromkeys(df["layer"]) if c not in layers and c not in pairs]
    return layers + pairs + others


def _cell_color(row: pd.Series | None) -> str:
    if row is None:
        return "none"
    if row["verdict"] == "inconclusive" and not np.isfinite(row["p_value"]):
        return VERDICT_COLORS["untested"]
    return VERDICT_COLORS[row["verdict"]]


def draw_experiment(ax, df: pd.DataFrame, title: str) -> None:
    tests = _test_rows()
    columns = _columns(df)
    lookup = {
        (r["claim"], r["test"], r["layer"], r["scope"]): r
        for _, r in df[df["scope"].isin(SCOPES)].iterrows()
    }
    for y, (claim, test, _) in enumerate(tests):
        for x, column in enumerate(columns):
            for half, scope in enumerate(SCOPES):
                row = lookup.get((claim, test, column, scope))
                if row is None:
                    continue
                ax.add_patch(
                    Rectangle(
                        (x - 0.45 + 0.45 * half, y - 0.42),
                        0.45,
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


def make(table: pd.DataFrame, out_pdf: str | os.PathLike, out_png: str | os.PathLike) -> None:
    """Draw the verdict grid of every experiment in ``table`` (the claims CSV)."""
    experiments = list(dict.fromkeys(table["experiment"])) or ["(none)"]
    n_cols = max((len(_columns(table[table["experiment"] == e])) for e in experiments), default=1)
    fig, axes = _new_figure(len(experiments), 1, panel_size=(4.4 + 0.5 * n_cols, 3.4))
    for ax, experiment in zip(axes[:, 0], experiments, strict=True):
        df = table[table["experiment"] == experiment]
        if df.empty:
            ax.set_axis_off()
            ax.set_title("no claims tested", fontsize=9)
            continue
        first = df.iloc[0]
        title = f"{model_label(first['model'])} {dataset_label(first['dataset'])} ({experiment})"
        draw_experiment(ax, df, title)
    handles = [Patch(facecolor=c, edgecolor="0.6", label=v) for v, c in VERDICT_COLORS.items()]
    handles[-1].set_label("not tested (too few trials)")
    fig.legend(handles=handles, loc="outside lower center", fontsize=7, ncols=4, frameon=False)
    set_titles(
        fig,
        "The paper's claims, tested (high vs low/mid trials)",
        "Each cell: left half pooled over architectures, right half within architecture "
        "(labels permuted only inside each architecture). Supported / contradicted: "
        "Benjamini-Hochberg q < alpha and the 95 % bootstrap CI on the expected / other side "
        "of 0; otherwise inconclusive. Columns: layers, then consecutive layer pairs "
        "(claim 5a) and final layer vs the others (claim 3). Numbers: results/claims/claims.csv.",
    )
    save_figure(fig, out_pdf, out_png)
