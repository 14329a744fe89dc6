"""What every figure shares in style: group colours, legends, panel notes, saving.

What figures draw is computed in :mod:`weightzoo.analysis` (the features tables and the
figure data files); this module only decides how it looks.

Conventions of all figures:

* colours: *non* blue (as in the paper), *low* orange, *mid* green, *high* dark red,
  *between* (converged, in no band) grey; groups are drawn between, non, low, mid, high
  so *high* lies on top;
* legends give each group's number of trials in the experiment, ``high (n=412)``; the
  four paper groups are always listed (``n=0`` when empty), *between* only when present;
* trials whose weights (of the panel's layers) are not all finite are left out of a
  panel and the panel says how many; a panel without any data says so;
* figures use :class:`matplotlib.figure.Figure` directly (no pyplot), are deterministic,
  and are saved as PDF and PNG atomically.
"""

from __future__ import annotations

import os
import sys
import textwrap
from collections.abc import Callable, Iterable, Mapping, Sequence

import matplotlib

if "matplotlib.pyplot" not in sys.modules:  # headless; never switch a running pyplot session
    matplotlib.use("Agg")

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from ..analysis.groups import ALL_GROUPS, BETWEEN, GROUPS, describe_group_rules
from ..io import atomic_output
from .registry import MODEL_LABELS

GROUP_COLORS = {
    "non": "#1f77b4",
    "low": "#e69f00",
    "mid": "#009e73",
    "high": "#8b0000",
    BETWEEN: "#9e9e9e",
}
DRAW_ORDER = (BETWEEN, "non", "low", "mid", "high")
DATASET_LABELS = {
    "mnist": "MNIST",
    "fmnist": "F-MNIST",
    "fashion_mnist": "F-MNIST",
    "fashionmnist": "F-MNIST",
    "fashion-mnist": "F-MNIST",
    "cifar-10": "CIFAR-10",
    "cifar10": "CIFAR-10",
}
DPI = 150


def figure_label(number: int) -> str:
    """A title's "Fig. N — " for the paper's figures; nothing for those beyond the paper
    (number 0, e.g. the Small CNN's versions of Figs 2-13)."""
    return f"Fig. {number} — " if number else ""


def dataset_label(name: str) -> str:
    return DATASET_LABELS.get(name.lower(), name)


def model_label(name: str) -> str:
    return MODEL_LABELS.get(name.lower(), name.upper())


def experiment_title(model: str, dataset: str) -> str:
    """``DNN F-MNIST``: how panels and rows name an experiment."""
    return f"{model_label(model)} {dataset_label(dataset)}"


# -------------------------------------------------------------------------- drawing


def new_figure(nrows: int, ncols: int, panel_size: tuple[float, float] = (3.6, 3.0)):
    """A constrained-layout figure and its ``[nrows, ncols]`` array of axes (at least 6.5 in
    wide, so the title and caption of a one-column figure are not cut)."""
    width = max(6.5, panel_size[0] * ncols)
    fig = Figure(figsize=(width, panel_size[1] * nrows + 0.9), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False)
    return fig, axes


def panel_grid(
    rows: Sequence[Sequence[object]],
    draw_panel: Callable[[Axes, int, object], None],
    missing: str = "no such layer",
    panel_size: tuple[float, float] = (3.6, 3.0),
):
    """The dataset x layer grid: one row of panels per entry of ``rows`` (an experiment's
    layers, or pairs of layers), as many columns as the longest row.
    ``draw_panel(ax, i, cell)`` draws the cell of row ``i``; where a row is shorter the
    panel says ``missing``. Returns the figure and its axes."""
    fig, axes = new_figure(len(rows), max(1, max((len(r) for r in rows), default=1)), panel_size)
    for i, cells in enumerate(rows):
        for j in range(axes.shape[1]):
            if j < len(cells):
                draw_panel(axes[i, j], i, cells[j])
            else:
                note_panel(axes[i, j], missing)
    return fig, axes


def draw_grid(
    rows: Sequence[Sequence[object]],
    draw_panel: Callable[[Axes, int, object], None],
    counts: Sequence[dict[str, int]],
    out: tuple[str | os.PathLike, str | os.PathLike],
    *,
    title: str,
    caption: str,
    group_rules: Mapping[str, str],
    missing: str = "no such layer",
    marker: str = "o",
    dpi: int = DPI,
) -> None:
    """A dataset x layer figure, drawn and saved: :func:`panel_grid` of ``rows`` and
    ``draw_panel``, the group legend of each row's experiment (``counts``: its trials per
    group, one per row) in its first panel, then :func:`finish` to ``out`` = (PDF, PNG)."""
    fig, axes = panel_grid(rows, draw_panel, missing)
    for row, row_counts in zip(axes, counts, strict=True):
        add_group_legend(row[0], row_counts, marker)
    finish(fig, title, caption, group_rules, out, dpi)


