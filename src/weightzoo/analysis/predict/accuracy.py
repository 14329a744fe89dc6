"""Final test accuracy predicted from one experiment's features table: every feature set x
regressor x validation (:func:`predict_experiment`), for ``results/predict/<experiment>.csv``
and ``.oof.csv``."""

from __future__ import annotations

import pandas as pd
from threadpoolctl import threadpool_limits

from .design import design, trial_table
from .estimators import REGRESSORS, PredictSettings
from .files import FEATURE_SETS, OOF_COLUMNS, RESULT_COLUMNS, VALIDATIONS
from .validation import fold_splits, out_of_fold, scores, skip_reason


def predict_experiment(
    features: pd.DataFrame, settings: PredictSettings | None = None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Score every feature set x regressor x validation on one experiment's features table.

    Returns ``(results, oof)``: one row per combination (columns :data:`RESULT_COLUMNS`),
    and the out-of-fold predictions of every trial (columns :data:`OOF_COLUMNS`).
    """
    settings = settings or PredictSettings()
    experiments = features["experiment"].unique() if "experiment" in features else []
    if len(experiments) != 1:
        raise ValueError(
            f"features table must hold exactly one experiment, got {list(experiments)}"
        )
    with threadpool_limits(settings.threads):
        return _predict(features, settings)


def _predict(features: pd.DataFrame, settings: PredictSettings):
    trials = trial_table(features)
    identity = trials.iloc[0]
    rows, oof = [], []
    for feature_set in FEATURE_SETS:
        d = design(features, feature_set)
        for validation in VALIDATIONS:
            reason = skip_reason(d, validation, settings.n_folds)
            splits = [] if reason else fold_splits(d, validation, settings)
            for name in REGRESSORS:
                row = {
                    "experiment": identity["experiment"],
                    "model": identity["model"],
                    "dataset": identity["dataset"],
                    "features": feature_set,
                    "regressor": name,
                    "validation": validation,
                    "status": "skipped" if reason else "ok",
                    "reason": reason or "",
                    "n_trials": len(trials),
                    "n_dropped": d.n_dropped,
                    "n_used": len(d.y),
                    "n_archs": len(set(d.arch)),
                    "n_features": d.x.shape[1],
                    "n_folds": len(splits),
                }
                if reason:
                    rows.append(row)
                    continue
                predicted = out_of_fold(d, name, splits, settings)
                rows.append({**row, **scores(d.y, predicted, d.arch)})
                oof.append(
                    pd.DataFrame(
                        {
                            "experiment": identity["experiment"],
                            "arch": d.arch,
                            "trial_id": d.trials.index.get_level_values("trial_id"),
                            "group": d.trials["group"].to_numpy(dtype=str),
                            "group_rule": d.trials["group_rule"].to_numpy(dtype=str),
                            "features": feature_set,
                            "regressor": name,
                            "validation": validation,
                            "true": d.y,
                            "predicted": predicted,
                        }
                    )
                )
    results = pd.DataFrame(rows).reindex(columns=list(RESULT_COLUMNS))
    oof_table = (
        pd.concat(oof, ignore_index=True) if oof else pd.DataFrame(columns=list(OOF_COLUMNS))
    )
    return results, oof_table
