"""The estimators both analyses fit, and their settings: histogram gradient-boosted trees
(regressor and classifier, one set of options) and the linear models (``RidgeCV``,
logistic regression) behind a median imputer and a standard scaler; before either, where
the inputs hold training settings, the encoder of those settings (:func:`hparam_encoder`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression, RidgeCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, StandardScaler

from ...train.hparams import LOG_SCALE, LOG_SCALE_WITH_ZEROS
from ...zoo.columns import hparam_column

REGRESSORS = ("hgb", "ridge")
CLASSIFIERS = ("hgb", "logistic")
N_FOLDS = 5
# settings spread over decades (drawn log-uniform): the model sees log10 of them
LOG10_HPARAMS = tuple(hparam_column(n) for n in LOG_SCALE if n not in LOG_SCALE_WITH_ZEROS)
# log-uniform settings with a share of exact zeros: a zero indicator plus log10 of the rest
ZERO_LOG10_HPARAMS = tuple(hparam_column(n) for n in LOG_SCALE_WITH_ZEROS)


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
    # on tables whose settings vary, 5-fold CV runs with fold seeds seed, seed + 1, ...:
    # which setting lands in which fold moves the scores of a few hundred trials by a few
    # hundredths, as large as the differences between inputs
    n_fold_seeds: int = 3
    # Kendall's τ inside one architecture needs at least this many held-out trials
    min_arch_trials: int = 10

    def fold_seeds(self, varied_settings: bool) -> tuple[int, ...]:
        """The seeds of 5-fold CV: one (``seed``, as the predictor always had) for a zoo
        with fixed settings, ``n_fold_seeds`` where the settings vary."""
        return tuple(self.seed + i for i in range(self.n_fold_seeds if varied_settings else 1))


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


def log10_positive(x) -> np.ndarray:
    """``[n, k]`` log10 where positive, NaN elsewhere (a zero has no log; the trees take
    NaN as its own branch, the linear models impute it and add a missing-indicator)."""
    x = np.asarray(x, dtype=float)
    positive = x > 0
    return np.where(positive, np.log10(np.where(positive, x, 1.0)), np.nan)


def zero_and_log10(x) -> np.ndarray:
    """``[n, k]`` -> ``[n, 2k]``: whether each value is exactly 0, then log10 of the
    positive ones (NaN at the zeros). Weight decay is drawn log-uniform with a share of
    exact zeros: log10(x + tiny) would put the zeros decades below the rest, a gap a linear
    model reads as a huge effect."""
    x = np.asarray(x, dtype=float)
    return np.hstack([(x == 0).astype(float), log10_positive(x)])


def _zero_log10_names(transformer, names):
    return [f"{n}==0" for n in names] + [f"log10({n})" for n in names]


def hparam_encoder(x: pd.DataFrame, hparams: Sequence[str]) -> ColumnTransformer:
    """Encodes the training settings ``hparams`` among the columns of ``x``, fitted on the
    training fold only: log10 of :data:`LOG10_HPARAMS`, a zero indicator and log10 of
    :data:`ZERO_LOG10_HPARAMS`, one-hot of the named ones (object columns; a name the
    training fold lacks gets all zeros); the other settings (dropout, train fraction) and
    every other column (weight features, one-hot architecture) pass as they are."""
    missing = [c for c in hparams if c not in x]
    if missing:
        raise ValueError(f"settings {missing} are not among the design's columns")
    named = [c for c in hparams if x[c].dtype == object]
    log10 = [c for c in hparams if c in LOG10_HPARAMS and c not in named]
    zero_log10 = [c for c in hparams if c in ZERO_LOG10_HPARAMS and c not in named]
    parts = [
        ("log10", FunctionTransformer(log10_positive, feature_names_out="one-to-one"), log10),
        (
            "zero_log10",
            FunctionTransformer(zero_and_log10, feature_names_out=_zero_log10_names),
            zero_log10,
        ),
        ("one_hot", OneHotEncoder(handle_unknown="ignore", sparse_output=False), named),
    ]
    return ColumnTransformer(
        [part for part in parts if part[2]], remainder="passthrough", sparse_threshold=0.0
    )


def regressor(name: str, settings: PredictSettings, encoder: ColumnTransformer | None = None):
    """A fresh, unfitted scikit-learn regressor: ``hgb`` or ``ridge``; ``encoder`` (the
    settings' :func:`hparam_encoder`) first where the inputs hold training settings."""
    first = [encoder] if encoder is not None else []
    if name == "hgb":
        return make_pipeline(
            *first,
            DropEmptyColumns(),
            HistGradientBoostingRegressor(**hgb_options(settings)),
        )
    if name == "ridge":
        return make_pipeline(*first, *linear_preprocessing(), RidgeCV(alphas=settings.ridge_alphas))
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
