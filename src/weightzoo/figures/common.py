"""What every figure shares: group colours, legends, panel notes, loading, per-trial features.

Conventions of all figures:

* colours: *non* blue (as in the paper), *low* orange, *mid* green, *high* dark red,
  *between* (converged, in no band) grey; groups are drawn between, non, low, mid, high
  so *high* lies on top;
* legends give each group's number of trials in the experiment, ``high (n=412)``; the
  four paper groups are always listed (``n=0`` when empty), *between* only when present;
* trials whose weights (of the panel's layers) are not all finite are left out of a
  panel and the panel says how many; a panel without any data says so;
* figures use :class:`matplotlib.figure.Figure` directly (no pyplot), are deterministic,
  and are saved as PDF and PNG atomically.
"""

from __future__ import annotations

import os
import sys
import textwrap
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import matplotlib

if "matplotlib.pyplot" not in sys.modules:  # headless; never switch a running pyplot session
    matplotlib.use("Agg")

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from ..groups import (
    ALL_GROUPS,
    BETWEEN,
    GROUPS,
    describe_group_rules,
    group_counts,
    read_groups_csv,
)
from ..io import atomic_output
from ..models import LayerInfo, get_family
from ..zoo import WEIGHT_SETS, Zoo, read_zoo

GROUP_COLORS = {
    "non": "#1f77b4",
    "low": "#e69f00",
    "mid": "#009e73",
    "high": "#8b0000",
    BETWEEN: "#9e9e9e",
}
DRAW_ORDER = (BETWEEN, "non", "low", "mid", "high")
DATASET_LABELS = {
    "mnist": "MNIST",
    "fmnist": "F-MNIST",
    "fashion_mnist": "F-MNIST",
    "fashionmnist": "F-MNIST",
    "fashion-mnist": "F-MNIST",
    "cifar-10": "CIFAR-10",
    "cifar10": "CIFAR-10",
}
MODEL_LABELS = {"dnn": "DNN", "cnn": "CNN", "vit": "ViT"}
DPI = 150
WEIGHT_KINDS = ("final", "initial")


def dataset_label(name: str) -> str:
    return DATASET_LABELS.get(name.lower(), name)


def model_label(name: str) -> str:
    return MODEL_LABELS.get(name.lower(), name.upper())


# --------------------------------------------------------------------------- loading


@dataclass
class Experiment:
    """One zoo with the group of each of its trials."""

    zoo: Zoo
    groups: pd.DataFrame  # rows of the groups CSV for this experiment
    trial_groups: dict[str, np.ndarray] = field(default_factory=dict)  # arch -> [T] group

    @property
    def name(self) -> str:
        return self.zoo.experiment

    @property
    def title(self) -> str:
        return f"{model_label(self.zoo.model)} {dataset_label(self.zoo.dataset)}"

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


_LOADED_GROUP_RULES: dict[str, str] = {}  # experiment -> group rule, of load_experiments


def load_experiments(
    zoo_paths: Sequence[str], group_paths: Sequence[str], weights: Sequence[str] = WEIGHT_SETS
) -> list[Experiment]:
    """Read zoos and groups files and pair every trial with its group (by experiment name,
    architecture and trial id, so the two lists need not be in the same order). ``weights``:
    the weight sets to load (see :func:`weightzoo.zoo.read_zoo`)."""
    if not zoo_paths:
        raise ValueError("no zoo files given")
    tables = [read_groups_csv(p) for p in group_paths]
    groups = pd.concat(tables, ignore_index=True) if tables else pd.DataFrame()
    source = ", ".join(str(p) for p in group_paths) or "(no groups files)"
    experiments = []
    _LOADED_GROUP_RULES.clear()  # what set_titles states: the rules of these groups files
    if len(groups):
        _LOADED_GROUP_RULES.update(groups.groupby("experiment", sort=False)["group_rule"].first())
    for path in zoo_paths:
        zoo = read_zoo(path, weights)
        mine = groups[groups["experiment"] == zoo.experiment] if len(groups) else groups
        if mine.empty:
            raise ValueError(f"{path}: experiment {zoo.experiment} is in no groups file ({source})")
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


CHUNK_ELEMENTS = 1 << 24  # per-trial work runs in chunks of about this many weights


