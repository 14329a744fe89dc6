"""Fig. 1 — convergence: loss and accuracy per epoch of every trial, coloured by group.

Grid: for each model two rows (loss above, accuracy below), one column per dataset; every
trial is one thin line (alpha falls with the number of trials, lines rasterized), so
1000 trials and 3 trials are both readable. Epochs with non-finite values (a diverged
trial after it diverged) are left out of its line; a trial without any finite value is
counted in the panel's corner note. Loss uses a log axis by default because failed
trials reach losses orders of magnitude above the rest.

Drawn from the convergence data (:mod:`weightzoo.analysis.figuredata.convergence`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib.axes import Axes
from matplotlib.collections import LineCollection

from ..analysis.figuredata.store import FigureData, group_rules, read_all
from . import common as c

SPLITS = ("test", "train")
LOSS_SCALES = ("log", "linear")


def _curves(exp: FigureData, metric: str) -> tuple[list[np.ndarray], np.ndarray]:
    """Each trial's values of ``metric`` per epoch (accuracy in percent) and its group."""
    trials = exp.rows.groupby(["arch", "trial_id"], sort=False)
    curves = [t[metric].to_numpy(dtype=float) for _, t in trials]
    return curves, trials["group"].first().to_numpy(dtype=str)


def _segments(curves: list[np.ndarray], positive: bool) -> tuple[list[np.ndarray], np.ndarray]:
    """Finite (and, for log axes, positive) points of each curve as ``[k, 2]`` polylines."""
    segments, has_data = [], []
    for values in curves:
        epochs = np.arange(1, len(values) + 1)
        ok = np.isfinite(values) & ((values > 0) if positive else True)
        segments.append(np.column_stack([epochs[ok], values[ok]]))
        has_data.append(bool(ok.any()))
    return segments, np.array(has_data, dtype=bool)


def _line_style(n: int) -> tuple[float, float]:
    """(alpha, linewidth) so that both a handful and a thousand lines stay readable."""
    alpha = float(np.clip(3.0 / np.sqrt(max(n, 1)), 0.08, 0.9))
    return alpha, (0.6 if n > 100 else 1.0)


def _draw_curves(ax: Axes, exp: FigureData, metric: str, log: bool) -> None:
    curves, groups = _curves(exp, metric)
    segments, has_data = _segments(curves, positive=log)
    if not has_data.any():
        c.note_panel(ax, f"no finite {metric} values")
        return
    alpha, width = _line_style(len(curves))
    for g in c.DRAW_ORDER:
        mine = [s for s, grp, ok in zip(segments, groups, has_data, strict=True) if grp == g and ok]
        if mine:
            ax.add_collection(
                LineCollection(
                    mine, colors=c.GROUP_COLORS[g], alpha=alpha, linewidths=width, rasterized=True
                )
            )
    ax.autoscale_view()
    if log:
        ax.set_yscale("log")
    c.note_skipped(ax, int((~has_data).sum()))


def _panel(ax_loss: Axes, ax_acc: Axes, exp: FigureData | None, split: str, log: bool) -> None:
    if exp is None:
        c.note_panel(ax_loss, "no experiment")
        c.note_panel(ax_acc, "no experiment")
        return
    _draw_curves(ax_loss, exp, f"{split}_loss", log)
    _draw_curves(ax_acc, exp, f"{split}_acc", log=False)
    ax_loss.set_title(c.experiment_title(exp.model, exp.dataset), fontsize=10)
    ax_loss.set_ylabel(f"{split} loss")
    ax_acc.set_ylabel(f"{split} accuracy (%)")
    ax_acc.set_xlabel("epoch")
    c.add_group_legend(ax_loss, exp.counts, marker="")


def draw(
    inputs: Mapping[str, Sequence[str]],
    out_pdf: str,
    out_png: str,
    *,
    number: int = 1,
    split: str = "test",
    loss_scale: str = "log",
    dpi: int = c.DPI,
) -> None:
    """Draw Fig. 1 from the convergence data ``inputs["data"]`` of all experiments (grid:
    model rows x dataset columns, in the order of the files).

    ``split``: plot ``test`` or ``train`` loss/accuracy; ``loss_scale``: ``log`` or ``linear``.
    """
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    if loss_scale not in LOSS_SCALES:
        raise ValueError(f"loss_scale must be one of {LOSS_SCALES}, got {loss_scale!r}")
    experiments = read_all(inputs["data"], "convergence")
    models = list(dict.fromkeys(e.model for e in experiments))
    datasets = list(dict.fromkeys(e.dataset for e in experiments))
    by_cell = {(e.model, e.dataset): e for e in experiments}

    fig, axes = c.new_figure(2 * len(models), len(datasets), panel_size=(4.0, 2.8))
    for i, model in enumerate(models):
        for j, dataset in enumerate(datasets):
            _panel(
                axes[2 * i, j],
                axes[2 * i + 1, j],
                by_cell.get((model, dataset)),
                split,
                loss_scale == "log",
            )
    names = ", ".join(f"{c.model_label(m)}" for m in models)
    c.finish(
        fig,
        f"Fig. {number} — convergence: {split} loss and accuracy per epoch, {names}",
        f"Each line is one trial, coloured by accuracy group (legend: trials per group). "
        f"Columns: {', '.join(c.dataset_label(d) for d in datasets)}. Non-finite epochs of "
        f"diverged trials are not drawn; loss axis {loss_scale}.",
        group_rules(experiments),
        (out_pdf, out_png),
        dpi,
    )
