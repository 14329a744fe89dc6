"""The tests of high against low/mid trials: labels permuted inside strata (pooled: one
stratum; within: one per architecture), confidence intervals from the bootstrap per cell
(:mod:`weightzoo.analysis.stats`). Each returns an :class:`~.outcome.Outcome`."""

from __future__ import annotations

import numpy as np
from scipy import stats as sps
from scipy.spatial.distance import cdist

from .. import stats
from .outcome import (
    Outcome,
    finish,
    finite_rows,
    pooled_or_within,
    strata_cells,
    strata_pairs,
    too_few,
    untested,
)
from .settings import ClaimSettings


def contrast_test(
    x: np.ndarray,
    is_high: np.ndarray,
    strata_codes: np.ndarray,
    within: bool,
    settings: ClaimSettings,
    rng: np.random.Generator,
) -> Outcome:
    """Cliff's delta of high vs low/mid on one value per trial (NaN trials dropped)."""
    x = np.asarray(x, dtype=float)
    ok = np.isfinite(x)
    x, is_high, strata_codes = x[ok], np.asarray(is_high)[ok], np.asarray(strata_codes)[ok]
    strata = pooled_or_within(is_high, strata_codes, within)
    note = too_few(strata, settings, within)
    if note:
        return untested(strata, len(x), note)
    # mid-ranks inside each stratum do not change when labels move: rank once
    ranks = np.zeros(len(x))
    for h, r in zip(strata.high, strata.rest, strict=True):
        rows = np.concatenate([h, r])
        ranks[rows] = sps.rankdata(x[rows])

    def permuted(s, pos_high, pos_rest):  # [P, n1], [P, n2] -> [P]
        return stats.cliffs_delta_from_ranks(
            ranks[pos_high].sum(axis=-1), pos_high.shape[-1], pos_rest.shape[-1]
        )

    codes = [stats.value_codes(x[np.concatenate([h, r])]) for h, r in strata_pairs(strata)]

    def resampled(idx):  # idx: per cell [B, n_cell] positions inside the cell -> [B]
        deltas = [
            stats.cliffs_delta_weighted(
                codes[s],
                stats.counts(idx[2 * s], len(h)),
                stats.counts(idx[2 * s + 1], len(r)),
            )
            for s, (h, r) in enumerate(strata_pairs(strata))
        ]
        return stats.combine(deltas, strata.weights)

    identity = [(h[None], r[None]) for h, r in zip(strata.high, strata.rest, strict=True)]
    observed = stats.combine([permuted(s, *hr) for s, hr in enumerate(identity)], strata.weights)[0]
    null = stats.stratified_null(strata, permuted, settings.permutations, settings.seed)
    ci = stats.bootstrap_cells(strata_cells(strata), resampled, settings.bootstrap, rng)[:2]
    high_rows = np.concatenate(strata.high)
    rest_rows = np.concatenate(strata.rest)
    return finish(
        strata, observed, null, ci, settings, np.median(x[high_rows]), np.median(x[rest_rows])
    )


def _standardised_descriptors(
    x: np.ndarray, strata: stats.Strata
) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """Per stratum: its rows and their robustly standardised descriptors ``[n_s, k_s]``."""
    out = {}
    for s, (h, r) in enumerate(zip(strata.high, strata.rest, strict=True)):
        rows = np.concatenate([h, r])
        out[s] = (rows, stats.robust_standardise(x[rows]))
    return out


def dispersion_test(
    x: np.ndarray, is_high, strata_codes, within: bool, settings: ClaimSettings, rng
) -> Outcome:
    """Claim 2 (PERMDISP-like): Cliff's delta of each trial's Euclidean distance to its own
    group's centroid (per stratum), on standardised descriptors ``x [n, k]``."""
    x, is_high, strata_codes = finite_rows(x, is_high, strata_codes)
    strata = pooled_or_within(is_high, strata_codes, within)
    note = too_few(strata, settings, within)
    if note:
        return untested(strata, len(x), note)
    distance = np.full(len(x), np.nan)
    for rows, z in _standardised_descriptors(x, strata).values():
        high = is_high[rows]
        for g in (high, ~high):
            distance[rows[g]] = np.linalg.norm(z[g] - z[g].mean(axis=0), axis=1)
    # the distances are fixed now; permuting them between groups is Anderson's PERMDISP
    return contrast_test(distance, is_high, strata_codes, within, settings, rng)


