"""Final test accuracy predicted from weight features (issue 9 §3).

After Unterthiner et al. 2020 ("Predicting Neural Network Accuracy from Weights"), per
experiment: a gradient-boosted tree regressor (scikit-learn's
``HistGradientBoostingRegressor``) and a linear baseline (``RidgeCV`` on standardised
features) predict a trial's final test accuracy (percent) from one of three inputs:

* ``final_weights``: the features of the trial's final weights (one column per feature
  and layer, from the long features table, ``state == "final"``);
* ``final_spectral``: the same plus WeightWatcher's spectral columns (``ww_*``,
  :mod:`.spectral`); a flagged (``ww_unreliable``) fit is NaN, never a reason to drop a
  trial (skipped when the table has no spectral columns);
* ``architecture``: the architecture alone (one-hot), the width baseline;
* ``initial_weights``: the features of the initial weights, a leakage check: initial
  weights carry no more than the architecture (and the seed), so under 5-fold CV this
  should score about as well as ``architecture``. (Under leave-one-architecture-out it
  can score far better than the one-hot code: its statistics carry the layer sizes as
  numbers, from which a model interpolates to an unseen width.)

Each is scored on held-out trials twice: 5-fold cross-validation (shuffled, fixed seed)
and leave-one-architecture-out (every architecture held out once; only with >= 2
architectures), which asks whether the weights predict accuracy beyond the width. Scores
are computed on the pooled out-of-fold predictions: R² (``sklearn.metrics.r2_score``),
Kendall's τ (``scipy.stats.kendalltau``) and τ within architectures (τ per architecture,
weighted by its trials), the part of the ranking the width cannot explain.

Trials are dropped, and counted, when a row of theirs is flagged ``nonfinite``, when a
feature of theirs is NaN where other trials of their architecture have a value, or when
their accuracy is not finite. Features no trial has (biases of a bias-free layer,
``travel`` on initial weights) are left out; features missing for a whole architecture (a
layer it lacks) stay NaN: the trees handle NaN natively, the linear model imputes the
median and adds a missing-indicator. Too few trials for the folds, a single architecture
for leave-one-architecture-out, or a constant accuracy give a row with ``status ==
"skipped"`` and the reason, never an error.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.stats import kendalltau
from sklearn.base import BaseEstimator, TransformerMixin, clone
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression, RidgeCV
from sklearn.metrics import r2_score, roc_auc_score
from sklearn.model_selection import KFold, LeaveOneGroupOut
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

from ..io import atomic_output
from ..zoo.hdf5 import checkpoint_epoch
from .features import FEATURE_COLUMNS
from .spectral import FIT_COLUMNS
from .spectral import VALUE_COLUMNS as SPECTRAL_VALUES

TARGET = "final_test_acc"
# final_spectral: final_weights plus WeightWatcher's columns (issue 10 §4), to read off
# how much the spectra add to R²
FEATURE_SETS = ("final_weights", "final_spectral", "architecture", "initial_weights")
REGRESSORS = ("hgb", "ridge")
VALIDATIONS = ("cv5", "loao")
N_FOLDS = 5
TRIAL_KEY = ["arch", "trial_id"]  # trial ids count within an architecture
TRIAL_COLUMNS = ("experiment", "model", "dataset", "arch_index", "group", TARGET)
RESULT_COLUMNS = (
    "experiment",
    "model",
    "dataset",
    "features",
    "regressor",
    "validation",
    "status",
    "reason",
    "n_trials",
    "n_dropped",
    "n_used",
    "n_archs",
    "n_features",
    "n_folds",
    "r2",
    "kendall_tau",
    "kendall_p",
    "tau_within_arch",
)
OOF_COLUMNS = (
    "experiment",
    "arch",
    "trial_id",
    "group",
    "group_rule",
    "features",
    "regressor",
    "validation",
    "true",
    "predicted",
)


@dataclass(frozen=True)
class PredictSettings:
    """Knobs of :func:`predict_experiment`; the defaults keep the demo's stage fast."""

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


# ----------------------------------------------------------------- design matrices


def feature_columns(features: pd.DataFrame, spectral: bool = False) -> list[str]:
    """The feature columns (:data:`weightzoo.analysis.features.FEATURE_COLUMNS`, and
    WeightWatcher's values if ``spectral``) present in ``features``; identity columns
    (layer sizes included) are never features."""
    wanted = (*FEATURE_COLUMNS, *(SPECTRAL_VALUES if spectral else ()))
    return [c for c in wanted if c in features]


def without_flagged_fits(rows: pd.DataFrame) -> pd.DataFrame:
    """``rows`` with WeightWatcher's fit columns NaN where the fit is flagged unreliable."""
    if "ww_unreliable" not in rows:
        return rows
    present = [c for c in FIT_COLUMNS if c in rows]
    flagged = rows["ww_unreliable"].to_numpy(dtype=bool)
    return rows.assign(**{c: rows[c].mask(flagged) for c in present})


