"""Design matrices: the features table (long, one row per trial, layer and state) turned
into one row per trial and one column per layer and feature, with the drop rule of
:mod:`weightzoo.analysis.predict`."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..columns import HPARAM_PREFIX, SETTING_ID
from ..features import FEATURE_COLUMNS
from ..spectral import FIT_COLUMNS
from ..spectral import VALUE_COLUMNS as SPECTRAL_VALUES
from .files import FEATURE_SETS, HPARAM_SETS, RECONSTRUCTION_SETS

TARGET = "final_test_acc"
TRIAL_KEY = ["arch", "trial_id"]  # trial ids count within an architecture
TRIAL_COLUMNS = ("experiment", "model", "dataset", "arch_index", "group", TARGET)
RECONSTRUCTION_PREFIX = "rec_"  # the columns of reconstruct.summary.trial_features
MISSING_NAME = "(none)"  # the category of a trial without a value of a named setting


def hparam_columns(features: pd.DataFrame) -> list[str]:
    """The ``hp_<name>`` columns of a table, in its order (none: the zoo's settings are
    fixed)."""
    return [c for c in features.columns if str(c).startswith(HPARAM_PREFIX)]


def has_varied_settings(features: pd.DataFrame) -> bool:
    """Whether the trials of this table train different settings: ``hp_`` columns or a
    ``setting_id``. Tables without either keep the predictor's output as it always was."""
    return bool(hparam_columns(features)) or SETTING_ID in features


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
    settings = [*hparam_columns(features), *([SETTING_ID] if SETTING_ID in features else [])]
    trials = by_trial[[*TRIAL_COLUMNS, *settings]].first()
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
    if rows.empty:  # a state the zoo lacks (an imported zoo without initial weights)
        index = pd.MultiIndex.from_arrays([[], []], names=TRIAL_KEY)
        return pd.DataFrame(index=index, dtype=float), pd.Series(False, index=index)
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


def hparam_matrix(trials: pd.DataFrame) -> pd.DataFrame:
    """The trials' raw ``hp_`` values: numbers as float, names as Python strings (object
    columns, which the one-hot encoder of :func:`.estimators.hparam_encoder` takes). The
    encoding (log10, zero indicator, one-hot) is part of the fitted pipeline."""
    columns = {}
    for c in hparam_columns(trials):
        values = trials[c]
        if pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values):
            columns[c] = pd.Series(values.to_numpy(dtype=float), index=trials.index)
        else:  # a missing name (an architecture that does not vary it) is its own category
            names = [str(v) if pd.notna(v) else MISSING_NAME for v in values]
            columns[c] = pd.Series(names, index=trials.index, dtype=object)
    return pd.DataFrame(columns, index=trials.index)


@dataclass
class Design:
    """What one feature set gives the regressors."""

    x: pd.DataFrame  # [trial, feature] of the usable trials
    y: np.ndarray  # [trial] final test accuracy, percent
    arch: np.ndarray  # [trial] architecture names
    trials: pd.DataFrame  # identity of the usable trials (index (arch, trial_id))
    n_dropped: int  # trials dropped for non-finite weights, features or accuracy
    spectral: bool = False  # WeightWatcher's columns asked for
    # [trial] one label per (arch, setting_id): 5-fold CV keeps a label's trials in one
    # fold; None where the table has no setting_id
    groups: np.ndarray | None = None
    hparams: tuple[str, ...] = ()  # the raw hp_ columns of x, encoded inside the pipeline

    def subset(self, keep: np.ndarray) -> Design:
        """The same design on the trials where ``keep`` ([trial] bool) holds, in order."""
        return Design(
            x=self.x.loc[keep],
            y=self.y[keep],
            arch=self.arch[keep],
            trials=self.trials.loc[keep],
            n_dropped=self.n_dropped,
            spectral=self.spectral,
            groups=None if self.groups is None else self.groups[keep],
            hparams=self.hparams,
        )


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