def silhouette_test(
    x: np.ndarray, is_high, strata_codes, within: bool, settings: ClaimSettings, rng
) -> Outcome:
    """Claim 6: mean silhouette of the high trials against low/mid on standardised
    descriptors ``x [n, k]`` (distances only between trials of the same stratum)."""
    x, is_high, strata_codes = finite_rows(x, is_high, strata_codes)
    strata = pooled_or_within(is_high, strata_codes, within)
    note = too_few(strata, settings, within)
    if note:
        return untested(strata, len(x), note)
    local = np.zeros(len(x), dtype=np.intp)  # row -> position inside its stratum
    dist = {}
    for s, (rows, z) in _standardised_descriptors(x, strata).items():
        local[rows] = np.arange(len(rows))
        dist[s] = cdist(z, z).astype(np.float32)  # [n_s, n_s]

    def permuted(s, pos_high, pos_rest):  # [P, n1], [P, n2] -> [P]
        d = dist[s]
        n1, n2 = pos_high.shape[-1], pos_rest.shape[-1]
        label = np.zeros((len(pos_high), len(d)), dtype=np.float32)  # [P, n_s] 1 = high
        np.put_along_axis(label, local[pos_high], 1.0, axis=1)
        to_high = label @ d  # [P, n_s] summed distance to the high trials (d symmetric)
        a = to_high / (n1 - 1)  # mean distance to the other high trials (d_ii = 0)
        b = (d.sum(axis=1) - to_high) / n2  # mean distance to the low/mid trials
        with np.errstate(invalid="ignore", divide="ignore"):
            sil = np.nan_to_num((b - a) / np.maximum(a, b))  # [P, n_s]
        return (sil * label).sum(axis=1) / n1

    identity = [(h[None], r[None]) for h, r in zip(strata.high, strata.rest, strict=True)]
    per_stratum = [permuted(s, *hr)[0] for s, hr in enumerate(identity)]
    observed = stats.combine(per_stratum, strata.weights)
    null = stats.stratified_null(strata, permuted, settings.permutations, settings.seed)
    # CI: the high trials' own silhouettes (neighbours fixed) resampled; duplicated trials
    # in a resample would otherwise sit at distance 0 and inflate the clustering
    point_sil = np.zeros(len(x))
    for s, h in enumerate(strata.high):
        point_sil[h] = _point_silhouettes(dist[s], local[h])

    def resampled(idx):
        return stats.combine(
            [point_sil[h[idx[s]]].mean(axis=-1) for s, h in enumerate(strata.high)],
            strata.weights,
        )

    ci = stats.bootstrap_cells(list(strata.high), resampled, settings.bootstrap, rng)[:2]
    return finish(strata, observed, null, ci, settings, observed, np.nan)