def trial_table(features: pd.DataFrame) -> pd.DataFrame:
    """One row per trial (index ``(arch, trial_id)``, column ``arch`` too): its identity,
    group and accuracy."""
    missing = [c for c in (*TRIAL_COLUMNS, *TRIAL_KEY, "state", "layer") if c not in features]
    if missing:
        raise ValueError(
            f"features table lacks columns {missing}; build it with "
            "weightzoo.analysis.features.zoo_features (see docs/features.md)"
        )
    by_trial = features.groupby(TRIAL_KEY, sort=False)
    trials = by_trial[list(TRIAL_COLUMNS)].first()
    # groups made before issue 9 §4 were all bands
    rules = by_trial["group_rule"].first() if "group_rule" in features else "bands"
    trials = trials.assign(group_rule=rules, arch=trials.index.get_level_values("arch"))
    return trials.sort_values(["arch_index", "trial_id"], kind="stable")


def weight_matrix(
    features: pd.DataFrame, state: str, spectral: bool = False
) -> tuple[pd.DataFrame, pd.Series]:
    """Wide matrix ``[trial, layer:feature]`` of one weight state (``final``, ``initial``,
    ``epoch_<k>``), and per trial whether any of its rows is flagged non-finite. Layers in
    ``layer_index`` order. ``spectral``: add WeightWatcher's columns (flagged fits NaN)."""
    rows = features[features["state"] == state]
    if "layer_index" in rows:
        rows = rows.sort_values("layer_index", kind="stable")
    if spectral:
        rows = without_flagged_fits(rows)
    layers = list(dict.fromkeys(rows["layer"]))
    feats = feature_columns(rows, spectral)
    wide = rows.pivot(index=TRIAL_KEY, columns="layer", values=feats)  # columns (feat, layer)
    order = [(feat, layer) for layer in layers for feat in feats]
    wide = wide.reindex(columns=pd.MultiIndex.from_tuples(order))
    wide.columns = [f"{layer}:{feat}" for feat, layer in order]
    flagged = (
        rows.groupby(TRIAL_KEY)["nonfinite"].any()
        if "nonfinite" in rows
        else pd.Series(False, index=wide.index)
    )
    return wide.astype(float), flagged.reindex(wide.index, fill_value=False)


def architecture_matrix(trials: pd.DataFrame) -> pd.DataFrame:
    """One-hot architecture per trial."""
    return pd.get_dummies(trials["arch"], prefix="arch", dtype=float).set_axis(trials.index)


@dataclass
class Design:
    """What one feature set gives the regressors."""

    x: pd.DataFrame  # [trial, feature] of the usable trials
    y: np.ndarray  # [trial] final test accuracy, percent
    arch: np.ndarray  # [trial] architecture names
    trials: pd.DataFrame  # identity of the usable trials (index (arch, trial_id))
    n_dropped: int  # trials dropped for non-finite weights, features or accuracy
    spectral: bool = False  # WeightWatcher's columns asked for


def _weight_design(features, trials, state: str, spectral: bool):
    """``(x, drop [trial])`` of one state's weight features, by the module's drop rule."""
    x, flagged = weight_matrix(features, state, spectral)
    x = x.reindex(trials.index)  # a trial without rows of this state has only NaN
    x = x.loc[:, x.notna().any(axis=0)]  # features nobody has
    # NaN where the trial's architecture has values elsewhere = this trial's fault (a
    # spectral fit may fail or be flagged for one trial alone: never a reason to drop)
    checked = x[[c for c in x if c.split(":")[-1] not in SPECTRAL_VALUES]]
    arch_has = checked.notna().groupby(level="arch").transform("any")
    trial_nan = (checked.isna() & arch_has).any(axis=1)
    all_nan = checked.isna().all(axis=1)
    drop = flagged.reindex(trials.index, fill_value=True) | trial_nan | all_nan
    return x, drop.to_numpy()


def state_design(features: pd.DataFrame, state: str, spectral: bool = False) -> Design:
    """Design matrix of one weight state's features (``final``, ``initial``,
    ``epoch_<k>``), with the drop rule of the module docstring."""
    trials = trial_table(features)
    x, drop = _weight_design(features, trials, state, spectral)
    return _usable(x, trials, drop)


