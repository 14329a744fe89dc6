"""The zoo's per-epoch layer dynamics (weightzoo.train.dynamics), summarised for figures and claims.

The trainer records, per trial, analysed layer and epoch, the relative weight change
(``rwc``), the Frobenius norm (``fro_norm``) and the distance from the initial weights
(``dist_from_init``), as ``[T, E]`` arrays in the zoo (docs/dynamics.md). Here they become:

* :func:`dynamics_long`: one row per trial, layer and epoch, with the trial's group;
* :func:`group_bands`: per layer, group and epoch, the median and interquartile range over
  the group's trials (what the RWC figure draws).

Layers are pooled over an experiment's architectures by their label (``FC1``, ``Conv``,
...), input side first. Non-finite values (a diverged trial from its divergence on) are
left out of the summaries and their trials counted.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from ..train.shapes import get_shapes
from ..zoo.hdf5 import DYNAMICS_STATS, Zoo

LONG_COLUMNS = (
    "experiment",
    "arch",
    "trial_id",
    "group",
    "layer",
    "layer_index",
    "epoch",
    "value",
)
LONG_DTYPES = {"trial_id": "int64", "layer_index": "int64", "epoch": "int64", "value": float}
GENERIC = "generic"  # the imported zoos' family: no dynamics, skipped (not an error)
BAND_COLUMNS = ("layer", "layer_index", "group", "epoch", "n", "median", "q25", "q75")


def dynamics_long(
    zoo: Zoo, trial_groups: Mapping[str, np.ndarray], stat: str = "rwc"
) -> pd.DataFrame:
    """One row per trial, analysed layer and epoch (1-based) with the value of ``stat``.

    ``trial_groups``: each architecture's ``[T]`` group labels in its trial order (as
    ``weightzoo.analysis.trials.Experiment.trial_groups``). A zoo without dynamics (schema
    version 1) gives a ValueError naming the file's experiment; an imported zoo (model
    ``generic``), whose source recorded none, gives no rows."""
    if stat not in DYNAMICS_STATS:
        raise ValueError(f"stat must be one of {DYNAMICS_STATS}, got {stat!r}")
    family = get_shapes(zoo.model)
    frames = []
    for a in zoo.archs:
        if not a.dynamics and zoo.model == GENERIC:
            continue  # an imported zoo: its source recorded no per-epoch dynamics
        if not a.dynamics:
            raise ValueError(
                f"{zoo.experiment}/{a.arch_name}: the zoo holds no layer dynamics (written "
                "before HDF5 schema 2); rebuild it with this weightzoo (rerun snakemake)"
            )
        for index, layer in enumerate(family.layers(a.arch)):
            values = a.dynamics[layer.param][stat]  # [T, E]
            t, e = values.shape
            frames.append(
                pd.DataFrame(
                    {
                        "experiment": zoo.experiment,
                        "arch": a.arch_name,
                        "trial_id": np.repeat(a.trials["trial_id"], e),
                        "group": np.repeat(np.asarray(trial_groups[a.arch_name]), e),
                        "layer": layer.label,
                        "layer_index": index,
                        "epoch": np.tile(np.arange(1, e + 1), t),
                        "value": values.reshape(-1).astype(np.float64),
                    }
                )
            )
    if not frames:
        return pd.DataFrame({c: pd.Series(dtype=LONG_DTYPES.get(c, object)) for c in LONG_COLUMNS})
    return pd.concat(frames, ignore_index=True).loc[:, list(LONG_COLUMNS)]


def has_dynamics(zoo: Zoo) -> bool:
    """Whether any architecture of ``zoo`` recorded layer dynamics (an imported zoo has
    none: its source kept weights and accuracies, not the per-epoch changes)."""
    return any(a.dynamics for a in zoo.archs)


def group_bands(long: pd.DataFrame) -> pd.DataFrame:
    """Per layer, group and epoch: ``n`` finite values, their median, 25th and 75th
    percentiles (linear interpolation). Layers in input-to-output order."""
    finite = long[np.isfinite(long["value"])]
    keys = ["layer_index", "layer", "group", "epoch"]
    grouped = finite.groupby(keys, sort=True)["value"]
    bands = pd.DataFrame(
        {
            "n": grouped.size(),
            "median": grouped.median(),
            "q25": grouped.quantile(0.25),
            "q75": grouped.quantile(0.75),
        }
    ).reset_index()
    return bands.loc[:, list(BAND_COLUMNS)]


def nonfinite_trials(long: pd.DataFrame) -> int:
    """Trials with at least one non-finite value (left out of an epoch's summary)."""
    bad = long.loc[~np.isfinite(long["value"]), ["arch", "trial_id"]]
    return len(bad.drop_duplicates())


# ---------------------------------------------------------------- "later layers change more"
# Agrawal et al. 2020: later layers change more than earlier ones. The claims table
# (weightzoo.analysis.claims, claim 7) tests it with these, on the features table's
# ``rwc_mean`` (mean RWC over all epochs, ``state == "final"``).


def layer_order_tau(rwc: np.ndarray) -> np.ndarray:
    """``[T]``: Kendall's tau-a between the layer index and each trial's RWC, ``rwc``
    ``[T, L]`` with layers input side first: +1 when every later layer changed more, -1
    when every later layer changed less. NaN with fewer than 2 layers or a NaN value."""
    t, n_layers = rwc.shape
    if n_layers < 2:
        return np.full(t, np.nan)
    i, j = np.triu_indices(n_layers, k=1)  # every pair i < j
    signs = np.sign(rwc[:, j] - rwc[:, i])  # [T, pairs]: +1 when the later one is larger
    return signs.mean(axis=1)


def trial_layer_trends(features: pd.DataFrame) -> pd.DataFrame:
    """Per trial of the features table (``state == "final"``, finite ``rwc_mean`` in every
    layer of its architecture): experiment, architecture, trial id, number of layers and
    :func:`layer_order_tau` (column ``tau``)."""
    final = features[(features["state"] == "final") & np.isfinite(features["rwc_mean"])]
    wide = final.pivot_table(
        index=["experiment", "arch", "trial_id"], columns="layer_index", values="rwc_mean"
    )
    rows = []
    for (experiment, arch), block in wide.groupby(level=["experiment", "arch"], sort=False):
        block = block.dropna(axis=1, how="all").dropna(axis=0)  # [T, L] of this arch
        rows.append(
            pd.DataFrame(
                {
                    "experiment": experiment,
                    "arch": arch,
                    "trial_id": block.index.get_level_values("trial_id"),
                    "n_layers": block.shape[1],
                    "tau": layer_order_tau(block.to_numpy()),
                }
            )
        )
    columns = ["experiment", "arch", "trial_id", "n_layers", "tau"]
    return pd.concat(rows, ignore_index=True) if rows else pd.DataFrame(columns=columns)


def _mean_of_means(*samples: np.ndarray, axis: int = -1) -> np.ndarray:
    """Mean over the samples of each sample's mean (equal weight per sample)."""
    return np.mean([np.mean(x, axis=axis) for x in samples], axis=0)


def sign_flip_test(
    strata: Sequence[np.ndarray], permutations: int, bootstrap: int, rng: np.random.Generator
) -> tuple[float, float, float, float]:
    """Mean of the strata's mean, its 95 % percentile-bootstrap CI (resampling inside each
    stratum) and the two-sided p-value of a sign-flip permutation test (null: every value
    is as likely negated, as a tau under "no layer order" is): (estimate, low, high, p)."""
    from scipy import stats as sps

    bounds = np.cumsum([0, *(len(s) for s in strata)])
    slices = [slice(a, b) for a, b in zip(bounds[:-1], bounds[1:], strict=True)]

    def statistic(x: np.ndarray, axis: int = -1) -> np.ndarray:
        x = np.moveaxis(x, axis, -1)
        return _mean_of_means(*(x[..., s] for s in slices))

    # one sample with permutation_type="samples": scipy flips the signs of its values
    flips = sps.permutation_test(
        (np.concatenate(strata),),
        statistic,
        permutation_type="samples",
        n_resamples=permutations,
        vectorized=True,
        rng=rng,
    )
    ci = sps.bootstrap(
        tuple(strata), _mean_of_means, n_resamples=bootstrap, method="percentile", rng=rng
    ).confidence_interval
    return float(_mean_of_means(*strata)), float(ci.low), float(ci.high), float(flips.pvalue)
