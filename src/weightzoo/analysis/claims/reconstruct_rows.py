"""Claim 9, from the reconstruction tables (weightzoo.analysis.reconstruct): (9a)
successful networks are reconstructed better by the zoo's shared representation than poor
ones; (9b) a successful network is more compressible on its own (a smaller error of its own
predictor at the ratio ``reconstruct.claim_ratio``). One number per trial, so the same
tests as claims 1 and 4: Cliff's delta of high vs low/mid and the rank correlation with
accuracy, pooled and within architecture, under the same verdict rule."""

from __future__ import annotations

import numpy as np
import pandas as pd

from .definitions import HIGH, NON, RECONSTRUCT, REST, TRIAL_KEY
from .group_tests import contrast_test
from .outcome import rng_for
from .rows import _row
from .trial_tests import accuracy_correlation_test

RECONSTRUCT_LAYER = "network"


def per_trial(reconstruct: pd.DataFrame, claim_ratio: float) -> pd.DataFrame:
    """One row per trial: its shared-representation error (``rec_shared_error``) and its
    own predictor's error at ``claim_ratio`` (``rec_own_error``), NaN where not fitted.
    Both are the weights' fit (``rel_error_fit``): a distillation phase moves the weights
    away from the trained ones, so its error no longer says how compressible they are."""
    net = reconstruct[reconstruct["layer"] == RECONSTRUCT_LAYER]
    shared = net[net["kind"] == "shared"].set_index(TRIAL_KEY)["rel_error_fit"]
    own = net[(net["kind"] == "own") & np.isclose(net["ratio"], claim_ratio)]
    own = own.set_index(TRIAL_KEY)["rel_error_fit"]
    keys = net.groupby(TRIAL_KEY)[["experiment", "group"]].first()
    return keys.assign(
        rec_shared_error=shared.reindex(keys.index), rec_own_error=own.reindex(keys.index)
    ).reset_index()


def reconstruct_rows(exp: dict, trials: pd.DataFrame, accuracy: pd.Series, settings) -> list[dict]:
    """Claim 9's rows of one experiment. ``trials``: :func:`per_trial` of its table;
    ``accuracy``: each trial's final accuracy, indexed by (arch, trial_id)."""
    trials = trials.assign(
        accuracy=accuracy.reindex(pd.MultiIndex.from_frame(trials[TRIAL_KEY])).to_numpy(),
        arch_index=pd.factorize(trials["arch"])[0],
    )
    comp = trials[trials["group"].isin((HIGH, *REST))]
    use = trials[trials["group"] != NON]
    rows = []
    for claim, (column, sign) in RECONSTRUCT.items():
        for scope in ("pooled", "within"):
            rng = rng_for(settings, exp["experiment"], RECONSTRUCT_LAYER, claim, scope)
            out = contrast_test(
                comp[column].to_numpy(dtype=float), (comp["group"] == HIGH).to_numpy(),
                comp["arch_index"].to_numpy(), scope == "within", settings, rng,
            )  # fmt: skip
            rows.append(_row(exp, claim, "group", scope, RECONSTRUCT_LAYER, column,
                             "Cliff's delta", sign, out))  # fmt: skip
            rng = rng_for(settings, exp["experiment"], RECONSTRUCT_LAYER, claim, "accuracy", scope)
            out = accuracy_correlation_test(
                use[column].to_numpy(dtype=float), use["accuracy"].to_numpy(dtype=float),
                use["arch_index"].to_numpy(), scope == "within", settings, rng,
            )  # fmt: skip
            used = use[use[column].notna()]
            out.n_high = int((used["group"] == HIGH).sum())
            out.n_rest = int(used["group"].isin(REST).sum())
            rows.append(_row(exp, claim, "accuracy", scope, RECONSTRUCT_LAYER, column,
                             "Spearman rho", sign, out))  # fmt: skip
    return rows
