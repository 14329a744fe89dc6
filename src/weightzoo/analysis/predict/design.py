"""Design matrices: the features table (long, one row per trial, layer and state) turned
into one row per trial and one column per layer and feature, with the drop rule of
:mod:`weightzoo.analysis.predict`."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..features import FEATURE_COLUMNS
from ..spectral import FIT_COLUMNS
from ..spectral import VALUE_COLUMNS as SPECTRAL_VALUES
from .files import FEATURE_SETS

TARGET = "final_test_acc"
TRIAL_KEY = ["arch", "trial_id"]  # trial ids count within an architecture
TRIAL_COLUMNS = ("experiment", "model", "dataset", "arch_index", "group", TARGET)


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
    # a features table older than the group rules has band groups only
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
    ``epoch_<k>``), with the drop rule of :mod:`weightzoo.analysis.predict`."""
    trials = trial_table(features)
    x, drop = _weight_design(features, trials, state, spectral)
    return _usable(x, trials, drop)


def design(features: pd.DataFrame, feature_set: str) -> Design:
    """Design matrix of one feature set, with the drop rule of
    :mod:`weightzoo.analysis.predict`."""
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