def design(features: pd.DataFrame, feature_set: str) -> Design:
    """Design matrix of one feature set, with the drop rule of the module docstring."""
    if feature_set in ("final_weights", "initial_weights"):
        return state_design(features, feature_set.split("_")[0])
    if feature_set == "final_spectral":
        d = state_design(features, "final", spectral=True)
        d.spectral = True
        return d
    if feature_set == "architecture":
        trials = trial_table(features)
        return _usable(architecture_matrix(trials), trials, np.zeros(len(trials), dtype=bool))
    raise ValueError(f"unknown feature set {feature_set!r}; use one of {FEATURE_SETS}")


def _usable(x: pd.DataFrame, trials: pd.DataFrame, drop: np.ndarray) -> Design:
    """The :class:`Design` of the trials not dropped (nor lacking a finite accuracy)."""
    drop = drop | ~np.isfinite(trials[TARGET].to_numpy(dtype=float))
    keep = ~drop
    return Design(
        x=x.loc[keep],
        y=trials.loc[keep, TARGET].to_numpy(dtype=float),
        arch=trials.loc[keep, "arch"].to_numpy(dtype=str),
        trials=trials.loc[keep],
        n_dropped=int(drop.sum()),
    )


# ------------------------------------------------------------------------- scoring


def _skip_reason(d: Design, validation: str, n_folds: int) -> str | None:
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


def _splits(d: Design, validation: str, settings: PredictSettings):
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
            reason = _skip_reason(d, validation, settings.n_folds)
            splits = [] if reason else _splits(d, validation, settings)
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


# ----------------------------------------------------------- early prediction (§3)

EARLY_TARGETS = ("accuracy", "high")  # final test accuracy (regression), high group or not
CLASSIFIERS = ("hgb", "logistic")
EARLY_COLUMNS = (
    "experiment",
    "model",
    "dataset",
    "state",
    "epoch",
    "target",
    "estimator",
    "validation",
    "status",
    "reason",
    "n_trials",
    "n_dropped",
    "n_used",
    "n_high",
    "n_features",
    "n_folds",
    "r2",
    "kendall_tau",
    "roc_auc",
)


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
        reason = _skip_reason(d, validation, settings.n_folds)
        splits = [] if reason else _splits(d, validation, settings)
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
    """How early a trial's fate is readable (issue 10 §3): from the weight features of
    every stored state (``initial`` = epoch 0, ``epoch_<k>``, ``final`` = ``epochs``, NaN
    if not given), predict the final test accuracy (R², Kendall's τ; :data:`REGRESSORS`)
    and whether the trial ends in the high group (ROC AUC; :data:`CLASSIFIERS`), on
    held-out trials as :func:`predict_experiment` does. One row per state x target x
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


def write_early(table: pd.DataFrame, path: str | os.PathLike) -> None:
    with atomic_output(path) as tmp:
        table.to_csv(tmp, index=False)


def read_early(path: str | os.PathLike) -> pd.DataFrame:
    return _read_table(
        path, EARLY_COLUMNS, "an early-prediction file", ("epoch", "r2", "kendall_tau", "roc_auc")
    )


# ---------------------------------------------------------------------------- files


def write_predictions(
    results: pd.DataFrame,
    oof: pd.DataFrame,
    results_path: str | os.PathLike,
    oof_path: str | os.PathLike,
) -> None:
    """Write the scores and the out-of-fold predictions as CSV, each atomically."""
    with atomic_output(results_path) as tmp:
        results.to_csv(tmp, index=False)
    with atomic_output(oof_path) as tmp:
        oof.to_csv(tmp, index=False)


def _read_table(
    path: str | os.PathLike, columns: Sequence[str], what: str, numbers: Sequence[str] = ()
) -> pd.DataFrame:
    """A CSV this module wrote, checked for ``columns``. Only the ``numbers`` columns read
    empty or "nan" as NaN: elsewhere (e.g. a skip reason, an architecture) text stays text."""
    if numbers:
        na = {c: ["", "nan", "NaN"] for c in numbers}
        df = pd.read_csv(path, keep_default_na=False, na_values=na)
    else:
        df = pd.read_csv(path)
    missing = [c for c in columns if c not in df]
    if missing:
        raise ValueError(f"{path}: not {what}, columns {missing} missing")
    return df


def read_results(path: str | os.PathLike) -> pd.DataFrame:
    numbers = ("r2", "kendall_tau", "kendall_p", "tau_within_arch")
    return _read_table(path, RESULT_COLUMNS, "a predictor results file", numbers)


def read_oof(path: str | os.PathLike) -> pd.DataFrame:
    return _read_table(path, OOF_COLUMNS, "an out-of-fold predictions file")


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
    title = "# Accuracy predicted from weights (issue 9 §3)"
    return "\n".join([title, "", *lines, *notes]) + "\n"


def write_markdown(results: Sequence[pd.DataFrame], path: str | os.PathLike) -> None:
    with atomic_output(path) as tmp:
        tmp.write_text(results_markdown(results), encoding="utf-8")
