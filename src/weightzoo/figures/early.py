"""How early a trial's fate shows: held-out R² and Kendall's τ of the final
test accuracy, and ROC AUC of "ends in the high group", predicted from the weights of each
stored epoch, for one experiment. Drawing only: every number is read from the
``<experiment>.early.csv`` that :func:`weightzoo.analysis.predict.early.predict_early` wrote.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from matplotlib.axes import Axes

from ..analysis.predict.files import read_early
from .common import experiment_title, finish, new_figure, note_panel

PANELS = (  # (target, metric, y label, chance level)
    ("accuracy", "r2", "R² of final test accuracy", 0.0),
    ("accuracy", "kendall_tau", "Kendall's τ of final test accuracy", 0.0),
    ("high", "roc_auc", "ROC AUC of 'ends high'", 0.5),
)
COLORS = {"hgb": "tab:blue", "ridge": "tab:orange", "logistic": "tab:orange"}
LINESTYLES = {"cv5": "-", "loao": "--"}
VALIDATION_LABELS = {"cv5": "5-fold CV", "loao": "leave one arch out"}


def state_positions(table: pd.DataFrame) -> dict[str, float]:
    """x of each state: its epoch; ``final`` one past the last checkpoint if its epoch
    count is unknown."""
    epochs = table.drop_duplicates("state").set_index("state")["epoch"].astype(float)
    if "final" in epochs and not np.isfinite(epochs["final"]):
        epochs["final"] = np.nanmax(epochs.drop("final").to_numpy(), initial=0.0) + 1
    return epochs.to_dict()


def _panel(ax: Axes, table: pd.DataFrame, x: dict, target, metric, label, chance) -> None:
    rows = table[(table["target"] == target) & (table["status"] == "ok")]
    if rows.empty:
        reasons = table.loc[table["target"] == target, "reason"].dropna().unique()
        note_panel(ax, f"skipped: {reasons[0] if len(reasons) else 'no rows'}")
        return
    for (estimator, validation), part in rows.groupby(["estimator", "validation"], sort=False):
        part = part.assign(x=part["state"].map(x)).sort_values("x")
        ax.plot(
            part["x"],
            part[metric],
            marker="o",
            markersize=3,
            color=COLORS.get(estimator, "0.3"),
            linestyle=LINESTYLES.get(validation, ":"),
            label=f"{estimator.upper()}, {VALIDATION_LABELS.get(validation, validation)}",
        )
    ax.axhline(chance, color="0.6", linewidth=0.8, linestyle=":")
    ax.set_xticks(sorted(x.values()))
    ax.set_xticklabels(
        [
            f"{v:g}" + (" (final)" if s == "final" else "")
            for s, v in sorted(x.items(), key=lambda i: i[1])
        ],
        fontsize=7,
    )
    ax.set_xlabel("epoch of the weights")
    ax.set_ylabel(label)
    ax.legend(fontsize=6, loc="lower right")


def draw(
    inputs: Mapping[str, Sequence[str]], out_pdf: str, out_png: str, *, number=0, dpi=150
) -> None:
    """Draw the metric-vs-epoch figure of one experiment's early-prediction table
    (``inputs["early"]``: its CSV)."""
    early_path = inputs["early"][0]
    table = read_early(early_path)
    if table.empty:
        raise ValueError(f"{early_path}: no early-prediction rows to draw")
    first = table.iloc[0]
    x = state_positions(table)
    fig, axes = new_figure(1, len(PANELS), (3.6, 3.2))
    for ax, panel in zip(axes[0], PANELS, strict=True):
        _panel(ax, table, x, *panel)
    finish(
        fig,
        f"How early a trial's fate shows, {experiment_title(first['model'], first['dataset'])}",
        "Each point: a model fitted on the per-layer statistics of the weights at that epoch "
        "(0 = initial), scored on held-out trials (solid: 5-fold CV; dashed: leave one "
        "architecture out). Left, middle: the final test accuracy (HGB, ridge), R² and "
        "Kendall's τ; right: whether the trial ends in the high group (HGB, logistic), "
        "ROC AUC. Dotted line: chance.",
        {},
        (out_pdf, out_png),
        dpi,
    )
