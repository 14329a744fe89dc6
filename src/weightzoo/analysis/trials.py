"""Zoos paired with their accuracy groups, and per-trial arrays computed from their weights.

For what the features table (:mod:`.features`) does not hold: Fig. 1's metric curves,
Figs 5-7's pooled weight samples and their KDEs, Figs 11-13's t-SNE descriptors and
embeddings. Everything here computes; :mod:`weightzoo.figures` draws.

A trial whose weights (of the layers asked for) are not all finite is left out of what
these functions return, and counted (``n_skipped``) so that a figure can say so.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..train.models import LayerInfo, get_family
from ..zoo.hdf5 import WEIGHT_SETS, Zoo, read_zoo
from .features import finite_trials, trial_chunks
from .groups import ALL_GROUPS, group_counts, read_groups_csv

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
        family = get_family(self.zoo.model)
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


def _weights(a, which: str) -> dict[str, np.ndarray]:
    if which not in WEIGHT_KINDS:
        raise ValueError(f"weights must be one of {WEIGHT_KINDS}, got {which!r}")
    return a.final if which == "final" else a.initial


def _finite_rows(arr: np.ndarray) -> np.ndarray:
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
    family = get_family(exp.zoo.model)
    parts: dict[str, list[np.ndarray]] = {label: [] for label in labels}
    groups, n_skipped = [], 0
    for a in exp.zoo.archs:
        layers = {li.label: li for li in family.layers(a.arch)}
        if not all(label in layers for label in labels):
            continue
        weights = _weights(a, which)
        keep = np.ones(a.n_trials, dtype=bool)
        for label in labels:
            keep &= _finite_rows(weights[layers[label].param])
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
            finite &= _finite_rows(feats[label])
        for label in labels:
            parts[label].append(feats[label][finite])
        groups.append(exp.trial_groups[a.arch_name][idx[finite]])
        n_skipped += a.n_trials - int(finite.sum())
    values = {label: np.concatenate(p) if p else np.empty((0, 0)) for label, p in parts.items()}
    group_arr = np.concatenate(groups) if groups else np.empty(0, dtype=str)
    return TrialFeatures(values, group_arr, n_skipped)


def layer_shapes(exp: Experiment, label: str) -> dict[str, tuple[int, ...]]:
    """Per-trial shape of layer ``label`` in each architecture that has it."""
    family = get_family(exp.zoo.model)
    shapes = {}
    for a in exp.zoo.archs:
        for li in family.layers(a.arch):
            if li.label == label:
                shapes[a.arch_name] = tuple(a.final[li.param].shape[1:])
    return shapes


# -------------------------------------------------------- t-SNE descriptors (Fig. 11)


def quantile_descriptor(n_quantiles: int) -> FeatureFn:
    """Feature function: ``[T, n_quantiles + 2]`` quantiles (at probabilities
    ``(k + 0.5) / n_quantiles``), mean and std of each trial's weights of a layer."""
    probs = (np.arange(n_quantiles) + 0.5) / n_quantiles

    def describe(w: np.ndarray, layer: LayerInfo) -> np.ndarray:
        flat = w.reshape(len(w), -1).astype(np.float64)
        if len(flat) == 0:
            return np.empty((0, n_quantiles + 2))
        q = np.quantile(flat, probs, axis=1).T
        return np.column_stack([q, flat.mean(axis=1), flat.std(axis=1)])

    return describe


def raw_descriptor(w: np.ndarray, layer: LayerInfo) -> np.ndarray:
    """Feature function: the flattened weights ``[T, size]``."""
    return w.reshape(len(w), -1)


def check_raw_shapes(experiments: Sequence[Experiment]) -> None:
    """``descriptor="raw"`` needs one layer shape per (experiment, layer); raise otherwise."""
    for exp in experiments:
        for label in exp.layer_labels():
            shapes = layer_shapes(exp, label)
            if len(set(shapes.values())) > 1:
                listed = ", ".join(f"{a}: {s}" for a, s in shapes.items())
                raise ValueError(
                    f"descriptor='raw' needs all trials of a layer to share its shape, but "
                    f"{exp.name} layer {label} has shapes {listed}; use descriptor='quantiles' "
                    "(fixed length, permutation-invariant) or one architecture per zoo"
                )


def embed(x: np.ndarray, seed: int, perplexity: float, max_iter: int, pca_dims: int) -> np.ndarray:
    """2-D t-SNE of the rows of ``x`` (PCA first when ``x`` has more than ``pca_dims`` columns)."""
    from sklearn.decomposition import PCA
    from sklearn.manifold import TSNE

    if x.shape[1] > pca_dims:
        x = PCA(n_components=min(pca_dims, *x.shape), random_state=seed).fit_transform(x)
    tsne = TSNE(
        n_components=2,
        perplexity=min(perplexity, (len(x) - 1) / 3),
        init="pca",
        learning_rate="auto",
        max_iter=max_iter,
        random_state=seed,
    )
    return tsne.fit_transform(x)


# ------------------------------------------------- weight samples and KDEs (Fig. 5)


def sample_group_weights(
    exp: Experiment, label: str, rng: np.random.Generator, max_samples: int, which: str = "final"
) -> tuple[dict[str, np.ndarray], int]:
    """Per group, a uniform random subsample (without replacement, at most ``max_samples``)
    of all weights of layer ``label`` pooled over the group's trials; trials with
    non-finite weights are left out (their number is returned second)."""
    family = get_family(exp.zoo.model)
    rows: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {g: [] for g in ALL_GROUPS}
    n_skipped = 0
    for a in exp.zoo.archs:
        layer = next((li for li in family.layers(a.arch) if li.label == label), None)
        if layer is None:
            continue
        flat = _weights(a, which)[layer.param].reshape(a.n_trials, -1)
        finite = _finite_rows(flat)
        n_skipped += int((~finite).sum())
        for g in ALL_GROUPS:
            idx = np.flatnonzero(finite & (exp.trial_groups[a.arch_name] == g))
            if idx.size:
                rows[g].append((flat, idx))
    return {g: _sample_rows(blocks, rng, max_samples) for g, blocks in rows.items()}, n_skipped


def _sample_rows(
    blocks: list[tuple[np.ndarray, np.ndarray]], rng: np.random.Generator, max_samples: int
) -> np.ndarray:
    """Sample entries uniformly from the rows ``idx`` of each 2-D ``flat`` without copying."""
    if not blocks:
        return np.empty(0)
    block_of = np.concatenate([np.full(len(idx), b) for b, (_, idx) in enumerate(blocks)])
    row_of = np.concatenate([idx for _, idx in blocks])
    sizes = np.concatenate([np.full(len(idx), flat.shape[1]) for flat, idx in blocks])
    ends = np.cumsum(sizes)
    total = int(ends[-1])
    if total > max_samples:
        picks = np.sort(rng.choice(total, size=max_samples, replace=False))
    else:
        picks = np.arange(total)
    which_row = np.searchsorted(ends, picks, side="right")
    offsets = picks - (ends[which_row] - sizes[which_row])
    out = np.empty(len(picks))
    for b, (flat, _) in enumerate(blocks):
        sel = block_of[which_row] == b
        out[sel] = flat[row_of[which_row[sel]], offsets[sel]]
    return out


def kde_curve(values: np.ndarray, grid: np.ndarray) -> np.ndarray | None:
    """Density on ``grid``, or None where a KDE is undefined (< 2 or identical values)."""
    if values.size < 2 or np.ptp(values) == 0:
        return None
    from scipy.stats import gaussian_kde

    try:
        return gaussian_kde(values)(grid)
    except (np.linalg.LinAlgError, ValueError):
        return None
