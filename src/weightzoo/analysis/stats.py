"""Stratified two-group statistics: effect, bootstrap CI, permutation p-value.

Every test here compares trials of group *high* with trials of a reference group inside
*strata* (architectures). "Pooled" is the special case of a single stratum. Per stratum an
effect is computed, and the strata's effects are averaged with the weights
``n_high * n_rest / (n_high + n_rest)`` (the effective size of a two-group contrast), so an
architecture whose trials all share one group contributes nothing.

p-values come from label permutations *inside each stratum* (trials keep their
architecture; only the high/rest labels move). ``scipy.stats.permutation_test`` has no
strata, so the permutations are drawn here; the p-value follows scipy's rule exactly
(``(count + 1) / (n + 1)``, two-sided = twice the smaller one-sided value, clipped at 1), and
``tests/test_claims.py`` checks that a single stratum agrees with scipy. Confidence intervals
use ``scipy.stats.bootstrap`` (percentile method) with each (stratum, group) cell resampled
on its own, i.e. a stratified bootstrap.
"""

from __future__ import annotations

import functools
import warnings
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

MIN_PER_CELL = 2  # trials of each group a stratum needs to take part in a contrast
PERM_BATCH_ELEMENTS = 1 << 22  # permuted values held at once (memory bound)


@dataclass(frozen=True)
class Strata:
    """Positions of the high and reference ("rest") trials of each contributing stratum."""

    high: tuple[np.ndarray, ...]  # per stratum: [n1_s] row positions
    rest: tuple[np.ndarray, ...]  # per stratum: [n2_s] row positions

    @property
    def weights(self) -> np.ndarray:
        """``[S]`` effective size n1*n2/(n1+n2) of each stratum's contrast."""
        n1 = np.array([len(h) for h in self.high], dtype=float)
        n2 = np.array([len(r) for r in self.rest], dtype=float)
        return n1 * n2 / (n1 + n2)

    @property
    def n_high(self) -> int:
        return int(sum(len(h) for h in self.high))

    @property
    def n_rest(self) -> int:
        return int(sum(len(r) for r in self.rest))

    def __len__(self) -> int:
        return len(self.high)


def make_strata(
    is_high: np.ndarray, strata: np.ndarray, min_per_cell: int = MIN_PER_CELL
) -> Strata:
    """Split rows into strata; keep strata with at least ``min_per_cell`` trials of each group."""
    is_high = np.asarray(is_high, dtype=bool)
    strata = np.asarray(strata)
    high, rest = [], []
    for s in np.unique(strata):
        in_s = strata == s
        h, r = np.flatnonzero(in_s & is_high), np.flatnonzero(in_s & ~is_high)
        if len(h) >= min_per_cell and len(r) >= min_per_cell:
            high.append(h)
            rest.append(r)
    return Strata(tuple(high), tuple(rest))


def combine(effects: Sequence[np.ndarray], weights: np.ndarray) -> np.ndarray:
    """Weighted mean over strata of per-stratum effects (each ``[...]``)."""
    stacked = np.stack([np.asarray(e, dtype=float) for e in effects])  # [S, ...]
    w = weights.reshape((-1,) + (1,) * (stacked.ndim - 1))
    return (stacked * w).sum(axis=0) / weights.sum()


def permutation_pvalue(observed: float, null: np.ndarray) -> float:
    """Two-sided Monte-Carlo p-value by scipy's rule (``permutation_test``): NaN if undefined."""
    null = np.asarray(null, dtype=float)
    null = null[np.isfinite(null)]
    if not np.isfinite(observed) or null.size == 0:
        return float("nan")
    gamma = abs(1e-14 * observed) if observed else 0.0
    greater = (np.count_nonzero(null >= observed - gamma) + 1) / (null.size + 1)
    less = (np.count_nonzero(null <= observed + gamma) + 1) / (null.size + 1)
    return float(min(1.0, 2 * min(greater, less)))


def bootstrap_pvalue(estimate: float, distribution: np.ndarray) -> float:
    """Two-sided p-value of "the statistic is 0": ``estimate`` over the bootstrap standard
    error, against the normal distribution (a counting rule would bottom out at
    ``2 / (resamples + 1)``, too coarse for a correction across hundreds of rows)."""
    d = np.asarray(distribution, dtype=float)
    d = d[np.isfinite(d)]
    if d.size < 2 or not np.isfinite(estimate):
        return float("nan")
    se = d.std(ddof=1)
    if se == 0:
        return 0.0 if estimate != 0 else 1.0
    return float(2 * stats.norm.sf(abs(estimate) / se))


def permutations_of(n: int, n_perm: int, rng: np.random.Generator) -> np.ndarray:
    """``[n_perm, n]`` independent uniform random permutations of ``range(n)``."""
    return rng.permuted(np.tile(np.arange(n, dtype=np.int32), (n_perm, 1)), axis=1)


