"""Final test accuracy predicted from one experiment's features table: every feature set x
regressor x validation (:func:`predict_experiment`), for ``results/predict/<experiment>.csv``
and ``.oof.csv``; Kendall's τ per architecture from the out-of-fold predictions
(:func:`arch_taus`, ``.arch.csv``)."""

from __future__ import annotations

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from ..columns import SETTING_ID
from .design import Design, design, has_varied_settings, hparam_columns, trial_table
from .estimators import REGRESSORS, PredictSettings
from .files import (
    ARCH_COLUMNS,
    INCREMENT,
    OOF_COLUMNS,
    OOF_SEED_COLUMNS,
    RESULT_COLUMNS,
    SEED_COLUMNS,
    VALIDATIONS,
    input_sets,
)
from .validation import arch_tau, fold_splits, out_of_fold, scores, skip_reason

SCORES = ("r2", "kendall_tau", "tau_within_arch")  # averaged over fold seeds, with an sd


def predict_experiment(
    features: pd.DataFrame,
    settings: PredictSettings | None = None,
    reconstruction: pd.DataFrame | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Score every feature set x regressor x validation on one experiment's features table.

    Returns ``(results, oof)``: one row per combination (columns :data:`RESULT_COLUMNS`),
    and the out-of-fold predictions of every trial (columns :data:`OOF_COLUMNS`). Where the
    table's settings vary (``hp_`` or ``setting_id`` columns), the settings inputs
    (:data:`.files.HPARAM_SETS`) and the increment row (:data:`.files.INCREMENT`) join,
    5-fold CV keeps a setting's replicates in one fold and runs with
    ``settings.n_fold_seeds`` fold seeds, and both tables gain columns
    (:data:`SEED_COLUMNS`, :data:`OOF_SEED_COLUMNS`). A table with fixed settings gives the
    output it always gave. ``reconstruction``: the experiment's per-trial reconstruction
    errors (:func:`weightzoo.analysis.reconstruct.summary.trial_features`); given, the
    inputs :data:`.files.RECONSTRUCTION_SETS` join (without it the output is unchanged).
    """
    settings = settings or PredictSettings()
    experiments = features["experiment"].unique() if "experiment" in features else []
    if len(experiments) != 1:
        raise ValueError(
            f"features table must hold exactly one experiment, got {list(experiments)}"
        )
    with threadpool_limits(settings.threads):
        return _predict(features, settings, reconstruction)


def _predict(features: pd.DataFrame, settings: PredictSettings, reconstruction=None):
    trials = trial_table(features)
    identity = trials.iloc[0]
    varied = has_varied_settings(features)
    seeds = settings.fold_seeds(varied)
    rows, oof = [], []
    designs, runs = {}, {}  # per input; per (input, regressor, validation): scores per seed
    sets = input_sets(bool(hparam_columns(features)), reconstruction is not None)
    for feature_set in sets:
        d = designs[feature_set] = design(features, feature_set, reconstruction)
        for validation in VALIDATIONS:
            reason = skip_reason(d, validation, settings.n_folds)
            # leave one architecture out has no randomness: one run, under the first seed
            run_seeds = () if reason else seeds if validation == "cv5" else seeds[:1]
            splits = {seed: fold_splits(d, validation, settings, seed) for seed in run_seeds}
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
                    "n_folds": len(splits[seeds[0]]) if splits else 0,
                }
                if varied:
                    row.update(fold_groups=_fold_groups(d), n_fold_seeds=len(run_seeds))
                if reason:
                    rows.append(row)
                    continue
                per_seed = []
                for seed, seed_splits in splits.items():
                    predicted = out_of_fold(d, name, seed_splits, settings)
                    per_seed.append(scores(d.y, predicted, d.arch))
                    frame = _oof_frame(d, identity, feature_set, name, validation, predicted)
                    oof.append(_with_seed(frame, d, seed) if varied else frame)
                runs[feature_set, name, validation] = per_seed
                rows.append({**row, **(_over_seeds(per_seed) if varied else per_seed[0])})
    if hparam_columns(features):
        rows += _increment_rows(designs, runs, rows, settings)
    columns = [*RESULT_COLUMNS, *(SEED_COLUMNS if varied else ())]
    results = pd.DataFrame(rows).reindex(columns=columns)
    oof_columns = [*OOF_COLUMNS, *(OOF_SEED_COLUMNS if varied else ())]
    oof_table = (
        pd.concat(oof, ignore_index=True).reindex(columns=oof_columns)
        if oof
        else pd.DataFrame(columns=oof_columns)
    )
    return results, oof_table


def _fold_groups(d: Design) -> str:
    """What 5-fold CV keeps together: a sampled setting's replicates, or single trials."""
    return SETTING_ID if d.groups is not None else "trial"


def _oof_frame(d, identity, feature_set, name, validation, predicted) -> pd.DataFrame:
    return pd.DataFrame(
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


def _with_seed(frame: pd.DataFrame, d: Design, seed: int) -> pd.DataFrame:
    """The out-of-fold predictions of one fold seed, with it and each trial's setting."""
    sid = d.trials[SETTING_ID].to_numpy() if SETTING_ID in d.trials else np.nan
    return frame.assign(fold_seed=seed, setting_id=sid)


def _mean_sd(values) -> tuple[float, float]:
    """Mean and sample sd of the finite values (sd NaN with fewer than two)."""
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    mean = float(v.mean()) if len(v) else float("nan")
    return mean, float(v.std(ddof=1)) if len(v) >= 2 else float("nan")


def _over_seeds(per_seed: list[dict]) -> dict:
    """R², τ and τ within architecture as mean and sd over the fold seeds; the τ p-value
    is the largest of the seeds' (the least significant)."""
    out = {}
    for key in SCORES:
        out[key], out[f"{key}_sd"] = _mean_sd([s[key] for s in per_seed])
    p = np.asarray([s["kendall_p"] for s in per_seed], dtype=float)
    out["kendall_p"] = float(np.max(p)) if np.isfinite(p).all() else float("nan")
    return out


def _increment_rows(designs, runs, rows, settings: PredictSettings) -> list[dict]:
    """Per regressor and validation: scores of ``final_weights_hyperparameters`` minus
    those of ``hyperparameters``, fold seed by fold seed, on the trials the first uses
    (``hyperparameters`` is refitted on them, on the same folds, if the weights' drop rule
    left some out), as mean and sd over the seeds."""
    both, alone = designs["final_weights_hyperparameters"], designs["hyperparameters"]
    same = alone.subset(alone.trials.index.isin(both.trials.index))
    refit = len(same.y) != len(alone.y)
    out = []
    for row in rows:
        if row["features"] != "final_weights_hyperparameters":
            continue
        name, validation = row["regressor"], row["validation"]
        base = {
            **row,
            "features": INCREMENT,
            "n_features": both.x.shape[1] - alone.x.shape[1],  # the weight columns added
        }
        other = next(
            r
            for r in rows
            if (r["features"], r["regressor"], r["validation"])
            == ("hyperparameters", name, validation)
        )
        reason = row["reason"] or other["reason"]
        if reason:
            out.append({**base, "status": "skipped", "reason": reason})
            continue
        with_weights = runs["final_weights_hyperparameters", name, validation]
        without = runs["hyperparameters", name, validation]
        if refit:
            seeds = settings.fold_seeds(True)[: len(with_weights)]
            without = [
                scores(
                    same.y,
                    out_of_fold(same, name, fold_splits(both, validation, settings, s), settings),
                    same.arch,
                )
                for s in seeds
            ]
        diffs = {}
        for key in SCORES:
            diffs[key], diffs[f"{key}_sd"] = _mean_sd(
                [w[key] - o[key] for w, o in zip(with_weights, without, strict=True)]
            )
        out.append({**base, **diffs, "kendall_p": float("nan")})
    return out


def arch_taus(oof: pd.DataFrame, min_trials: int = PredictSettings.min_arch_trials) -> pd.DataFrame:
    """Kendall's τ of the held-out predictions inside each architecture, per input,
    regressor and validation (columns :data:`ARCH_COLUMNS`): the mean over the fold seeds
    (an ``oof`` without ``fold_seed`` has one) and its sd; NaN with the reason where an
    architecture has fewer than ``min_trials`` trials, a constant accuracy, or constant
    predictions under every seed."""
    keys = ["experiment", "features", "regressor", "validation", "arch"]
    oof = oof if "fold_seed" in oof else oof.assign(fold_seed=0)
    rows = []
    for key, part in oof.groupby(keys, sort=False):
        taus, reasons = [], []
        for _, run in part.groupby("fold_seed", sort=True):
            tau, why = arch_tau(
                run["true"].to_numpy(float), run["predicted"].to_numpy(float), min_trials
            )
            taus.append(tau)
            reasons.append(why)
        mean, sd = _mean_sd(taus)
        rows.append(
            {
                **dict(zip(keys, key, strict=True)),
                "status": "ok" if np.isfinite(mean) else "skipped",
                "reason": "" if np.isfinite(mean) else reasons[0],
                "n_trials": len(part) // part["fold_seed"].nunique(),
                "n_fold_seeds": part["fold_seed"].nunique(),
                "kendall_tau": mean,
                "kendall_tau_sd": sd,
            }
        )
    return pd.DataFrame(rows).reindex(columns=list(ARCH_COLUMNS))
