"""Scoring on held-out trials: when a validation cannot run, its splits (5-fold, grouped
by sampled setting where the table has one, or leave-one-architecture-out), out-of-fold
predictions and their scores, pooled and per architecture."""

from __future__ import annotations

import numpy as np
from scipy.stats import kendalltau
from sklearn.base import clone
from sklearn.metrics import r2_score
from sklearn.model_selection import GroupKFold, KFold, LeaveOneGroupOut

from ..spectral import VALUE_COLUMNS as SPECTRAL_VALUES
from .design import Design
from .estimators import PredictSettings, classifier, hparam_encoder, regressor


def skip_reason(d: Design, validation: str, n_folds: int) -> str | None:
    n, n_archs = len(d.y), len(set(d.arch))
    if d.x.shape[1] == 0:
        return "no features with values"
    if d.spectral and not any(c.split(":")[-1] in SPECTRAL_VALUES for c in d.x):
        return "no spectral columns with values (features.spectral off or an old table)"
    if validation == "cv5" and n < n_folds:
        return f"{n} usable trials < {n_folds} folds"
    n_settings = len(np.unique(d.groups)) if d.groups is not None else n
    if validation == "cv5" and n_settings < n_folds:
        return f"{n_settings} settings < {n_folds} folds (a setting's replicates share a fold)"
    if validation == "loao" and n_archs < 2:
        return f"{n_archs} architecture(s): leave-one-architecture-out needs >= 2"
    if n < 3:
        return f"{n} usable trials: R² and τ need >= 3"
    if np.ptp(d.y) == 0:
        return "accuracy is the same for every usable trial: nothing to predict"
    return None


def fold_splits(d: Design, validation: str, settings: PredictSettings, seed: int | None = None):
    """``[(train, test)]`` index arrays. 5-fold CV shuffles with ``seed`` (default
    ``settings.seed``); where the design has setting groups it keeps each group (the
    replicates of one sampled setting) inside one fold: replicates share their settings, so
    a replicate in the training fold would hand its setting's accuracy to the settings
    inputs."""
    seed = settings.seed if seed is None else seed
    if validation == "cv5" and d.groups is not None:
        folds = GroupKFold(n_splits=settings.n_folds, shuffle=True, random_state=seed)
        return list(folds.split(d.x, groups=d.groups))
    if validation == "cv5":
        folds = KFold(n_splits=settings.n_folds, shuffle=True, random_state=seed)
        return list(folds.split(d.x))
    return list(LeaveOneGroupOut().split(d.x, groups=d.arch))


def out_of_fold(d: Design, name: str, splits, settings: PredictSettings) -> np.ndarray:
    """``[trial]`` predictions, each by a model fitted without that trial's fold."""
    predicted = np.full(len(d.y), np.nan)
    if d.hparams:  # named settings stay text until the fold's one-hot encoder
        x, encoder = d.x, hparam_encoder(d.x, d.hparams)
        for train, test in splits:
            model = clone(regressor(name, settings, encoder)).fit(x.iloc[train], d.y[train])
            predicted[test] = model.predict(x.iloc[test])
        return predicted
    x = d.x.to_numpy(dtype=float)
    for train, test in splits:
        model = clone(regressor(name, settings)).fit(x[train], d.y[train])
        predicted[test] = model.predict(x[test])
    return predicted


def within_arch_tau(y: np.ndarray, predicted: np.ndarray, arch: np.ndarray) -> float:
    """Kendall's τ inside each architecture, averaged with weights = its trials (NaN if
    no architecture has two distinct accuracies and predictions)."""
    taus, weights = [], []
    for a in np.unique(arch):
        m = arch == a
        if m.sum() >= 3 and np.ptp(y[m]) > 0 and np.ptp(predicted[m]) > 0:
            taus.append(kendalltau(y[m], predicted[m]).statistic)
            weights.append(m.sum())
    return float(np.average(taus, weights=weights)) if taus else float("nan")


def scores(y: np.ndarray, predicted: np.ndarray, arch: np.ndarray) -> dict[str, float]:
    """R², Kendall's τ (and its p-value) and τ within architectures."""
    tau = (
        kendalltau(y, predicted) if np.ptp(predicted) > 0 else None
    )  # constant predictions have no ranking
    return {
        "r2": float(r2_score(y, predicted)),
        "kendall_tau": float(tau.statistic) if tau else float("nan"),
        "kendall_p": float(tau.pvalue) if tau else float("nan"),
        "tau_within_arch": within_arch_tau(y, predicted, arch),
    }


def arch_tau(y: np.ndarray, predicted: np.ndarray, min_trials: int) -> tuple[float, str]:
    """Kendall's τ of one architecture's held-out predictions, or NaN and the reason."""
    if len(y) < min_trials:
        return float("nan"), f"{len(y)} held-out trials < {min_trials}"
    if np.ptp(y) == 0:
        return float("nan"), "accuracy is the same for every trial of this architecture"
    if np.ptp(predicted) == 0:
        return float("nan"), "the predictions are constant: no ranking"
    return float(kendalltau(y, predicted).statistic), ""


def out_of_fold_proba(
    d: Design, is_high: np.ndarray, name: str, splits, settings: PredictSettings
) -> np.ndarray:
    """``[trial]`` out-of-fold probability of the high group. A training fold holding one
    class only (leave-one-architecture-out, mostly) predicts that class's frequency."""
    proba = np.full(len(is_high), np.nan)
    x = d.x.to_numpy(dtype=float)
    for train, test in splits:
        if len(np.unique(is_high[train])) < 2:
            proba[test] = is_high[train].mean()
            continue
        model = clone(classifier(name, settings)).fit(x[train], is_high[train])
        proba[test] = model.predict_proba(x[test])[:, 1]
    return proba
