"""Predicted vs true final test accuracy of one experiment, drawn from the
out-of-fold predictions that :mod:`weightzoo.analysis.predict` saved: columns = the
inputs (final weights, final weights + spectra, architecture, initial weights; where the
zoo's settings vary also hyperparameters only, architecture + hyperparameters, final
weights + hyperparameters), rows = 5-fold CV and leave-one-architecture-out; one dot per
trial, coloured by accuracy group, the diagonal is a perfect prediction. Drawing only:
every number shown is read from the files.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from matplotlib.axes import Axes

from ..analysis.groups import group_counts
from ..analysis.predict.files import (
    HPARAM_SETS,
    RECONSTRUCTION_SETS,
    VALIDATIONS,
    input_sets,
    read_oof,
    read_results,
)
from . import common as c

FEATURE_TITLES = {
    "final_weights": "final weights",
    "final_spectral": "final weights + spectra",
    "architecture": "architecture only",
    "initial_weights": "initial weights",
    "hyperparameters": "hyperparameters only",
    "architecture_hyperparameters": "architecture + hyperparameters",
    "final_weights_hyperparameters": "final weights + hyperparameters",
    "reconstruction": "reconstruction errors",
    "final_weights_reconstruction": "final weights + reconstruction errors",
}
SETTINGS_CAPTION = (
    " The zoo's training settings vary per trial: the last three columns add them as "
    "inputs (alone, after the architecture, after the final weights). 5-fold CV keeps a "
    "setting's replicates in one fold and runs with several fold seeds: the scores are "
    "mean ± sd over the seeds, the dots those of the first seed."
)
VALIDATION_TITLES = {"cv5": "5-fold CV", "loao": "leave one architecture out"}


def _num(value: float) -> str:
    return f"{value:.2f}" if np.isfinite(value) else "–"  # undefined (e.g. no ranking)


def _score(row: pd.Series, column: str) -> str:
    """A score, with ``± sd`` over the fold seeds where the file has one."""
    sd = row.get(f"{column}_sd", np.nan)
    sd = float(sd) if pd.notna(sd) else np.nan
    return _num(row[column]) + (f" ± {sd:.2f}" if np.isfinite(sd) else "")


def _panel(ax: Axes, points: pd.DataFrame, row: pd.Series | None, title: str) -> None:
    ax.set_title(title, fontsize=9)
    if row is None or row["status"] != "ok" or points.empty:
        reason = "not computed" if row is None else row["reason"] or "no predictions"
        c.note_panel(ax, f"skipped: {reason}")
        return
    true, predicted = points["true"].to_numpy(float), points["predicted"].to_numpy(float)
    c.scatter_by_group(ax, true, predicted, points["group"].to_numpy(dtype=str))
    lo = float(np.nanmin([true.min(), predicted.min()]))
    hi = float(np.nanmax([true.max(), predicted.max()]))
    ax.plot([lo, hi], [lo, hi], color="0.3", linewidth=0.8, linestyle="--")
    ax.text(
        0.03,
        0.97,
        f"R² = {_score(row, 'r2')}\nτ = {_score(row, 'kendall_tau')}\n"
        f"τ within arch = {_score(row, 'tau_within_arch')}\nn = {int(row['n_used'])}",
        transform=ax.transAxes,
        ha="left",
        va="top",
        fontsize=7,
        bbox={"facecolor": "white", "alpha": 0.7, "linewidth": 0},
    )
    ax.set_xlabel("true final test accuracy (%)")
    ax.set_ylabel("predicted (%)")


def _rule_of(oof: pd.DataFrame) -> str:
    rules = sorted(set(oof["group_rule"].astype(str))) if len(oof) else ["bands"]
    return ",".join(rules)


def draw(
    inputs: Mapping[str, Sequence[str]],
    out_pdf: str,
    out_png: str,
    *,
    number: int = 0,
    regressor: str = "hgb",
    dpi: int = 150,
) -> None:
    """Draw the predicted-vs-true figure of one experiment's predictor files
    (``inputs["results"]``: its scores CSV, ``inputs["oof"]``: its out-of-fold CSV)."""
    results_path = inputs["results"][0]
    results, oof = read_results(results_path), read_oof(inputs["oof"][0])
    if results.empty:
        raise ValueError(f"{results_path}: no predictor results to draw")
    first = results.iloc[0]
    with_settings = results["features"].isin(HPARAM_SETS).any()
    inputs = input_sets(with_settings, results["features"].isin(RECONSTRUCTION_SETS).any())
    title_break = "\n" if with_settings else " — "
    fig, axes = c.new_figure(len(VALIDATIONS), len(inputs), (3.4, 3.1))
    mine = oof[oof["regressor"] == regressor]
    if "fold_seed" in mine and len(mine):  # the dots of one fold seed, the first
        mine = mine[mine["fold_seed"] == mine["fold_seed"].min()]
    counts = None
    for i, validation in enumerate(VALIDATIONS):
        for j, feature_set in enumerate(inputs):
            match = results[
                (results["features"] == feature_set)
                & (results["validation"] == validation)
                & (results["regressor"] == regressor)
            ]
            points = mine[(mine["features"] == feature_set) & (mine["validation"] == validation)]
            if counts is None and not points.empty:
                counts = group_counts(points["group"].astype(str))
            _panel(
                axes[i, j],
                points,
                None if match.empty else match.iloc[0],
                # seven columns leave no room for a title on one line
                f"{FEATURE_TITLES[feature_set]}{title_break}{VALIDATION_TITLES[validation]}",
            )
    if counts is not None:
        c.add_group_legend(axes[0, 0], counts)
    name = f"{c.model_label(first['model'])} {c.dataset_label(first['dataset'])}"
    c.finish(
        fig,
        f"Final test accuracy predicted from weights, {name} ({regressor.upper()})",
        "One dot per trial: its true final test accuracy (x) and the prediction of a model "
        "fitted without it (y), coloured by accuracy group; dashed line = perfect "
        "prediction. Columns: the predictor's input (per-layer statistics of the final "
        "weights, the same plus WeightWatcher's spectral columns, the one-hot "
        "architecture, the same statistics of the initial weights). "
        "Rows: 5-fold cross-validation, leave one architecture out (the held-out width was "
        "never seen). τ = Kendall's τ; τ within arch = τ inside each architecture, "
        "weighted by its trials." + (SETTINGS_CAPTION if with_settings else ""),
        {str(first["experiment"]): _rule_of(oof)},
        (out_pdf, out_png),
        dpi,
    )
