"""Zoos paired with their accuracy groups, and per-trial arrays computed from their weights.

For what the features table (:mod:`.features`) does not hold: the figure data of
:mod:`.figuredata` (metric curves, pooled weight samples, t-SNE descriptors) start here.

A trial whose weights (of the layers asked for) are not all finite is left out of what
these functions return, and counted (``n_skipped``) so that a figure can say so.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..train.shapes import LayerInfo, get_shapes
from ..zoo.hdf5 import WEIGHT_SETS, Zoo, read_zoo
from .features import finite_trials, trial_chunks
from .groups import group_counts, read_groups_csv

WEIGHT_KINDS = ("final", "initial")
CHUNK_ELEMENTS = 1 << 24  # per-trial work runs in chunks of about this many weights


@dataclass
class Experiment:
    """One zoo with the group of each of its trials."""

    zoo: Zoo
    groups: pd.DataFrame  # rows of the groups CSV for this experiment
    trial_groups: dict[str, np.ndarray] = field(default_factory=dict)  # arch -> [T] group

    @property
    def name(self) -> str:
        return self.zoo.experiment

    def counts(self) -> dict[str, int]:
        return group_counts(self.groups)

    def layer_labels(self) -> list[str]:
        """Labels of the analysed layers, union over architectures, input side first."""
        family = get_shapes(self.zoo.model)
        labels: dict[str, None] = {}
        for a in self.zoo.archs:
            labels.update(dict.fromkeys(li.label for li in family.layers(a.arch)))
        return list(labels)


def _pair_groups(zoo: Zoo, groups: pd.DataFrame, source: str) -> dict[str, np.ndarray]:
    lookup = groups.set_index(["arch", "trial_id"])["group"]
    if not lookup.index.is_unique:
        raise ValueError(f"{source}: experiment {zoo.experiment} lists a trial twice")
    paired = {}
    for a in zoo.archs:
        index = pd.MultiIndex.from_arrays(
            [np.full(a.n_trials, a.arch_name, dtype=object), a.trials["trial_id"].astype("int64")]
        )
        found = lookup.reindex(index)
        if found.isna().any():
            missing = int(found.isna().sum())
            raise ValueError(
                f"{source}: {missing} trial(s) of {zoo.experiment}/{a.arch_name} have no group; "
                "regenerate the groups file from this zoo"
            )
        paired[a.arch_name] = found.to_numpy(dtype=object).astype(str)
    return paired


def read_groups(group_paths: Sequence[str]) -> pd.DataFrame:
    """All rows of the groups files (empty frame when none are given)."""
    tables = [read_groups_csv(p) for p in group_paths]
    return pd.concat(tables, ignore_index=True) if tables else pd.DataFrame()


def experiment_groups(groups: pd.DataFrame, experiment: str, where, group_paths) -> pd.DataFrame:
    """The rows of ``groups`` for ``experiment``; an error naming the files if there are none."""
    mine = groups[groups["experiment"] == experiment] if len(groups) else groups
    if mine.empty:
        source = ", ".join(str(p) for p in group_paths) or "(no groups files)"
        raise ValueError(f"{where}: experiment {experiment} is in no groups file ({source})")
    return mine


def load_experiments(
    zoo_paths: Sequence[str], group_paths: Sequence[str], weights: Sequence[str] = WEIGHT_SETS
) -> list[Experiment]:
    """Read zoos and groups files and pair every trial with its group (by experiment name,
    architecture and trial id, so the two lists need not be in the same order). ``weights``:
    the weight sets to load (see :func:`weightzoo.zoo.hdf5.read_zoo`)."""
    if not zoo_paths:
        raise ValueError("no zoo files given")
    groups = read_groups(group_paths)
    source = ", ".join(str(p) for p in group_paths) or "(no groups files)"
    experiments = []
    for path in zoo_paths:
        zoo = read_zoo(path, weights)
        mine = experiment_groups(groups, zoo.experiment, path, group_paths)
        experiments.append(Experiment(zoo, mine, _pair_groups(zoo, mine, source)))
    return experiments


# --------------------------------------------------------------------- per-trial data


@dataclass
class TrialFeatures:
    """Per-trial features of some layers, trials with non-finite values left out."""

    values: dict[str, np.ndarray]  # layer label -> [N, k]
    groups: np.ndarray  # [N] group names
    n_skipped: int  # trials left out for non-finite weights or features

    @property
    def n(self) -> int:
        return len(self.groups)


FeatureFn = Callable[[np.ndarray, LayerInfo], np.ndarray]


def weights_of(a, which: str) -> dict[str, np.ndarray]:
    if which not in WEIGHT_KINDS:
        raise ValueError(f"weights must be one of {WEIGHT_KINDS}, got {which!r}")
    return a.final if which == "final" else a.initial


def finite_rows(arr: np.ndarray) -> np.ndarray:
    """``[T]``: whether every value of each trial (row along axis 0) is finite, chunk by
    chunk so that the boolean mask of a wide layer never exists for all trials at once."""
    flat = arr.reshape(len(arr), -1)
    if len(flat) == 0:
        return np.zeros(0, dtype=bool)
    chunks = trial_chunks(*flat.shape, CHUNK_ELEMENTS)
    return np.concatenate([finite_trials(flat[c]) for c in chunks])


def _apply_chunked(fn: FeatureFn, arr: np.ndarray, idx: np.ndarray, layer: LayerInfo):
    """``fn`` on the trials ``idx`` of ``arr`` (non-empty), chunk by chunk, as ``[len(idx), k]``."""
    per_trial = int(np.prod(arr.shape[1:], dtype=np.int64))
    parts = [
        np.asarray(fn(arr[idx[c]], layer), dtype=float).reshape(len(idx[c]), -1)
        for c in trial_chunks(len(idx), per_trial, CHUNK_ELEMENTS)
    ]
    return np.concatenate(parts)


def trial_features(
    exp: Experiment, labels: Sequence[str], fn: FeatureFn, which: str = "final"
) -> TrialFeatures:
    """``fn(weights [T, ...], layer) -> [T, k]`` for each layer in ``labels``, per trial.

    Architectures lacking one of ``labels`` are ignored; a trial is kept only where all
    its weights of those layers and all its features are finite.
    """
    family = get_shapes(exp.zoo.model)
    parts: dict[str, list[np.ndarray]] = {label: [] for label in labels}
    groups, n_skipped = [], 0
    for a in exp.zoo.archs:
        layers = {li.label: li for li in family.layers(a.arch)}
        if not all(label in layers for label in labels):
            continue
        weights = weights_of(a, which)
        keep = np.ones(a.n_trials, dtype=bool)
        for label in labels:
            keep &= finite_rows(weights[layers[label].param])
        idx = np.flatnonzero(keep)
        if idx.size == 0:
            n_skipped += a.n_trials
            continue
        feats = {
            label: _apply_chunked(fn, weights[layers[label].param], idx, layers[label])
            for label in labels
        }
        finite = np.ones(idx.size, dtype=bool)
        for label in labels:
            finite &= finite_rows(feats[label])
        for label in labels:
            parts[label].append(feats[label][finite])
        groups.append(exp.trial_groups[a.arch_name][idx[finite]])
        n_skipped += a.n_trials - int(finite.sum())
    values = {label: np.concatenate(p) if p else np.empty((0, 0)) for label, p in parts.items()}
    group_arr = np.concatenate(groups) if groups else np.empty(0, dtype=str)
    return TrialFeatures(values, group_arr, n_skipped)