def draw_layer_grid(
    experiments: Sequence,
    draw_panel: Callable[[Axes, object, str], None],
    out: tuple[str | os.PathLike, str | os.PathLike],
    *,
    title: str,
    caption: str,
    group_rules: Mapping[str, str],
    marker: str = "o",
    dpi: int = DPI,
) -> None:
    """:func:`draw_grid` of figure data (``experiments``: one
    :class:`~weightzoo.analysis.figuredata.store.FigureData` per row, its layers the
    columns); ``draw_panel(ax, experiment, label)`` draws a panel. The title ends with the
    model families shown."""
    draw_grid(
        [e.layers for e in experiments],
        lambda ax, i, label: draw_panel(ax, experiments[i], label),
        [e.counts for e in experiments],
        out,
        title=f"{title}, {figure_models(e.model for e in experiments)}",
        caption=caption,
        group_rules=group_rules,
        marker=marker,
        dpi=dpi,
    )


def panel_title(ax: Axes, dataset: str, what: str) -> None:
    """``F-MNIST — FC1``: a grid panel's title, its dataset and what it shows."""
    ax.set_title(f"{dataset_label(dataset)} — {what}", fontsize=10)


def layer_panel(ax: Axes, data, label: str) -> Mapping | None:
    """Title the panel of layer ``label`` of one experiment's figure data ``data`` (a
    :class:`~weightzoo.analysis.figuredata.store.FigureData`) and return what the data
    says of the panel; None where that is a note why it is empty (then shown instead)."""
    panel = data.panel(label)
    panel_title(ax, data.dataset, label)
    if panel["note"]:
        note_panel(ax, panel["note"])
        return None
    return panel


def label_axes(ax: Axes, xlabel: str, ylabel: str, n_skipped: int = 0) -> None:
    """Axis labels, and the corner note on trials left out (:func:`note_skipped`)."""
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    note_skipped(ax, n_skipped)


def set_titles(fig: Figure, title: str, caption: str, group_rules: Mapping[str, str]) -> None:
    """Suptitle naming the figure like the paper, and a wrapped caption below the panels
    that ends with the rule that made the groups (``group_rules``: experiment -> rule;
    empty: no such sentence)."""
    caption = f"{caption} {describe_group_rules(group_rules)}".strip()
    fig.suptitle(title, fontsize=12)
    width_chars = max(60, int(fig.get_figwidth() * 15))
    fig.supxlabel(textwrap.fill(caption, width_chars), fontsize=8)


def finish(
    fig: Figure,
    title: str,
    caption: str,
    group_rules: Mapping[str, str],
    out: tuple[str | os.PathLike, str | os.PathLike],
    dpi: int = DPI,
) -> None:
    """:func:`set_titles`, then :func:`save_figure` to ``out`` = (PDF, PNG)."""
    set_titles(fig, title, caption, group_rules)
    save_figure(fig, *out, dpi)


def marker_size(n: int) -> float:
    if n > 300:
        return 4.0
    return 10.0 if n > 50 else 25.0


def group_handles(counts: dict[str, int], marker: str = "o") -> list[Line2D]:
    """Legend handles ``<group> (n=<count>)``: the paper's groups always, *between* if any."""
    shown = [g for g in ALL_GROUPS if g in GROUPS or counts.get(g, 0) > 0]
    line = "-" if marker == "" else "none"
    return [
        Line2D(
            [],
            [],
            color=GROUP_COLORS[g],
            marker=marker or None,
            linestyle=line,
            label=f"{g} (n={counts.get(g, 0)})",
        )
        for g in shown
    ]


def add_group_legend(ax: Axes, counts: dict[str, int], marker: str = "o") -> None:
    ax.legend(handles=group_handles(counts, marker), fontsize=7, loc="best", framealpha=0.8)


def note_panel(ax: Axes, text: str) -> None:
    """Say in the middle of a panel why it shows nothing."""
    ax.text(
        0.5,
        0.5,
        textwrap.fill(text, 32),
        transform=ax.transAxes,
        ha="center",
        va="center",
        fontsize=8,
        color="0.3",
    )
    ax.set_xticks([])
    ax.set_yticks([])


def note_skipped(ax: Axes, n_skipped: int) -> None:
    """Small corner note on trials left out for non-finite values."""
    if n_skipped:
        ax.text(
            0.99,
            0.01,
            f"{n_skipped} non-finite trial(s) not shown",
            transform=ax.transAxes,
            ha="right",
            va="bottom",
            fontsize=6,
            color="0.4",
        )


def scatter_by_group(ax: Axes, x: np.ndarray, y: np.ndarray, groups: np.ndarray) -> None:
    """Scatter coloured by group, drawn in :data:`DRAW_ORDER`, rasterized."""
    size = marker_size(len(x))
    for g in DRAW_ORDER:
        mask = groups == g
        if mask.any():
            ax.scatter(
                x[mask],
                y[mask],
                s=size,
                c=GROUP_COLORS[g],
                alpha=0.7,
                linewidths=0,
                rasterized=True,
            )


def save_figure(
    fig: Figure, out_pdf: str | os.PathLike, out_png: str | os.PathLike, dpi: int = DPI
) -> None:
    """Save ``fig`` as PDF and PNG, each atomically (temporary file, then rename)."""
    with atomic_output(out_pdf) as tmp:
        fig.savefig(tmp, format="pdf", dpi=dpi)
    with atomic_output(out_png) as tmp:
        fig.savefig(tmp, format="png", dpi=dpi)


def figure_models(models: Iterable[str]) -> str:
    """``DNN, CNN``: the model families a figure shows, each once."""
    return ", ".join(dict.fromkeys(model_label(m) for m in models))
