"""``results/predict/predict.md``: every experiment's scores in one Markdown table."""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np
import pandas as pd

from ...io import atomic_output


def _cell(value: float) -> str:
    return "–" if not np.isfinite(value) else f"{value:.2f}"


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

        def value(reg, val, col, at=at):
            if (reg, val) not in at.index or at.loc[(reg, val), "status"] != "ok":
                return "–"
            return _cell(float(at.loc[(reg, val), col]))

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
    if skipped:
        notes += ["", "Skipped:", *skipped]
    title = "# Accuracy predicted from weights"
    return "\n".join([title, "", *lines, *notes]) + "\n"


def write_markdown(results: Sequence[pd.DataFrame], path: str | os.PathLike) -> None:
    with atomic_output(path) as tmp:
        tmp.write_text(results_markdown(results), encoding="utf-8")
