"""Scoring on held-out trials: when a validation cannot run, its splits (5-fold or
leave-one-architecture-out), out-of-fold predictions and their scores."""

from __future__ import annotations

import numpy as np
from scipy.stats import kendalltau
from sklearn.base import clone
from sklearn.metrics import r2_score
from sklearn.model_selection import KFold, LeaveOneGroupOut

from ..spectral import VALUE_COLUMNS as SPECTRAL_VALUES
from .design import Design
from .estimators import PredictSettings, classifier, regressor


def skip_reason(d: Design, validation: str, n_folds: int) -> str | None:
    n, n_archs = len(d.y), len(set(d.arch))
    if d.x.shape[1] == 0:
        return "no features with values"
    if d.spectral and not any(c.split(":")[-1] in SPECTRAL_VALUES for c in d.x):
        return "no spectral columns with values (features.spectral off or an old table)"
    if validation == "cv5" and n < n_folds:
        return f"{n} usable trials < {n_folds} folds"
    if validation == "loao" and n_archs < 2:
        return f"{n_archs} architecture(s): leave-one-architecture-out needs >= 2"
    if n < 3:
        return f"{n} usable trials: R² and τ need >= 3"
    if np.ptp(d.y) == 0:
        return "accuracy is the same for every usable trial: nothing to predict"
    return None


def fold_splits(d: Design, validation: str, settings: PredictSettings):
    if validation == "cv5":
        folds = KFold(n_splits=settings.n_folds, shuffle=True, random_state=settings.seed)
        return list(folds.split(d.x))
    return list(LeaveOneGroupOut().split(d.x, groups=d.arch))


def out_of_fold(d: Design, name: str, splits, settings: PredictSettings) -> np.ndarray:
    """``[trial]`` predictions, each by a model fitted without that trial's fold."""
    predicted = np.full(len(d.y), np.nan)
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
