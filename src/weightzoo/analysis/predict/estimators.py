"""The estimators both analyses fit, and their settings: histogram gradient-boosted trees
(regressor and classifier, one set of options) and the linear models (``RidgeCV``,
logistic regression) behind a median imputer and a standard scaler."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression, RidgeCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

REGRESSORS = ("hgb", "ridge")
CLASSIFIERS = ("hgb", "logistic")
N_FOLDS = 5


@dataclass(frozen=True)
class PredictSettings:
    """Knobs of :func:`.accuracy.predict_experiment` and :func:`.early.predict_early`; the
    defaults keep the demo's stage fast."""

    seed: int = 0
    n_folds: int = N_FOLDS
    # small trees, few rounds, coarse bins: one fit on 400 trials x 75 features takes
    # ~0.2 s on one busy core (255 bins, 15 leaves, 100 rounds: ~1 s), at no loss of fit
    # on this data size
    hgb_max_iter: int = 60
    hgb_learning_rate: float = 0.1
    hgb_max_leaf_nodes: int = 8
    hgb_max_bins: int = 63
    # scikit-learn's default of 20 lets trees on a 40-trial zoo (32 per training fold)
    # hardly split at all
    hgb_min_samples_leaf: int = 5
    # OpenMP threads of the trees: on small data more threads mostly add overhead (10x
    # slower with 2 threads on a loaded 2-core machine), so one unless asked
    threads: int = 1
    ridge_alphas: tuple[float, ...] = tuple(np.logspace(-3, 3, 13))


class DropEmptyColumns(TransformerMixin, BaseEstimator):
    """Drops the columns without a finite value in the training fold. scikit-learn's
    histogram trees (1.9) fail on an all-NaN column ("window shape cannot be larger than
    input array shape"), which a fold gets when the only architecture with, e.g., a
    fitted WeightWatcher alpha is held out."""

    def fit(self, x, y=None):
        self.keep_ = np.isfinite(np.asarray(x, dtype=float)).any(axis=0)  # [features]
        return self

    def transform(self, x):
        return np.asarray(x, dtype=float)[:, self.keep_]


def hgb_options(settings: PredictSettings) -> dict:
    """The histogram trees' settings, shared by the regressor and the classifier."""
    return {
        "max_iter": settings.hgb_max_iter,
        "learning_rate": settings.hgb_learning_rate,
        "max_leaf_nodes": settings.hgb_max_leaf_nodes,
        "max_bins": settings.hgb_max_bins,
        "min_samples_leaf": settings.hgb_min_samples_leaf,
        "early_stopping": False,  # deterministic: no random validation split
        "random_state": settings.seed,
    }


def linear_preprocessing() -> list:
    """Before a linear model: NaN -> the fold's median plus a missing-indicator column, then
    standardised (the trees take NaN as it is)."""
    return [
        SimpleImputer(strategy="median", add_indicator=True, keep_empty_features=True),
        StandardScaler(),
    ]


def regressor(name: str, settings: PredictSettings):
    """A fresh, unfitted scikit-learn regressor: ``hgb`` or ``ridge``."""
    if name == "hgb":
        return make_pipeline(
            DropEmptyColumns(),
            HistGradientBoostingRegressor(**hgb_options(settings)),
        )
    if name == "ridge":
        return make_pipeline(*linear_preprocessing(), RidgeCV(alphas=settings.ridge_alphas))
    raise ValueError(f"unknown regressor {name!r}; use one of {REGRESSORS}")


def classifier(name: str, settings: PredictSettings):
    """A fresh classifier of 'ends in the high group': ``hgb`` (the regressor's trees) or
    ``logistic`` (the ridge's preprocessing, then a logistic regression)."""
    if name == "hgb":
        return make_pipeline(
            DropEmptyColumns(),
            HistGradientBoostingClassifier(**hgb_options(settings)),
        )
    if name == "logistic":
        return make_pipeline(*linear_preprocessing(), LogisticRegression(max_iter=1000))
    raise ValueError(f"unknown classifier {name!r}; use one of {CLASSIFIERS}")
