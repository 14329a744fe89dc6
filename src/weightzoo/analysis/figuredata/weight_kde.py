"""Figs 5-7 data: per layer and accuracy group, a subsample of the layer's weights pooled
over the group's trials, and its Gaussian kernel density estimate.

Rows of ``results/analysis/weight_kde/<experiment>.parquet``: ``layer``, ``group``,
``part`` (``sample``: one sampled weight ``x``; ``kde``: the density ``density`` at ``x``
on :data:`KDE_POINTS` points spanning the panel's x-range). Panels (:mod:`.store`):
``n_skipped`` trials with non-finite weights, ``lo`` and ``hi`` (the x-range), a ``note``
where no trial has finite weights.

Pooled weights can number billions, so each group is represented by a uniform random
subsample without replacement (at most ``max_samples`` weights; the panel's generator is
seeded with ``[seed, row, column]``, its place in the figure: ``row`` is the experiment's
row among its model's experiments, the column the layer's). The histogram the figure
draws and the KDE (``scipy.stats.gaussian_kde``, Scott's bandwidth) both use this sample.
The x-range spans the ``clip_quantile`` .. ``1 - clip_quantile`` quantiles of all groups'
samples so a few huge weights do not flatten the plot.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ...train.shapes import get_shapes
from ..groups import ALL_GROUPS
from ..trials import Experiment, finite_rows, load_experiments, weights_of
from .store import experiment_meta, write_figure_data

KDE_POINTS = 400


def sample_group_weights(
    exp: Experiment, label: str, rng: np.random.Generator, max_samples: int, which: str = "final"
) -> tuple[dict[str, np.ndarray], int]:
    """Per group, a uniform random subsample (without replacement, at most ``max_samples``)
    of all weights of layer ``label`` pooled over the group's trials; trials with
    non-finite weights are left out (their number is returned second)."""
    family = get_shapes(exp.zoo.model)
    rows: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {g: [] for g in ALL_GROUPS}
    n_skipped = 0
    for a in exp.zoo.archs:
        layer = next((li for li in family.layers(a.arch) if li.label == label), None)
        if layer is None:
            continue
        flat = weights_of(a, which)[layer.param].reshape(a.n_trials, -1)
        finite = finite_rows(flat)
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


def x_range(samples: dict[str, np.ndarray], clip_quantile: float) -> tuple[float, float]:
    """The ``clip_quantile`` .. ``1 - clip_quantile`` quantiles of all groups' samples."""
    pooled = np.concatenate([s for s in samples.values() if s.size])
    lo, hi = np.quantile(pooled, [clip_quantile, 1.0 - clip_quantile])
    if hi <= lo:  # all (clipped) weights equal
        lo, hi = lo - 0.5, hi + 0.5
    return float(lo), float(hi)


def layer_rows(samples: dict[str, np.ndarray], label: str, lo: float, hi: float) -> pd.DataFrame:
    """The sample and KDE rows of one layer (module docstring)."""
    grid = np.linspace(lo, hi, KDE_POINTS)
    parts = []
    for group, values in samples.items():
        if not values.size:
            continue
        parts.append(pd.DataFrame({"group": group, "part": "sample", "x": values}))
        density = kde_curve(values, grid)
        if density is not None:
            parts.append(
                pd.DataFrame({"group": group, "part": "kde", "x": grid, "density": density})
            )
    return pd.concat(parts, ignore_index=True).assign(layer=label)


def weight_kde_data(
    zoo_path,
    groups_path,
    out_path,
    *,
    max_samples: int = 20000,
    clip_quantile: float = 0.005,
    seed: int = 0,
    row: int = 0,
    weights: str = "final",
) -> None:
    """Sample and fit every layer of one experiment; write its figure data to ``out_path``.

    ``max_samples``: weights per group and layer; ``clip_quantile``: quantile cut of the
    x-range each side; ``seed`` and ``row``: the subsampling seed and the experiment's row
    in its figure (module docstring); ``weights``: ``final`` or ``initial``."""
    if max_samples < 2 or not 0 <= clip_quantile < 0.5:
        raise ValueError("need max_samples >= 2 and 0 <= clip_quantile < 0.5")
    exp = load_experiments([zoo_path], [groups_path], weights=(weights,))[0]
    parts, panels = [], {}
    for column, label in enumerate(exp.layer_labels()):
        rng = np.random.default_rng([seed, row, column])
        samples, n_skipped = sample_group_weights(exp, label, rng, max_samples, weights)
        panels[label] = {"n_skipped": n_skipped, "note": ""}
        if not any(s.size for s in samples.values()):
            panels[label]["note"] = f"no trials with finite {label} weights"
            continue
        lo, hi = x_range(samples, clip_quantile)
        panels[label].update(lo=lo, hi=hi)
        parts.append(layer_rows(samples, label, lo, hi))
    columns = ["layer", "group", "part", "x", "density"]
    rows = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=columns)
    options = {"max_samples": max_samples, "clip_quantile": clip_quantile, "seed": seed}
    write_figure_data(
        out_path,
        "weight_kde",
        rows.reindex(columns=columns),
        experiment_meta(exp),
        panels,
        {**options, "weights": weights},
    )
