"""Summaries of reconstruction tables: the accuracy kept against the compression ratio,
per experiment, kind and group (what the figure draws and docs/reconstruct.md reports).
pandas only."""

from __future__ import annotations

import numpy as np
import pandas as pd

TRIAL_LEVEL = "network"  # the layer label of a trial's rows (all its reconstructed layers)
# the columns of a reconstruction table (weightzoo.analysis.reconstruct.table)
COLUMNS = (
    "experiment", "model", "dataset", "arch", "trial_id", "group", "kind", "ratio",
    "ratio_actual", "predictor_params", "hidden", "layer", "layer_index", "n_weights",
    "rel_error", "rel_error_fit", "acc_original", "acc_rebuilt", "acc_drop_pts", "steps",
    "distill_steps", "order",
)  # fmt: skip
CURVE_COLUMNS = ("experiment", "model", "dataset", "kind", "ratio", "group", "n",
                 "drop_median", "drop_q25", "drop_q75", "error_median")  # fmt: skip


def accuracy_curves(table: pd.DataFrame) -> pd.DataFrame:
    """Per experiment, kind (own predictor at each ratio, or shared), ratio and group: the
    median and interquartile range of the accuracy drop (points) and the median relative
    error of the trials' rows. The shared rows carry their mean ``ratio_actual``."""
    net = table[table["layer"] == TRIAL_LEVEL].copy()
    shared = net["kind"] == "shared"
    net.loc[shared, "ratio"] = (
        net.loc[shared].groupby("experiment")["ratio_actual"].transform("mean")
    )
    keys = ["experiment", "model", "dataset", "kind", "ratio", "group"]
    grouped = net.groupby(keys, sort=True, dropna=False)
    out = grouped.agg(
        n=("rel_error", "size"),
        drop_median=("acc_drop_pts", "median"),
        drop_q25=("acc_drop_pts", lambda s: np.nanquantile(s, 0.25) if s.notna().any() else np.nan),
        drop_q75=("acc_drop_pts", lambda s: np.nanquantile(s, 0.75) if s.notna().any() else np.nan),
        error_median=("rel_error", "median"),
    )
    return out.reset_index().reindex(columns=list(CURVE_COLUMNS))


def breaking_ratio(curves: pd.DataFrame, tolerance_pts: float = 0.5) -> pd.DataFrame:
    """Per experiment and group, the smallest ratio of the own predictor whose median drop
    is within ``tolerance_pts`` (NaN: none is)."""
    own = curves[curves["kind"] == "own"]
    ok = own[own["drop_median"] <= tolerance_pts]
    smallest = ok.groupby(["experiment", "group"])["ratio"].min()
    keys = own.groupby(["experiment", "group"]).size().index
    return smallest.reindex(keys).rename("smallest_ratio_within").reset_index()


def read_table(path) -> pd.DataFrame:
    """A reconstruction table written by rule reconstruct; a file lacking its columns is an
    error naming the file and the columns."""
    table = pd.read_parquet(path)
    missing = [c for c in COLUMNS if c not in table]
    if missing:
        raise ValueError(f"{path}: not a reconstruction table, columns {missing} missing; "
                         "rerun the rule reconstruct")  # fmt: skip
    return table


def trial_features(table: pd.DataFrame) -> pd.DataFrame:
    """One row per trial (``experiment``, ``arch``, ``trial_id``) with its reconstruction
    errors as features: ``rec_error_r<ratio>`` (its own predictor at each ratio) and
    ``rec_shared_error`` (the shared representation), ready to join a trial table on
    (experiment, arch, trial_id). The errors are the weights' fit (``rel_error_fit``: at
    the end of the reconstruction phase, before any distillation moved the weights)."""
    net = table[table["layer"] == TRIAL_LEVEL]
    names = np.where(net["kind"] == "shared", "rec_shared_error",
                     "rec_error_r" + net["ratio"].map("{:g}".format))  # fmt: skip
    wide = net.assign(feature=names).pivot_table(
        index=["experiment", "arch", "trial_id"], columns="feature", values="rel_error_fit",
        aggfunc="first",
    )  # fmt: skip
    wide.columns.name = None
    return wide.reset_index()