def _point_silhouettes(d: np.ndarray, high_pos: np.ndarray) -> np.ndarray:
    label = np.zeros(len(d), dtype=bool)
    label[high_pos] = True
    a = d[np.ix_(label, label)].sum(axis=1) / (label.sum() - 1)
    b = d[np.ix_(label, ~label)].mean(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.nan_to_num((b - a) / np.maximum(a, b))


def correlation_difference_test(
    xy: np.ndarray, is_high, strata_codes, within: bool, settings: ClaimSettings, rng
) -> Outcome:
    """Claim 5a: Spearman rho of ``xy[:, 0]`` vs ``xy[:, 1]`` in high minus in low/mid."""
    xy, is_high, strata_codes = finite_rows(xy, is_high, strata_codes)
    strata = pooled_or_within(is_high, strata_codes, within, min_per_cell=3)
    note = too_few(strata, settings, within)
    if note:
        return untested(strata, len(xy), note)

    local = np.zeros(len(xy), dtype=np.intp)  # row -> position inside its stratum (high first)
    codes = []
    for h, r in strata_pairs(strata):
        rows = np.concatenate([h, r])
        local[rows] = np.arange(len(rows))
        codes.append((stats.value_codes(xy[rows, 0]), stats.value_codes(xy[rows, 1])))

    def rho_difference(s, w_high, w_rest):  # multiplicities [B, n_s] each -> 3 x [B]
        rho_high = stats.spearman_weighted(*codes[s], w_high)
        rho_rest = stats.spearman_weighted(*codes[s], w_rest)
        return rho_high - rho_rest, rho_high, rho_rest

    def permuted(s, pos_high, pos_rest):  # [P, n1], [P, n2] -> [P]
        w_high = np.zeros((len(pos_high), len(codes[s][0])))
        np.put_along_axis(w_high, local[pos_high], 1.0, axis=1)
        return rho_difference(s, w_high, 1 - w_high)[0]

    def resampled(idx):  # per cell [B, n_cell] -> [B]
        diffs = []
        for s, (h, r) in enumerate(strata_pairs(strata)):
            w_high = stats.counts(idx[2 * s], len(h))
            w_rest = stats.counts(idx[2 * s + 1], len(r))
            diffs.append(
                rho_difference(
                    s,
                    np.pad(w_high, ((0, 0), (0, len(r)))),
                    np.pad(w_rest, ((0, 0), (len(h), 0))),
                )[0]
            )
        return stats.combine(diffs, strata.weights)

    observed = [
        rho_difference(s, (np.arange(len(h) + len(r)) < len(h))[None] * 1.0,
                       (np.arange(len(h) + len(r)) >= len(h))[None] * 1.0)
        for s, (h, r) in enumerate(strata_pairs(strata))
    ]  # fmt: skip
    rho_high = stats.combine([o[1] for o in observed], strata.weights)[0]
    rho_rest = stats.combine([o[2] for o in observed], strata.weights)[0]
    null = stats.stratified_null(strata, permuted, settings.permutations, settings.seed)
    ci = stats.bootstrap_cells(strata_cells(strata), resampled, settings.bootstrap, rng)[:2]
    return finish(strata, rho_high - rho_rest, null, ci, settings, rho_high, rho_rest)


def final_layer_gap_test(
    std: np.ndarray, final_col: int, is_high, strata_codes, within: bool, settings, rng
) -> Outcome:
    """Claim 3: ``gap_final - max_{l != final} gap_l`` with ``gap_l`` the mean log std of
    the low/mid trials minus that of the high trials in layer l (``std``: trials x layers).
    A log ratio is scale-free like Cliff's delta but, unlike it, does not saturate at 1
    when the groups separate completely in every layer. CI and p-value from the bootstrap."""
    with np.errstate(divide="ignore", invalid="ignore"):
        log_std = np.where(np.asarray(std, dtype=float) > 0, np.log(std), np.nan)
    log_std, is_high, strata_codes = finite_rows(log_std, is_high, strata_codes)
    strata = pooled_or_within(is_high, strata_codes, within)
    note = too_few(strata, settings, within)
    if note or log_std.shape[1] < 2:
        return untested(strata, len(log_std), note or "fewer than two layers")
    others = [c for c in range(log_std.shape[1]) if c != final_col]

    def gaps(idx):  # per cell [B, n_cell] -> [B, L] combined gap per layer
        per_stratum = []
        for s, (h, r) in enumerate(strata_pairs(strata)):
            mean_high = stats.counts(idx[2 * s], len(h)) @ log_std[h] / len(h)  # [B, L]
            mean_rest = stats.counts(idx[2 * s + 1], len(r)) @ log_std[r] / len(r)
            per_stratum.append(mean_rest - mean_high)
        return stats.combine(per_stratum, strata.weights)

    def difference(idx):
        g = gaps(idx)
        return g[:, final_col] - g[:, others].max(axis=1)

    g0 = gaps([np.arange(len(c))[None] for c in strata_cells(strata)])[0]
    observed = g0[final_col] - g0[others].max()
    lo, hi, dist = stats.bootstrap_cells(strata_cells(strata), difference, settings.bootstrap, rng)
    return finish(
        strata,
        observed,
        stats.bootstrap_pvalue(observed, dist),
        (lo, hi),
        settings,
        g0[final_col],
        g0[others].max(),
    )
