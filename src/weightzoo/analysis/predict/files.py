"""The CSV files of both analyses: their columns, the values the ``features`` and
``validation`` columns take, writers and readers (``results/predict/<experiment>.csv``,
``.oof.csv``, ``.arch.csv``, ``.early.csv``). Only pandas: the figures read these files
without loading scikit-learn."""

from __future__ import annotations

import os
from collections.abc import Sequence

import pandas as pd

from ...io import atomic_output

# the inputs a predictor is fitted on (:mod:`.design`), in the order the analysis runs
# them; final_spectral: final_weights plus WeightWatcher's spectral columns, to read off
# how much the spectra add to R²
FEATURE_SETS = ("final_weights", "final_spectral", "architecture", "initial_weights")
# the inputs with the trial's training settings (the table's hp_ columns), run after those
# above on tables that have them, i.e. zoos whose settings vary per trial
HPARAM_SETS = (
    "hyperparameters",
    "architecture_hyperparameters",
    "final_weights_hyperparameters",
)
# a results row that is no input: final_weights_hyperparameters minus hyperparameters, on
# the same trials and folds, i.e. what the weights say beyond the settings
INCREMENT = "weights_beyond_hyperparameters"
# the inputs with the trial's reconstruction errors (rule reconstruct, docs/reconstruct.md:
# how well predictor networks represent its weights), run last where the experiment has a
# reconstruction table: the errors alone, and after the final weights' features
RECONSTRUCTION_SETS = ("reconstruction", "final_weights_reconstruction")
VALIDATIONS = ("cv5", "loao")  # 5-fold CV, leave one architecture out (:mod:`.validation`)
# what a row of either file says of its run: the validation, whether it ran and why not,
# and the trials it counted
RUN_COLUMNS = ("validation", "status", "reason", "n_trials", "n_dropped", "n_used")
RESULT_COLUMNS = (
    "experiment",
    "model",
    "dataset",
    "features",
    "regressor",
    *RUN_COLUMNS,
    "n_archs",
    "n_features",
    "n_folds",
    "r2",
    "kendall_tau",
    "kendall_p",
    "tau_within_arch",
)
# after RESULT_COLUMNS on tables with varied settings: what the folds kept together
# (``setting_id`` or ``trial``), how many fold seeds 5-fold CV ran with, and the standard
# deviation of each score over them (the scores themselves are then means over the seeds)
SEED_COLUMNS = (
    "fold_groups",
    "n_fold_seeds",
    "r2_sd",
    "kendall_tau_sd",
    "tau_within_arch_sd",
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
# after OOF_COLUMNS on tables with varied settings: the fold seed of the prediction (5-fold
# CV has one prediction per trial and seed) and the trial's setting
OOF_SEED_COLUMNS = ("fold_seed", "setting_id")
# Kendall's τ of the held-out predictions inside one architecture
ARCH_COLUMNS = (
    "experiment",
    "arch",
    "features",
    "regressor",
    "validation",
    "status",
    "reason",
    "n_trials",
    "n_fold_seeds",
    "kendall_tau",
    "kendall_tau_sd",
)
EARLY_COLUMNS = (
    "experiment",
    "model",
    "dataset",
    "state",
    "epoch",
    "target",
    "estimator",
    *RUN_COLUMNS,
    "n_high",
    "n_features",
    "n_folds",
    "r2",
    "kendall_tau",
    "roc_auc",
)


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


def read_table(
    path: str | os.PathLike, columns: Sequence[str], what: str, numbers: Sequence[str] = ()
) -> pd.DataFrame:
    """A CSV written here, checked for ``columns``. Only the ``numbers`` columns read
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


def input_sets(has_hparams: bool, has_reconstruction: bool = False) -> tuple[str, ...]:
    """The inputs a table is scored on: :data:`FEATURE_SETS`, then :data:`HPARAM_SETS` if
    the table has ``hp_`` columns, then :data:`RECONSTRUCTION_SETS` if the experiment's
    reconstruction errors are given."""
    return (
        FEATURE_SETS
        + (HPARAM_SETS if has_hparams else ())
        + (RECONSTRUCTION_SETS if has_reconstruction else ())
    )


def read_results(path: str | os.PathLike) -> pd.DataFrame:
    numbers = ("r2", "kendall_tau", "kendall_p", "tau_within_arch")
    sds = ("n_fold_seeds", "r2_sd", "kendall_tau_sd", "tau_within_arch_sd")
    return read_table(path, RESULT_COLUMNS, "a predictor results file", numbers + sds)


def read_oof(path: str | os.PathLike) -> pd.DataFrame:
    return read_table(path, OOF_COLUMNS, "an out-of-fold predictions file")


def write_arch_taus(table: pd.DataFrame, path: str | os.PathLike) -> None:
    with atomic_output(path) as tmp:
        table.to_csv(tmp, index=False)


def read_arch_taus(path: str | os.PathLike) -> pd.DataFrame:
    numbers = ("n_fold_seeds", "kendall_tau", "kendall_tau_sd")
    return read_table(path, ARCH_COLUMNS, "a per-architecture τ file", numbers)


def write_early(table: pd.DataFrame, path: str | os.PathLike) -> None:
    with atomic_output(path) as tmp:
        table.to_csv(tmp, index=False)


def read_early(path: str | os.PathLike) -> pd.DataFrame:
    return read_table(
        path, EARLY_COLUMNS, "an early-prediction file", ("epoch", "r2", "kendall_tau", "roc_auc")
    )
