"""Figs 11-13 data: a 2-D t-SNE of each trial's weights of one layer, per layer.

Rows of ``results/analysis/tsne/<experiment>.parquet``: ``layer``, ``group``, ``x``,
``y`` (one per embedded trial). Panels (:mod:`.store`): ``n_skipped`` trials with
non-finite weights in the layer, and a ``note`` where the layer is not embedded.

What is embedded per trial (``descriptor``):

* ``quantiles`` (default): ``n_quantiles`` quantiles of the trial's weights of the layer
  (at probabilities (k + 0.5) / n_quantiles) plus their mean and standard deviation: a
  fixed-length, permutation-invariant vector, comparable across trials of different widths
  (hidden units of a trained net can be permuted without changing the function);
* ``raw``: the flattened weight tensor itself, only possible when all trials share the
  layer's shape (an error otherwise); vectors longer than ``pca_dims`` are first reduced
  by PCA to ``pca_dims`` components (the usual t-SNE preprocessing).

t-SNE: ``sklearn.manifold.TSNE`` with PCA initialisation, ``random_state=seed`` and
perplexity ``min(perplexity, (n - 1) / 3)``; layers with fewer than :data:`MIN_TRIALS`
trials are not embedded and say so.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from ...train.shapes import LayerInfo, get_shapes
from ..trials import Experiment, FeatureFn, load_experiments, trial_features
from .store import experiment_meta, write_figure_data

DESCRIPTORS = ("quantiles", "raw")
MIN_TRIALS = 4
POINTS = pd.DataFrame({c: pd.Series(dtype=t) for c, t in (("layer", str), ("group", str))}).assign(
    x=pd.Series(dtype=float), y=pd.Series(dtype=float)
)  # no points: the columns of a layer's points


def layer_shapes(exp: Experiment, label: str) -> dict[str, tuple[int, ...]]:
    """Per-trial shape of layer ``label`` in each architecture that has it."""
    family = get_shapes(exp.zoo.model)
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


def embed_layer(exp: Experiment, label: str, options: dict) -> tuple[pd.DataFrame, dict]:
    """The t-SNE points of one layer and what its panel says (``n_skipped``, ``note``)."""
    if options["descriptor"] == "raw":
        fn = raw_descriptor
    else:
        fn = quantile_descriptor(options["n_quantiles"])
    feats = trial_features(exp, [label], fn, options["weights"])
    panel = {"n_skipped": feats.n_skipped, "note": ""}
    x = feats.values[label]
    if feats.n < MIN_TRIALS:
        panel["note"] = (
            f"t-SNE skipped: {feats.n} trial(s) with finite {label} weights (needs ≥ {MIN_TRIALS})"
        )
    elif np.ptp(x, axis=0).max() == 0:
        panel["note"] = "t-SNE skipped: all trials have the same descriptor"
    if panel["note"]:
        return POINTS.copy(), panel
    xy = embed(x, options["seed"], options["perplexity"], options["max_iter"], options["pca_dims"])
    points = pd.DataFrame({"layer": label, "group": feats.groups, "x": xy[:, 0], "y": xy[:, 1]})
    return points, panel


def tsne_data(
    zoo_path,
    groups_path,
    out_path,
    *,
    descriptor: str = "quantiles",
    n_quantiles: int = 64,
    perplexity: float = 30.0,
    max_iter: int = 1000,
    pca_dims: int = 50,
    seed: int = 0,
    weights: str = "final",
) -> None:
    """Embed every layer of one experiment and write its figure data to ``out_path``.

    ``descriptor``: ``quantiles`` or ``raw`` (module docstring); ``n_quantiles``: length of
    the quantile descriptor; ``perplexity``: upper bound of t-SNE's perplexity;
    ``max_iter``: t-SNE iterations (>= 250); ``pca_dims``: PCA reduction of longer raw
    vectors; ``seed``: t-SNE/PCA random state; ``weights``: ``final`` or ``initial``."""
    if descriptor not in DESCRIPTORS:
        raise ValueError(f"descriptor must be one of {DESCRIPTORS}, got {descriptor!r}")
    if n_quantiles < 1 or pca_dims < 2 or max_iter < 250:
        raise ValueError("need n_quantiles >= 1, pca_dims >= 2 and max_iter >= 250")
    exp = load_experiments([zoo_path], [groups_path], weights=(weights,))[0]
    if descriptor == "raw":
        check_raw_shapes([exp])
    options = {
        "descriptor": descriptor,
        "n_quantiles": n_quantiles,
        "perplexity": perplexity,
        "max_iter": max_iter,
        "pca_dims": pca_dims,
        "seed": seed,
        "weights": weights,
    }
    parts, panels = [], {}
    for label in exp.layer_labels():
        points, panels[label] = embed_layer(exp, label, options)
        parts.append(points)
    rows = pd.concat([POINTS, *parts], ignore_index=True)
    write_figure_data(out_path, "tsne", rows, experiment_meta(exp), panels, options)
