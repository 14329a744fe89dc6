"""How early a trial's fate is readable: accuracy and the high group predicted from the
weights of every stored state, epoch by epoch (:func:`predict_early`)."""

from __future__ import annotations

import pandas as pd
from sklearn.metrics import roc_auc_score
from threadpoolctl import threadpool_limits

from ...zoo.hdf5 import checkpoint_epoch
from .design import Design, state_design, trial_table
from .estimators import CLASSIFIERS, REGRESSORS, PredictSettings
from .files import EARLY_COLUMNS, VALIDATIONS
from .validation import fold_splits, out_of_fold, out_of_fold_proba, scores, skip_reason

EARLY_TARGETS = ("accuracy", "high")  # final test accuracy (regression), high group or not


def state_order(states) -> list[str]:
    """``initial``, ``epoch_<k>`` ascending, ``final``: the order training passes them."""

    def key(state):
        k = checkpoint_epoch(state)
        return (0, 0) if state == "initial" else (2, 0) if k is None else (1, k)

    unknown = [s for s in states if s not in ("initial", "final") and checkpoint_epoch(s) is None]
    if unknown:
        raise ValueError(f"unknown weight states {unknown}: use initial, final or epoch_<k>")
    return sorted(set(states), key=key)


def _early_rows(d: Design, base: dict, settings: PredictSettings) -> list[dict]:
    """Regression and classification rows of one state under both validations."""
    is_high = (d.trials["group"].to_numpy(dtype=str) == "high").astype(int)
    rows = []
    for validation in VALIDATIONS:
        reason = skip_reason(d, validation, settings.n_folds)
        splits = [] if reason else fold_splits(d, validation, settings)
        common = {**base, "validation": validation, "n_high": int(is_high.sum())}
        common["n_folds"] = len(splits)
        for name in REGRESSORS:
            row = {**common, "target": "accuracy", "estimator": name}
            if reason:
                rows.append({**row, "status": "skipped", "reason": reason})
                continue
            s = scores(d.y, out_of_fold(d, name, splits, settings), d.arch)
            rows.append({**row, "status": "ok", "r2": s["r2"], "kendall_tau": s["kendall_tau"]})
        one_class = is_high.min(initial=0) == is_high.max(initial=0)
        why = reason or (f"one class only ({int(is_high.sum())} high trials)" if one_class else "")
        for name in CLASSIFIERS:
            row = {**common, "target": "high", "estimator": name}
            if why:
                rows.append({**row, "status": "skipped", "reason": why})
                continue
            proba = out_of_fold_proba(d, is_high, name, splits, settings)
            auc = float(roc_auc_score(is_high, proba))
            rows.append({**row, "status": "ok", "roc_auc": auc})
    return rows


def predict_early(
    features: pd.DataFrame, epochs: int | None = None, settings: PredictSettings | None = None
) -> pd.DataFrame:
    """How early a trial's fate is readable: from the weight features of
    every stored state (``initial`` = epoch 0, ``epoch_<k>``, ``final`` = ``epochs``, NaN
    if not given), predict the final test accuracy (R², Kendall's τ; :data:`REGRESSORS`)
    and whether the trial ends in the high group (ROC AUC; :data:`CLASSIFIERS`), on
    held-out trials as :func:`.accuracy.predict_experiment` does. One row per state x target x
    estimator x validation (:data:`EARLY_COLUMNS`); skipped rows say why."""
    settings = settings or PredictSettings()
    experiments = features["experiment"].unique() if "experiment" in features else []
    if len(experiments) != 1:
        raise ValueError(
            f"features table must hold exactly one experiment, got {list(experiments)}"
        )
    identity = trial_table(features).iloc[0]
    rows = []
    with threadpool_limits(settings.threads):
        for state in state_order(features["state"].unique()):
            d = state_design(features, state)
            k = checkpoint_epoch_of(state, epochs)
            base = {
                "experiment": identity["experiment"],
                "model": identity["model"],
                "dataset": identity["dataset"],
                "state": state,
                "epoch": k,
                "n_trials": len(d.y) + d.n_dropped,
                "n_dropped": d.n_dropped,
                "n_used": len(d.y),
                "n_features": d.x.shape[1],
            }
            rows += _early_rows(d, base, settings)
    return pd.DataFrame(rows).reindex(columns=list(EARLY_COLUMNS))


def checkpoint_epoch_of(state: str, epochs: int | None) -> float:
    """Epochs trained at ``state``: 0, k, ``epochs`` (NaN when unknown) for final."""
    if state == "initial":
        return 0.0
    if state == "final":
        return float("nan") if epochs is None else float(epochs)
    return float(checkpoint_epoch(state))
