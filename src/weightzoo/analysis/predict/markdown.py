"""``results/predict/predict.md``: every experiment's scores in one Markdown table."""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np
import pandas as pd

from ...io import atomic_output
from .files import HPARAM_SETS, INCREMENT, RECONSTRUCTION_SETS


def _cell(value: float, sd: float = float("nan"), signed: bool = False) -> str:
    """A score, ``± sd`` where there is one (over fold seeds), ``+`` on differences."""
    if not np.isfinite(value):
        return "–"
    text = f"{value:+.2f}" if signed else f"{value:.2f}"
    return f"{text} ± {sd:.2f}" if np.isfinite(sd) else text


def results_markdown(results: Sequence[pd.DataFrame] | pd.DataFrame) -> str:
    """All experiments' scores as one markdown table: per experiment and feature set, R²
    and τ of both regressors under both validations, and τ within architectures (HGB)."""
    df = results if isinstance(results, pd.DataFrame) else pd.concat(results, ignore_index=True)
    header = [
        "experiment",
        "features",
        "n used (dropped)",
        "HGB R² cv5",
        "HGB τ cv5",
        "HGB τ within arch cv5",
        "ridge R² cv5",
        "HGB R² LOAO",
        "HGB τ LOAO",
        "ridge R² LOAO",
    ]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    skipped = []
    for (experiment, feature_set), part in df.groupby(["experiment", "features"], sort=False):
        at = part.set_index(["regressor", "validation"])

        def value(reg, val, col, at=at, signed=feature_set == INCREMENT):
            if (reg, val) not in at.index or at.loc[(reg, val), "status"] != "ok":
                return "–"
            sd = at.loc[(reg, val), f"{col}_sd"] if f"{col}_sd" in at else np.nan
            return _cell(float(at.loc[(reg, val), col]), float(sd), signed)

        first = part.iloc[0]
        lines.append(
            "| "
            + " | ".join(
                [
                    str(experiment),
                    str(feature_set),
                    f"{int(first['n_used'])} ({int(first['n_dropped'])})",
                    value("hgb", "cv5", "r2"),
                    value("hgb", "cv5", "kendall_tau"),
                    value("hgb", "cv5", "tau_within_arch"),
                    value("ridge", "cv5", "r2"),
                    value("hgb", "loao", "r2"),
                    value("hgb", "loao", "kendall_tau"),
                    value("ridge", "loao", "r2"),
                ]
            )
            + " |"
        )
        for _, r in part[part["status"] == "skipped"].drop_duplicates("validation").iterrows():
            skipped.append(f"- {experiment}, {feature_set}, {r['validation']}: {r['reason']}")
    notes = [
        "",
        "Final test accuracy (%) predicted from: final_weights = per-layer statistics of the "
        "final weights; final_spectral = the same plus WeightWatcher's spectral columns "
        "(alpha, D, norms; flagged fits left out); architecture = one-hot architecture "
        "only; initial_weights = the same "
        "statistics of the initial weights (leakage check: close to architecture under cv5, τ "
        "within arch near 0; under LOAO both weight inputs carry the layer sizes as numbers, "
        "the one-hot cannot).",
        "HGB = HistGradientBoostingRegressor, ridge = RidgeCV on standardised features. "
        "cv5 = 5-fold cross-validation (shuffled, fixed seed); LOAO = leave one architecture "
        "out. Scores on pooled out-of-fold predictions: R², Kendall's τ; τ within arch = τ "
        "inside each architecture, weighted by its trials (what the width cannot explain).",
        "n used (dropped) = trials scored (trials dropped for non-finite weights, features or "
        "accuracy); '–' = skipped (reasons below) or undefined.",
    ]
    if df["features"].isin(HPARAM_SETS).any():
        notes += [
            "",
            "Zoos whose training settings vary per trial: hyperparameters = the trial's "
            "settings alone (log10 of lr and init_std, a zero indicator and log10 of "
            "weight_decay, one-hot of the named ones, the rest as they are); "
            "architecture_hyperparameters = the same after the one-hot architecture; "
            "final_weights_hyperparameters = final_weights plus the settings; "
            f"{INCREMENT} = final_weights_hyperparameters minus hyperparameters, on the "
            "same trials and folds (what the weights say beyond the settings). 5-fold CV "
            "keeps the replicates of one setting in one fold and runs with several fold "
            "seeds: scores are mean ± sd over the seeds.",
        ]
    if df["features"].isin(RECONSTRUCTION_SETS).any():
        notes += [
            "",
            "Reconstructed experiments (docs/reconstruct.md): reconstruction = the trial's "
            "relative reconstruction errors alone (the weights' fit before any distillation: "
            "its own predictor network at each compression ratio, the shared "
            "representation); final_weights_reconstruction = "
            "final_weights plus those errors.",
        ]
    if skipped:
        notes += ["", "Skipped:", *skipped]
    title = "# Accuracy predicted from weights"
    return "\n".join([title, "", *lines, *notes]) + "\n"


def write_markdown(results: Sequence[pd.DataFrame], path: str | os.PathLike) -> None:
    with atomic_output(path) as tmp:
        tmp.write_text(results_markdown(results), encoding="utf-8")