def design(
    features: pd.DataFrame, feature_set: str, reconstruction: pd.DataFrame | None = None
) -> Design:
    """Design matrix of one feature set, with the drop rule of
    :mod:`weightzoo.analysis.predict`. ``reconstruction``: the experiment's per-trial
    reconstruction errors (:func:`weightzoo.analysis.reconstruct.summary.trial_features`),
    which the sets of :data:`.files.RECONSTRUCTION_SETS` need."""
    if feature_set in RECONSTRUCTION_SETS:
        return _reconstruction_design(features, feature_set, reconstruction)
    if feature_set in ("final_weights", "initial_weights"):
        return state_design(features, feature_set.split("_")[0])
    if feature_set == "final_spectral":
        d = state_design(features, "final", spectral=True)
        d.spectral = True
        return d
    if feature_set == "architecture":
        trials = trial_table(features)
        return _usable(architecture_matrix(trials), trials, np.zeros(len(trials), dtype=bool))
    if feature_set in HPARAM_SETS:
        return _hparam_design(features, feature_set)
    known = (*FEATURE_SETS, *HPARAM_SETS, *RECONSTRUCTION_SETS)
    raise ValueError(f"unknown feature set {feature_set!r}; use one of {known}")


def _hparam_design(features: pd.DataFrame, feature_set: str) -> Design:
    """The trial's settings alone, after the one-hot architecture, or after the final
    weights' features (whose drop rule then applies: the settings drop no trial)."""
    trials = trial_table(features)
    hp = hparam_matrix(trials)
    if hp.shape[1] == 0:
        raise ValueError(
            f"feature set {feature_set!r} needs hp_ columns in the features table; it has "
            "none (a zoo with fixed settings: use one of " + ", ".join(FEATURE_SETS) + ")"
        )
    if feature_set == "hyperparameters":
        x, drop = hp, np.zeros(len(trials), dtype=bool)
    elif feature_set == "architecture_hyperparameters":
        x, drop = architecture_matrix(trials).join(hp), np.zeros(len(trials), dtype=bool)
    else:  # final_weights_hyperparameters
        weights, drop = _weight_design(features, trials, "final", spectral=False)
        x = weights.join(hp)
    d = _usable(x, trials, drop)
    d.hparams = tuple(hp.columns)
    return d


def reconstruction_matrix(trials: pd.DataFrame, reconstruction: pd.DataFrame) -> pd.DataFrame:
    """``[trial, rec_*]``: the trials' reconstruction errors (NaN where a trial has none,
    e.g. a diverged one the reconstruction skipped), in the trials' order."""
    key = ["experiment", *TRIAL_KEY]
    missing = [c for c in key if c not in reconstruction]
    errors = [c for c in reconstruction.columns if str(c).startswith(RECONSTRUCTION_PREFIX)]
    if missing or not errors:
        raise ValueError(
            f"reconstruction errors need the columns {key} and rec_* ones (missing: "
            f"{missing or 'rec_*'}); build them with "
            "weightzoo.analysis.reconstruct.summary.trial_features"
        )
    experiment = trials["experiment"].iloc[0]
    mine = reconstruction[reconstruction["experiment"] == experiment]
    if mine.empty:
        raise ValueError(
            f"reconstruction errors: no rows of experiment {experiment!r} (they hold "
            f"{sorted(reconstruction['experiment'].unique())})"
        )
    wide = mine.set_index(TRIAL_KEY)[errors].astype(float)
    return wide.reindex(trials.index)


def _reconstruction_design(features, feature_set, reconstruction) -> Design:
    """The reconstruction errors alone, or after the final weights' features (whose drop
    rule then applies); a trial without errors is dropped."""
    if reconstruction is None:
        raise ValueError(
            f"feature set {feature_set!r} needs the experiment's reconstruction errors "
            "(rule reconstruct); none were given"
        )
    trials = trial_table(features)
    rec = reconstruction_matrix(trials, reconstruction)
    drop = rec.isna().any(axis=1).to_numpy()
    if feature_set == "reconstruction":
        x = rec
    else:  # final_weights_reconstruction
        weights, weight_drop = _weight_design(features, trials, "final", spectral=False)
        x, drop = weights.join(rec), drop | weight_drop
    return _usable(x, trials, drop)


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
        groups=setting_groups(trials.loc[keep]),
    )


def setting_groups(trials: pd.DataFrame) -> np.ndarray | None:
    """``[trial]`` one integer per (architecture, setting_id), or None without a
    ``setting_id`` column. A setting id counts within its architecture (the settings are
    drawn per architecture), so the pair names one sampled setting."""
    if SETTING_ID not in trials:
        return None
    # an architecture of the zoo that varies nothing has no setting id: its trials share
    # no sampled setting, each is its own group
    keys = [
        f"{arch}/{int(sid)}" if pd.notna(sid) else f"{arch}/trial {trial}"
        for arch, sid, trial in zip(
            trials["arch"],
            trials[SETTING_ID],
            trials.index.get_level_values("trial_id"),
            strict=True,
        )
    ]
    return pd.factorize(np.asarray(keys, dtype=object))[0]