def _trial_chunks(n_trials: int, per_trial: int) -> list[slice]:
    """Slices of trials whose weights together stay near :data:`CHUNK_ELEMENTS`, so that
    temporaries (float64 copies, masks) of wide layers do not multiply the memory."""
    step = max(1, CHUNK_ELEMENTS // max(1, per_trial))
    return [slice(i, i + step) for i in range(0, n_trials, step)]


def _finite_rows(arr: np.ndarray) -> np.ndarray:
    """``[T]``: whether every value of each trial (row along axis 0) is finite."""
    flat = arr.reshape(len(arr), -1)
    if len(flat) == 0:
        return np.zeros(0, dtype=bool)
    return np.concatenate([np.isfinite(flat[c]).all(axis=1) for c in _trial_chunks(*flat.shape)])


def _apply_chunked(fn: FeatureFn, arr: np.ndarray, idx: np.ndarray, layer: LayerInfo):
    """``fn`` on the trials ``idx`` of ``arr`` (non-empty), chunk by chunk, as ``[len(idx), k]``."""
    per_trial = int(np.prod(arr.shape[1:], dtype=np.int64))
    parts = [
        np.asarray(fn(arr[idx[c]], layer), dtype=float).reshape(len(idx[c]), -1)
        for c in _trial_chunks(len(idx), per_trial)
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


# -------------------------------------------------------------------------- drawing


def new_figure(nrows: int, ncols: int, panel_size: tuple[float, float] = (3.6, 3.0)):
    """A constrained-layout figure and its ``[nrows, ncols]`` array of axes (at least 6.5 in
    wide, so the title and caption of a one-column figure are not cut)."""
    width = max(6.5, panel_size[0] * ncols)
    fig = Figure(figsize=(width, panel_size[1] * nrows + 0.9), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False)
    return fig, axes


def set_titles(
    fig: Figure, title: str, caption: str, group_rules: dict[str, str] | None = None
) -> None:
    """Suptitle naming the figure like the paper, and a wrapped caption below the panels
    that ends with the rule that made the groups (``group_rules``, experiment -> rule;
    default: those of the groups files :func:`load_experiments` read last)."""
    rules = _LOADED_GROUP_RULES if group_rules is None else group_rules
    caption = f"{caption} {describe_group_rules(rules)}".strip()
    fig.suptitle(title, fontsize=12)
    width_chars = max(60, int(fig.get_figwidth() * 15))
    fig.supxlabel(textwrap.fill(caption, width_chars), fontsize=8)


def marker_size(n: int) -> float:
    if n > 300:
        return 4.0
    return 10.0 if n > 50 else 25.0


def group_handles(counts: dict[str, int], marker: str = "o") -> list[Line2D]:
    """Legend handles ``<group> (n=<count>)``: the paper's groups always, *between* if any."""
    shown = [g for g in ALL_GROUPS if g in GROUPS or counts.get(g, 0) > 0]
    line = "-" if marker == "" else "none"
    return [
        Line2D(
            [],
            [],
            color=GROUP_COLORS[g],
            marker=marker or None,
            linestyle=line,
            label=f"{g} (n={counts.get(g, 0)})",
        )
        for g in shown
    ]


def add_group_legend(ax: Axes, counts: dict[str, int], marker: str = "o") -> None:
    ax.legend(handles=group_handles(counts, marker), fontsize=7, loc="best", framealpha=0.8)


def note_panel(ax: Axes, text: str) -> None:
    """Say in the middle of a panel why it shows nothing."""
    ax.text(
        0.5,
        0.5,
        textwrap.fill(text, 32),
        transform=ax.transAxes,
        ha="center",
        va="center",
        fontsize=8,
        color="0.3",
    )
    ax.set_xticks([])
    ax.set_yticks([])


def note_skipped(ax: Axes, n_skipped: int) -> None:
    """Small corner note on trials left out for non-finite values."""
    if n_skipped:
        ax.text(
            0.99,
            0.01,
            f"{n_skipped} non-finite trial(s) not shown",
            transform=ax.transAxes,
            ha="right",
            va="bottom",
            fontsize=6,
            color="0.4",
        )


def scatter_by_group(ax: Axes, x: np.ndarray, y: np.ndarray, groups: np.ndarray) -> None:
    """Scatter coloured by group, drawn in :data:`DRAW_ORDER`, rasterized."""
    size = marker_size(len(x))
    for g in DRAW_ORDER:
        mask = groups == g
        if mask.any():
            ax.scatter(
                x[mask],
                y[mask],
                s=size,
                c=GROUP_COLORS[g],
                alpha=0.7,
                linewidths=0,
                rasterized=True,
            )


def save_figure(
    fig: Figure, out_pdf: str | os.PathLike, out_png: str | os.PathLike, dpi: int = DPI
) -> None:
    """Save ``fig`` as PDF and PNG, each atomically (temporary file, then rename)."""
    with atomic_output(out_pdf) as tmp:
        fig.savefig(tmp, format="pdf", dpi=dpi)
    with atomic_output(out_png) as tmp:
        fig.savefig(tmp, format="png", dpi=dpi)


def figure_models(experiments: Sequence[Experiment]) -> str:
    return ", ".join(dict.fromkeys(model_label(e.zoo.model) for e in experiments))