def shared_permutations(rows: np.ndarray, n_perm: int, seed: int) -> np.ndarray:
    """``[n_perm, len(rows)]`` permutations of the positions of ``rows``, drawn from ``seed``
    and the rows themselves, so every test of the same trials (claims 1, 2, 4, 5b of one
    layer) reuses one set of relabellings instead of drawing its own. Each test stays a
    valid permutation test; their null draws are shared, not independent."""
    rows = np.ascontiguousarray(rows, dtype=np.int64)
    return _cached_permutations(rows.tobytes(), len(rows), n_perm, seed)


@functools.lru_cache(maxsize=8)  # the tests of one layer come one scope after the other
def _cached_permutations(key: bytes, n: int, n_perm: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng([seed, zlib.crc32(key)])
    perms = permutations_of(n, n_perm, rng)
    perms.flags.writeable = False
    return perms


def perm_batches(n_perm: int, n: int) -> list[int]:
    """Sizes of permutation batches that keep ``batch * n`` near :data:`PERM_BATCH_ELEMENTS`."""
    step = max(1, PERM_BATCH_ELEMENTS // max(1, n))
    return [min(step, n_perm - i) for i in range(0, n_perm, step)]


def stratified_null(
    strata: Strata,
    stratum_effect: Callable[[int, np.ndarray, np.ndarray], np.ndarray],
    n_perm: int,
    seed: int,
) -> np.ndarray:
    """``[n_perm]`` combined effects with the labels permuted inside each stratum.

    ``stratum_effect(s, pos_high [P, n1], pos_rest [P, n2])`` gets row positions (into the
    caller's arrays) of stratum ``s`` under ``P`` relabellings and returns ``[P]`` effects.
    """
    rows = [np.concatenate([h, r]) for h, r in zip(strata.high, strata.rest, strict=True)]
    perms = [shared_permutations(r, n_perm, seed) for r in rows]
    out = []
    start = 0
    for size in perm_batches(n_perm, max(len(r) for r in rows)):
        effects = []
        for s, (h, r) in enumerate(zip(strata.high, rows, strict=True)):
            perm = r[perms[s][start : start + size]]  # [P, n_s] rows
            effects.append(stratum_effect(s, perm[:, : len(h)], perm[:, len(h) :]))
        out.append(combine(effects, strata.weights))
        start += size
    return np.concatenate(out)


def bootstrap_cells(
    cells: Sequence[np.ndarray],
    statistic: Callable[[list[np.ndarray]], np.ndarray],
    n_resamples: int,
    rng: np.random.Generator,
    confidence: float = 0.95,
) -> tuple[float, float, np.ndarray]:
    """Percentile CI of ``statistic`` with each cell (array of row positions, e.g. one
    group of one stratum) resampled on its own: ``scipy.stats.bootstrap`` on the positions.
    ``statistic(idx)`` gets, per cell, ``[B, n_cell]`` positions *inside the cell*
    (``cell[idx]`` are rows; :func:`counts` turns them into multiplicities) and returns
    ``[B]``. Returns the interval and the bootstrap distribution."""
    cells = [np.arange(len(c), dtype=float) for c in cells]

    def on_positions(*resampled, axis=-1):
        return statistic([np.atleast_2d(c).astype(np.intp) for c in resampled])

    with warnings.catch_warnings():
        # a resample of a small cell can repeat one trial (a correlation is then undefined);
        # scipy's interval turns NaN, the percentiles below skip such resamples
        warnings.simplefilter("ignore", stats.DegenerateDataWarning)
        res = stats.bootstrap(
            cells,
            on_positions,
            n_resamples=n_resamples,
            vectorized=True,
            method="percentile",
            confidence_level=confidence,
            rng=rng,
            batch=max(1, PERM_BATCH_ELEMENTS // max(1, sum(len(c) for c in cells))),
        )
    dist = np.asarray(res.bootstrap_distribution, dtype=float)
    if not np.isfinite(dist).any():
        return float("nan"), float("nan"), dist
    tail = (1 - confidence) / 2
    low, high = np.nanquantile(dist, [tail, 1 - tail])
    return float(low), float(high), dist


# ------------------------------------------------------------------------ effects
# Resamples and relabellings are handled as per-trial multiplicities ``w [B, n]`` (how often
# each trial is in resample b: 0/1 for a group under relabelling, 0..n for a bootstrap
# resample): ranks of a multiset then need one pass over trials sorted once, not a sort per
# resample.


def combined_spearman_ci(x, y, cells, weights, n_boot: int, rng) -> tuple:
    """Bootstrap CI of the weighted combination of per-cell Spearman ρ(x, y): trials
    resampled within each cell (``cells``: index arrays), ρ per cell from tied ranks,
    combined with ``weights`` (:func:`combine`). Returns (low, high)."""
    codes = [(value_codes(x[c]), value_codes(y[c])) for c in cells]

    def resampled(idx):  # per cell [B, n_cell] -> [B]
        rhos = [spearman_weighted(*codes[k], counts(i, len(cells[k]))) for k, i in enumerate(idx)]
        return combine(rhos, weights)

    return bootstrap_cells(cells, resampled, n_boot, rng)[:2]


def counts(local: np.ndarray, n: int) -> np.ndarray:
    """``[B, n]`` multiplicities of the positions ``local [B, m]`` (each in ``range(n)``)."""
    b = local.shape[0]
    flat = (local + n * np.arange(b)[:, None]).ravel()
    return np.bincount(flat, minlength=b * n).reshape(b, n).astype(float)


def value_codes(x: np.ndarray) -> np.ndarray:
    """Dense codes 0..u-1 of ``x`` (equal values share one code, order kept)."""
    return np.unique(x, return_inverse=True)[1].reshape(-1)


def weighted_midranks(codes: np.ndarray, w: np.ndarray) -> np.ndarray:
    """``[B, n]`` mid-rank of each trial's value inside the multiset ``w [B, n]`` (ties
    averaged, as ``scipy.stats.rankdata``); meaningful where ``w > 0``."""
    order = np.argsort(codes, kind="stable")
    sorted_codes = codes[order]
    starts = np.flatnonzero(np.r_[True, sorted_codes[1:] != sorted_codes[:-1]])
    per_code = np.add.reduceat(w[:, order], starts, axis=1)  # [B, u] multiplicity per value
    below = np.cumsum(per_code, axis=1) - per_code  # [B, u] values strictly smaller
    return (below + (per_code + 1) / 2)[:, codes]


def cliffs_delta_weighted(codes: np.ndarray, w_high: np.ndarray, w_rest: np.ndarray):
    """Cliff's delta of the multisets ``w_high [B, n1]`` vs ``w_rest [B, n2]`` of the values
    coded ``codes [n1 + n2]`` (high trials first)."""
    w = np.concatenate([w_high, w_rest], axis=1)
    ranks = weighted_midranks(codes, w)
    n1 = w_high.shape[1]
    m1, m2 = w_high.sum(axis=1), w_rest.sum(axis=1)
    rank_sum = (w_high * ranks[:, :n1]).sum(axis=1)
    return 2 * (rank_sum - m1 * (m1 + 1) / 2) / (m1 * m2) - 1


def spearman_weighted(codes_x: np.ndarray, codes_y: np.ndarray, w: np.ndarray) -> np.ndarray:
    """``[B]`` Spearman's rho of the multisets ``w [B, n]`` of pairs (NaN if constant)."""
    rx = weighted_midranks(codes_x, w)
    ry = weighted_midranks(codes_y, w)
    m = w.sum(axis=1, keepdims=True)
    rx = rx - (w * rx).sum(axis=1, keepdims=True) / m
    ry = ry - (w * ry).sum(axis=1, keepdims=True) / m
    denom = np.sqrt((w * rx**2).sum(axis=1) * (w * ry**2).sum(axis=1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return (w * rx * ry).sum(axis=1) / denom


def cliffs_delta_from_ranks(rank_sum_high: np.ndarray, n1: int, n2: int) -> np.ndarray:
    """Cliff's delta P(high > rest) - P(high < rest) from the high trials' mid-rank sum."""
    u = rank_sum_high - n1 * (n1 + 1) / 2
    return 2 * u / (n1 * n2) - 1


def cliffs_delta(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Cliff's delta of ``a [..., n1]`` vs ``b [..., n2]`` along the last axis."""
    ranks = stats.rankdata(np.concatenate([a, b], axis=-1), axis=-1)  # [..., n1+n2]
    n1 = a.shape[-1]
    return cliffs_delta_from_ranks(ranks[..., :n1].sum(axis=-1), n1, b.shape[-1])


def spearman_rows(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Spearman's rho of ``x`` and ``y`` (``[..., n]``) along the last axis (NaN if constant)."""
    rx = stats.rankdata(x, axis=-1)
    ry = stats.rankdata(y, axis=-1)
    return pearson_rows(rx, ry)


def pearson_rows(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    xc = x - x.mean(axis=-1, keepdims=True)
    yc = y - y.mean(axis=-1, keepdims=True)
    denom = np.sqrt((xc**2).sum(axis=-1) * (yc**2).sum(axis=-1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return (xc * yc).sum(axis=-1) / denom


def robust_standardise(x: np.ndarray) -> np.ndarray:
    """Columns of ``x [n, k]`` centred on the median and scaled by IQR/1.349 (std if the IQR
    is 0); columns with no spread at all are dropped. Outlying trials (huge weights) would
    otherwise set the scale of every column."""
    med = np.median(x, axis=0)
    q75, q25 = np.percentile(x, [75, 25], axis=0)
    scale = (q75 - q25) / 1.349
    std = x.std(axis=0)
    scale = np.where(scale > 0, scale, std)
    keep = scale > 0
    return (x[:, keep] - med[keep]) / scale[keep]
