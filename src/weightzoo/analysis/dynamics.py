"""The zoo's per-epoch layer dynamics (weightzoo.dynamics), summarised for figures and claims.

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

from collections.abc import Mapping

import numpy as np
import pandas as pd

from ..dynamics import STATS
from ..models import get_family
from ..zoo import Zoo

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
BAND_COLUMNS = ("layer", "layer_index", "group", "epoch", "n", "median", "q25", "q75")


def dynamics_long(
    zoo: Zoo, trial_groups: Mapping[str, np.ndarray], stat: str = "rwc"
) -> pd.DataFrame:
    """One row per trial, analysed layer and epoch (1-based) with the value of ``stat``.

    ``trial_groups``: each architecture's ``[T]`` group labels in its trial order (as
    ``weightzoo.analysis.trials.Experiment.trial_groups``). A zoo without dynamics (schema
    version 1) gives a ValueError naming the file's experiment."""
    if stat not in STATS:
        raise ValueError(f"stat must be one of {STATS}, got {stat!r}")
    family = get_family(zoo.model)
    frames = []
    for a in zoo.archs:
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
    return pd.concat(frames, ignore_index=True).loc[:, list(LONG_COLUMNS)]


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
