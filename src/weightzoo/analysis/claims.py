"""The paper's claims (issue 9, section 2), tested per experiment and layer on the features table.

Input: the long features table (one row per trial, layer and state; see
``weightzoo.analysis.features`` and docs/features.md); only ``state == "final"`` rows with
finite weights (``nonfinite`` False) are used, and a test drops trials whose feature is NaN.
Groups compared: *high* against *low* and *mid* together ("low/mid"); *non* and *between*
trials take no part in group tests (the rank correlations with accuracy use every trial
except *non*).

Claims (the effect's expected sign in brackets):

1. high nets have a lower per-trial weight std: Cliff's delta of ``w_std`` (< 0);
2. high nets cluster tightly: Cliff's delta of the distance of each trial's standardised
   layer descriptor to its group's centroid (PERMDISP on distances, < 0);
3. the gap of claim 1 is largest in the final (classification) layer: with ``gap_l`` the
   mean log ``w_std`` of low/mid minus that of high in layer l (the log of the ratio of
   geometric means; positive when high nets have the lower std),
   ``gap_final - max over the other layers of gap_l`` (> 0);
   CI from the bootstrap, p-value from the estimate over its bootstrap standard error
   (normal approximation: its null, "equal gaps", is not a label exchange);
4. sharper peak near zero: (4a) Cliff's delta of ``w_kurtosis`` (> 0), (4b) of
   ``w_frac_near_zero`` (> 0);
5. (5a) node strengths of consecutive layers correlate more strongly in high nets: Spearman
   rho of ``strength_mean`` of layer l vs l+1 across trials, high minus low/mid (> 0);
   (5b) mean node strength higher in high nets for DNN and CNN (> 0), lower for ViT (< 0);
6. high nets separate from low/mid in weight space: mean silhouette of the high trials
   (their distance to low/mid trials against their distance to each other, > 0);
7. WeightWatcher's power-law exponent (issue 10 §4; ``ww_alpha``, fits flagged
   ``ww_unreliable`` left out, so layers with < 50 eigenvalues are untested): (8a) lower in
   high nets: Cliff's delta (< 0); (8b) high nets' alpha lies in WeightWatcher's 2-6 "well
   trained" range: the fraction of high trials in [2, 6] minus 1/2 (> 0; exact binomial
   test against 1/2, Wilson 95 % CI; pooled only).

Each is tested **pooled** (all architectures as one sample, as the paper did) and **within**
architecture (effects computed per architecture and averaged with weights
n_high*n_rest/(n_high+n_rest); labels permuted only inside each architecture, see
:mod:`weightzoo.analysis.stats`). Claims 1, 4a, 4b and 5b are also tested as Spearman rank
correlations between the statistic and the trial's accuracy: pooled, within (per
architecture, averaged with weights n) and per architecture.

Verdict rule (every row, ``q`` = Benjamini-Hochberg q-value across the whole table):

* *inconclusive* when the row could not be tested (fewer than ``min_trials`` trials in a
  group; within: no architecture with at least 2 trials of both groups), when
  ``q >= alpha``, or when the 95 % CI includes 0;
* *supported* when ``q < alpha`` and the CI lies entirely on the expected side of 0;
* *contradicted* when ``q < alpha`` and the CI lies entirely on the other side.
"""

from __future__ import annotations

import os
import zlib
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields

import numpy as np
import pandas as pd
from scipy import stats as sps
from scipy.spatial.distance import cdist

from ..io import atomic_output
from . import stats
from .dynamics import sign_flip_test, trial_layer_trends

HIGH = "high"
REST = ("low", "mid")
NON = "non"
REST_LABEL = "low/mid"
DESCRIPTOR_COLUMNS = (
    "w_mean",
    "w_std",
    "w_q0",
    "w_q25",
    "w_q50",
    "w_q75",
    "w_q100",
    "w_abs_mean",
    "w_kurtosis",
    "w_frac_near_zero",
    "strength_mean",
    "strength_std",
)
VERDICTS = ("supported", "contradicted", "inconclusive")
SCOPES = ("pooled", "within")

CLAIMS = {
    "1": "high nets have a lower weight std than low/mid nets",
    "2": "high nets cluster tightly: smaller dispersion around their centroid",
    "3": "the std gap of claim 1 is largest in the final layer",
    "4a": "high nets' weights peak more sharply: higher kurtosis",
    "4b": "high nets have more weight mass near zero",
    "5a": "node strengths of consecutive layers correlate more strongly in high nets",
    "5b": "mean node strength higher in high nets (DNN, CNN), lower (ViT)",
    "6": "high nets separate from low/mid nets in weight space",
    "7": "later layers change more than earlier ones (Agrawal et al. 2020)",
    "8a": "high nets have a lower WeightWatcher alpha",
    "8b": "high nets' WeightWatcher alpha lies in its 2-6 'well trained' range",
}
LAYER_ORDER = "rwc_mean"  # claim 7's per-layer value: mean relative weight change
# claims whose statistic is one number per trial: (feature column, expected sign of the
# high-vs-low/mid contrast, which is also the expected sign of its correlation with accuracy)
UNIVARIATE = {
    "1": ("w_std", -1),
    "4a": ("w_kurtosis", +1),
    "4b": ("w_frac_near_zero", +1),
    "8a": ("ww_alpha", -1),
}
ALPHA = "ww_alpha"
WELL_TRAINED = (2.0, 6.0)  # WeightWatcher's range of alpha for a well-trained layer
STRENGTH = "strength_mean"
TRIAL_KEY = ["arch", "trial_id"]  # a zoo numbers trials per architecture

COLUMNS = (
    "experiment",
    "model",
    "dataset",
    "claim",
    "test",
    "scope",
    "layer",
    "statistic",
    "effect_name",
    "expected",
    "estimate",
    "ci_low",
    "ci_high",
    "p_value",
    "q_value",
    "verdict",
    "n",
    "n_high",
    "n_rest",
    "n_strata",
    "value_high",
    "value_rest",
    "note",
)


@dataclass(frozen=True)
class ClaimSettings:
    """The ``claims:`` config block (defaults documented in config/config.yaml)."""

    min_trials: int = 10  # fewest trials per group (or per correlation) to test at all
    permutations: int = 4999  # label permutations per p-value
    bootstrap: int = 999  # bootstrap resamples per confidence interval
    alpha: float = 0.05  # BH false discovery rate of a "supported"/"contradicted" verdict
    seed: int = 0
    accuracy: str = "test"  # which final accuracy the correlations use (groups.accuracy)

    @classmethod
    def from_config(cls, claims: Mapping | None, accuracy: str = "test") -> ClaimSettings:
        known = {f.name for f in fields(cls)} - {"accuracy"}
        claims = dict(claims or {})
        unknown = set(claims) - known
        if unknown:
            raise ValueError(f"claims: unknown key(s) {sorted(unknown)}; known: {sorted(known)}")
        return cls(**claims, accuracy=accuracy)


def config_defaults() -> dict:
    """The ``claims:`` config keys with their defaults (``config.DEFAULTS`` takes them here)."""
    return {f.name: f.default for f in fields(ClaimSettings) if f.name != "accuracy"}


@dataclass
class Outcome:
    """One tested (or untestable) row before multiple-testing correction."""

    estimate: float = np.nan
    ci_low: float = np.nan
    ci_high: float = np.nan
    p_value: float = np.nan
    n: int = 0
    n_high: int = 0
    n_rest: int = 0
    n_strata: int = 0
    value_high: float = np.nan
    value_rest: float = np.nan
    note: str = ""
    tested: bool = field(default=False, repr=False)


def _rng(settings: ClaimSettings, *key) -> np.random.Generator:
    """A generator per test, from the seed and the test's identity (order-independent)."""
    return np.random.default_rng([settings.seed, zlib.crc32("|".join(map(str, key)).encode())])


def _too_few(strata: stats.Strata, settings: ClaimSettings, within: bool) -> str:
    if within and len(strata) == 0:
        return f"no architecture has >= {stats.MIN_PER_CELL} trials of both high and {REST_LABEL}"
    if strata.n_high < settings.min_trials or strata.n_rest < settings.min_trials:
        return (
            f"too few trials: high n={strata.n_high}, {REST_LABEL} n={strata.n_rest} "
            f"(claims.min_trials = {settings.min_trials})"
        )
    return ""


def _untested(strata: stats.Strata, n: int, note: str) -> Outcome:
    return Outcome(n=n, n_high=strata.n_high, n_rest=strata.n_rest, n_strata=len(strata), note=note)


def _finish(
    strata, observed, null_or_p, ci, settings, value_high=np.nan, value_rest=np.nan, note=""
):
    p = null_or_p if np.isscalar(null_or_p) else stats.permutation_pvalue(observed, null_or_p)
    return Outcome(
        estimate=float(observed),
        ci_low=ci[0],
        ci_high=ci[1],
        p_value=p,
        n=strata.n_high + strata.n_rest,
        n_high=strata.n_high,
        n_rest=strata.n_rest,
        n_strata=len(strata),
        value_high=float(value_high),
        value_rest=float(value_rest),
        note=note if np.isfinite(observed) else (note or "statistic undefined (constant values)"),
        tested=bool(np.isfinite(observed)),
    )


def _pooled_or_within(is_high, strata_codes, within: bool, min_per_cell=stats.MIN_PER_CELL):
    codes = strata_codes if within else np.zeros(len(is_high), dtype=int)
    return stats.make_strata(is_high, codes, min_per_cell)


# ------------------------------------------------------------------ group contrasts


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
    strata = _pooled_or_within(is_high, strata_codes, within)
    note = _too_few(strata, settings, within)
    if note:
        return _untested(strata, len(x), note)
    # mid-ranks inside each stratum do not change when labels move: rank once
    ranks = np.zeros(len(x))
    for h, r in zip(strata.high, strata.rest, strict=True):
        rows = np.concatenate([h, r])
        ranks[rows] = sps.rankdata(x[rows])

    def permuted(s, pos_high, pos_rest):  # [P, n1], [P, n2] -> [P]
        return stats.cliffs_delta_from_ranks(
            ranks[pos_high].sum(axis=-1), pos_high.shape[-1], pos_rest.shape[-1]
        )

    codes = [stats.value_codes(x[np.concatenate([h, r])]) for h, r in _pairs(strata)]

    def resampled(idx):  # idx: per cell [B, n_cell] positions inside the cell -> [B]
        deltas = [
            stats.cliffs_delta_weighted(
                codes[s],
                stats.counts(idx[2 * s], len(h)),
                stats.counts(idx[2 * s + 1], len(r)),
            )
            for s, (h, r) in enumerate(_pairs(strata))
        ]
        return stats.combine(deltas, strata.weights)

    identity = [(h[None], r[None]) for h, r in zip(strata.high, strata.rest, strict=True)]
    observed = stats.combine([permuted(s, *hr) for s, hr in enumerate(identity)], strata.weights)[0]
    null = stats.stratified_null(strata, permuted, settings.permutations, settings.seed)
    ci = stats.bootstrap_cells(_cells(strata), resampled, settings.bootstrap, rng)[:2]
    high_rows = np.concatenate(strata.high)
    rest_rows = np.concatenate(strata.rest)
    return _finish(
        strata, observed, null, ci, settings, np.median(x[high_rows]), np.median(x[rest_rows])
    )


def _cells(strata: stats.Strata) -> list[np.ndarray]:
    return [c for pair in _pairs(strata) for c in pair]


def _pairs(strata: stats.Strata):
    return zip(strata.high, strata.rest, strict=True)


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
    x, is_high, strata_codes = _finite_rows(x, is_high, strata_codes)
    strata = _pooled_or_within(is_high, strata_codes, within)
    note = _too_few(strata, settings, within)
    if note:
        return _untested(strata, len(x), note)
    distance = np.full(len(x), np.nan)
    for rows, z in _standardised_descriptors(x, strata).values():
        high = is_high[rows]
        for g in (high, ~high):
            distance[rows[g]] = np.linalg.norm(z[g] - z[g].mean(axis=0), axis=1)
    # the distances are fixed now; permuting them between groups is Anderson's PERMDISP
    return contrast_test(distance, is_high, strata_codes, within, settings, rng)


def _finite_rows(x, is_high, strata_codes):
    x = np.asarray(x, dtype=float)
    ok = np.isfinite(x).all(axis=1)
    return x[ok], np.asarray(is_high)[ok], np.asarray(strata_codes)[ok]


def silhouette_test(
    x: np.ndarray, is_high, strata_codes, within: bool, settings: ClaimSettings, rng
) -> Outcome:
    """Claim 6: mean silhouette of the high trials against low/mid on standardised
    descriptors ``x [n, k]`` (distances only between trials of the same stratum)."""
    x, is_high, strata_codes = _finite_rows(x, is_high, strata_codes)
    strata = _pooled_or_within(is_high, strata_codes, within)
    note = _too_few(strata, settings, within)
    if note:
        return _untested(strata, len(x), note)
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
    return _finish(strata, observed, null, ci, settings, observed, np.nan)


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
    xy, is_high, strata_codes = _finite_rows(xy, is_high, strata_codes)
    strata = _pooled_or_within(is_high, strata_codes, within, min_per_cell=3)
    note = _too_few(strata, settings, within)
    if note:
        return _untested(strata, len(xy), note)

    local = np.zeros(len(xy), dtype=np.intp)  # row -> position inside its stratum (high first)
    codes = []
    for h, r in _pairs(strata):
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
        for s, (h, r) in enumerate(_pairs(strata)):
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
        for s, (h, r) in enumerate(_pairs(strata))
    ]  # fmt: skip
    rho_high = stats.combine([o[1] for o in observed], strata.weights)[0]
    rho_rest = stats.combine([o[2] for o in observed], strata.weights)[0]
    null = stats.stratified_null(strata, permuted, settings.permutations, settings.seed)
    ci = stats.bootstrap_cells(_cells(strata), resampled, settings.bootstrap, rng)[:2]
    return _finish(strata, rho_high - rho_rest, null, ci, settings, rho_high, rho_rest)


def final_layer_gap_test(
    std: np.ndarray, final_col: int, is_high, strata_codes, within: bool, settings, rng
) -> Outcome:
    """Claim 3: ``gap_final - max_{l != final} gap_l`` with ``gap_l`` the mean log std of
    the low/mid trials minus that of the high trials in layer l (``std``: trials x layers).
    A log ratio is scale-free like Cliff's delta but, unlike it, does not saturate at 1
    when the groups separate completely in every layer. CI and p-value from the bootstrap."""
    with np.errstate(divide="ignore", invalid="ignore"):
        log_std = np.where(np.asarray(std, dtype=float) > 0, np.log(std), np.nan)
    log_std, is_high, strata_codes = _finite_rows(log_std, is_high, strata_codes)
    strata = _pooled_or_within(is_high, strata_codes, within)
    note = _too_few(strata, settings, within)
    if note or log_std.shape[1] < 2:
        return _untested(strata, len(log_std), note or "fewer than two layers")
    others = [c for c in range(log_std.shape[1]) if c != final_col]

    def gaps(idx):  # per cell [B, n_cell] -> [B, L] combined gap per layer
        per_stratum = []
        for s, (h, r) in enumerate(_pairs(strata)):
            mean_high = stats.counts(idx[2 * s], len(h)) @ log_std[h] / len(h)  # [B, L]
            mean_rest = stats.counts(idx[2 * s + 1], len(r)) @ log_std[r] / len(r)
            per_stratum.append(mean_rest - mean_high)
        return stats.combine(per_stratum, strata.weights)

    def difference(idx):
        g = gaps(idx)
        return g[:, final_col] - g[:, others].max(axis=1)

    g0 = gaps([np.arange(len(c))[None] for c in _cells(strata)])[0]
    observed = g0[final_col] - g0[others].max()
    lo, hi, dist = stats.bootstrap_cells(_cells(strata), difference, settings.bootstrap, rng)
    return _finish(
        strata,
        observed,
        stats.bootstrap_pvalue(observed, dist),
        (lo, hi),
        settings,
        g0[final_col],
        g0[others].max(),
    )


# ------------------------------------------------------------- accuracy correlations


def accuracy_correlation_test(
    x: np.ndarray, accuracy: np.ndarray, strata_codes, within: bool, settings, rng
) -> Outcome:
    """Spearman rho between ``x`` and accuracy; within: per stratum, averaged with weights n
    (accuracies permuted inside each stratum)."""
    x = np.asarray(x, dtype=float)
    accuracy = np.asarray(accuracy, dtype=float)
    ok = np.isfinite(x) & np.isfinite(accuracy)
    x, accuracy, codes = x[ok], accuracy[ok], np.asarray(strata_codes)[ok]
    if not within:
        codes = np.zeros(len(x), dtype=int)
    cells = [np.flatnonzero(codes == c) for c in np.unique(codes)]
    cells = [c for c in cells if len(c) >= 3]
    n = int(sum(len(c) for c in cells))
    if n < settings.min_trials or not cells:
        return Outcome(
            n=n,
            n_strata=len(cells),
            note=f"too few trials: n={n} (claims.min_trials = {settings.min_trials})",
        )
    weights = np.array([len(c) for c in cells], dtype=float)
    rx = [sps.rankdata(x[c]) for c in cells]
    ry = [sps.rankdata(accuracy[c]) for c in cells]
    observed = stats.combine(
        [stats.pearson_rows(a, b) for a, b in zip(rx, ry, strict=True)], weights
    )
    perms = [stats.shared_permutations(c, settings.permutations, settings.seed) for c in cells]
    null, start = [], 0
    for size in stats.perm_batches(settings.permutations, max(len(c) for c in cells)):
        rhos = [
            stats.pearson_rows(a[None], b[p[start : start + size]])
            for a, b, p in zip(rx, ry, perms, strict=True)
        ]
        null.append(stats.combine(rhos, weights))
        start += size

    cell_codes = [(stats.value_codes(x[c]), stats.value_codes(accuracy[c])) for c in cells]

    def resampled(idx):  # per cell [B, n_cell] -> [B]
        rhos = [
            stats.spearman_weighted(*cell_codes[k], stats.counts(i, len(cells[k])))
            for k, i in enumerate(idx)
        ]
        return stats.combine(rhos, weights)

    ci = stats.bootstrap_cells(cells, resampled, settings.bootstrap, rng)[:2]
    strata = stats.Strata(tuple(cells), tuple(np.empty(0, int) for _ in cells))
    out = _finish(strata, observed, np.concatenate(null), ci, settings)
    out.n = n
    return out


# ------------------------------------------------------------------ the whole table


def _row(exp: dict, claim, test, scope, layer, statistic, effect_name, expected, out: Outcome):
    row = {
        **exp,
        "claim": claim,
        "test": test,
        "scope": scope,
        "layer": layer,
        "statistic": statistic,
        "effect_name": effect_name,
        "expected": "> 0" if expected > 0 else "< 0",
        **{k: v for k, v in asdict(out).items() if k != "tested"},
    }
    row["_tested"] = out.tested
    row["_sign"] = expected
    return row


def _layers_in_order(final: pd.DataFrame) -> list[str]:
    order = final.groupby("layer")["layer_index"].min().sort_values(kind="stable")
    return list(order.index)


def _group_rows(exp, layer_df, model, settings) -> list[dict]:
    comp = layer_df[layer_df["group"].isin((HIGH, *REST))]
    is_high = (comp["group"] == HIGH).to_numpy()
    codes = comp["arch_index"].to_numpy()
    layer = layer_df["layer"].iloc[0]
    key = (exp["experiment"], layer)
    rows = []
    for scope in SCOPES:
        within = scope == "within"
        for claim, (column, sign) in {
            **UNIVARIATE,
            "5b": (STRENGTH, -1 if model == "vit" else +1),
        }.items():
            out = contrast_test(
                comp[column].to_numpy(),
                is_high,
                codes,
                within,
                settings,
                _rng(settings, *key, claim, scope),
            )
            rows.append(_row(exp, claim, "group", scope, layer, column, "Cliff's delta", sign, out))
        descriptors = comp[list(DESCRIPTOR_COLUMNS)].to_numpy(dtype=float)
        out = dispersion_test(
            descriptors, is_high, codes, within, settings, _rng(settings, *key, "2", scope)
        )
        rows.append(
            _row(exp, "2", "group", scope, layer, "distance to group centroid",
                 "Cliff's delta", -1, out)
        )  # fmt: skip
        out = silhouette_test(
            descriptors, is_high, codes, within, settings, _rng(settings, *key, "6", scope)
        )
        rows.append(
            _row(exp, "6", "group", scope, layer, "descriptor", "silhouette of high", +1, out)
        )
    return rows


def _accuracy_rows(exp, layer_df, model, settings) -> list[dict]:
    use = layer_df[layer_df["group"] != NON]
    accuracy = use[f"final_{settings.accuracy}_acc"].to_numpy(dtype=float)
    codes = use["arch_index"].to_numpy()
    layer = layer_df["layer"].iloc[0]
    arch_names = use.groupby("arch_index")["arch"].first()
    scopes = [
        ("pooled", None),
        ("within", None),
        *((f"arch={a}", i) for i, a in arch_names.items()),
    ]
    rows = []
    statistics = {**UNIVARIATE, "5b": (STRENGTH, -1 if model == "vit" else +1)}
    for scope, arch_index in scopes:  # scope outer: its permutations serve every statistic
        for claim, (column, sign) in statistics.items():
            sel = np.ones(len(use), dtype=bool) if arch_index is None else codes == arch_index
            out = accuracy_correlation_test(
                use[column].to_numpy(dtype=float)[sel],
                accuracy[sel],
                codes[sel],
                scope == "within",
                settings,
                _rng(settings, exp["experiment"], layer, claim, "accuracy", scope),
            )
            used = use[sel & use[column].notna().to_numpy()]
            out.n_high = int((used["group"] == HIGH).sum())
            out.n_rest = int(used["group"].isin(REST).sum())
            rows.append(
                _row(exp, claim, "accuracy", scope, layer, column, "Spearman rho", sign, out)
            )
    return rows


def _pair_rows(exp, final, layers, settings) -> list[dict]:
    comp = final[final["group"].isin((HIGH, *REST))]
    wide = comp.pivot_table(index=TRIAL_KEY, columns="layer", values=STRENGTH, aggfunc="first")
    wide = wide.reindex(columns=layers)  # a layer without high or low/mid trials: NaN
    info = comp.groupby(TRIAL_KEY)[["group", "arch_index"]].first().loc[wide.index]
    is_high = (info["group"] == HIGH).to_numpy()
    codes = info["arch_index"].to_numpy()
    rows = []
    for a, b in zip(layers[:-1], layers[1:], strict=True):
        xy = wide[[a, b]].to_numpy(dtype=float)
        for scope in SCOPES:
            out = correlation_difference_test(
                xy, is_high, codes, scope == "within", settings,
                _rng(settings, exp["experiment"], a, b, "5a", scope),
            )  # fmt: skip
            rows.append(
                _row(exp, "5a", "group", scope, f"{a}-{b}", STRENGTH, "rho_high - rho_rest", +1,
                     out)
            )  # fmt: skip
    return rows


def _final_gap_rows(exp, final, settings) -> list[dict]:
    comp = final[final["group"].isin((HIGH, *REST))].copy()
    last = comp.groupby(TRIAL_KEY)["layer_index"].transform("max")
    final_labels = sorted(set(comp.loc[comp["layer_index"] == last, "layer"]))
    comp["key"] = np.where(comp["layer_index"] == last, "(final)", comp["layer"])
    wide = comp.pivot_table(index=TRIAL_KEY, columns="key", values="w_std", aggfunc="first")
    info = comp.groupby(TRIAL_KEY)[["group", "arch_index"]].first().loc[wide.index]
    final_col = list(wide.columns).index("(final)") if "(final)" in wide.columns else 0
    rows = []
    for scope in SCOPES:
        out = final_layer_gap_test(
            wide.to_numpy(dtype=float),
            final_col,
            (info["group"] == HIGH).to_numpy(),
            info["arch_index"].to_numpy(),
            scope == "within",
            settings,
            _rng(settings, exp["experiment"], "3", scope),
        )
        others = [c for c in wide.columns if c != "(final)"]
        out.note = out.note or f"final layer {'/'.join(final_labels)} vs {', '.join(others)}"
        rows.append(
            _row(exp, "3", "layers", scope, "final vs others", "w_std",
                 "log-std gap final - max other", +1, out)
        )  # fmt: skip
    return rows


def well_trained_test(alpha: np.ndarray, settings: ClaimSettings) -> Outcome:
    """Claim 8b on the high trials' alpha (NaN dropped): fraction in :data:`WELL_TRAINED`
    minus 1/2, exact binomial test against 1/2 and its Wilson 95 % CI (shifted alike)."""
    alpha = alpha[np.isfinite(alpha)]
    n = len(alpha)
    if n < settings.min_trials:
        note = f"too few trials: high n={n} with a reliable alpha (claims.min_trials = "
        return Outcome(n=n, n_high=n, note=note + f"{settings.min_trials})")
    inside = int(((alpha >= WELL_TRAINED[0]) & (alpha <= WELL_TRAINED[1])).sum())
    test = sps.binomtest(inside, n, 0.5)
    ci = test.proportion_ci(confidence_level=0.95, method="wilson")
    return Outcome(
        estimate=inside / n - 0.5,
        ci_low=ci.low - 0.5,
        ci_high=ci.high - 0.5,
        p_value=float(test.pvalue),
        n=n,
        n_high=n,
        value_high=float(np.median(alpha)),
        note=f"{inside} of {n} high trials have alpha in [2, 6]",
        tested=True,
    )


def _well_trained_rows(exp, layer_df, settings) -> list[dict]:
    high = layer_df.loc[layer_df["group"] == HIGH, ALPHA].to_numpy(dtype=float)
    out = well_trained_test(high, settings)
    layer = layer_df["layer"].iloc[0]
    return [_row(exp, "8b", "range", "pooled", layer, ALPHA, "fraction in [2, 6] - 1/2", +1, out)]


def reliable_alpha(final: pd.DataFrame) -> pd.DataFrame:
    """``final`` with ``ww_alpha`` NaN where the fit is flagged unreliable (and all NaN for
    a features table made before the spectral columns existed)."""
    if ALPHA not in final:
        return final.assign(**{ALPHA: np.nan})
    if "ww_unreliable" not in final:
        return final
    return final.assign(**{ALPHA: final[ALPHA].mask(final["ww_unreliable"].astype(bool))})


def experiment_claims(features: pd.DataFrame, settings: ClaimSettings) -> list[dict]:
    """All rows of one experiment (p-values not yet corrected)."""
    final = features[(features["state"] == "final") & ~features["nonfinite"].astype(bool)]
    final = reliable_alpha(final)
    first = features.iloc[0]
    exp = {k: first[k] for k in ("experiment", "model", "dataset")}
    if final.empty:
        return []
    model = str(first["model"])
    layers = _layers_in_order(final)
    rows = []
    for layer in layers:
        layer_df = final[final["layer"] == layer]
        rows += _group_rows(exp, layer_df, model, settings)
        rows += _accuracy_rows(exp, layer_df, model, settings)
        rows += _well_trained_rows(exp, layer_df, settings)
    rows += _final_gap_rows(exp, final, settings)
    rows += _pair_rows(exp, final, layers, settings)
    rows += layer_order_rows(exp, final, settings)
    return rows


def layer_order_rows(exp: dict, final: pd.DataFrame, settings: ClaimSettings) -> list[dict]:
    """Claim 7 (Agrawal et al. 2020), one row per scope: per trial, Kendall's tau between
    the layer index and the layer's mean relative weight change (+1: every later layer
    changed more); estimate = mean tau (within: the mean of each architecture's mean over
    architectures with >= ``min_trials`` trials, equal weights); sign-flip permutation
    p-value and bootstrap CI (:func:`weightzoo.analysis.dynamics.sign_flip_test`). Every
    trial with finite values takes part, whatever its group."""
    trends = trial_layer_trends(final) if LAYER_ORDER in final else pd.DataFrame()
    groups = final.groupby(TRIAL_KEY)["group"].first()
    rows = []
    for scope in SCOPES:
        if trends.empty:
            out = Outcome(note="no layer dynamics in the zoo (HDF5 schema 1): rerun training")
        else:
            by_arch = [g for _, g in trends.groupby("arch", sort=False)]
            used = [trends] if scope == "pooled" else [
                g for g in by_arch if len(g) >= settings.min_trials
            ]  # fmt: skip
            out = _layer_order_outcome(used, groups, settings, exp["experiment"], scope)
        rows.append(
            _row(exp, "7", "layers", scope, "all layers", LAYER_ORDER,
                 "mean Kendall tau, layer order vs RWC", +1, out)
        )  # fmt: skip
    return rows


def _layer_order_outcome(strata, groups, settings, experiment, scope) -> Outcome:
    n = int(sum(len(s) for s in strata))
    used = pd.concat(strata) if strata else pd.DataFrame(columns=["arch", "trial_id"])
    g = groups.reindex(pd.MultiIndex.from_frame(used[TRIAL_KEY])).to_numpy()
    counts = {"n": n, "n_high": int((g == HIGH).sum()), "n_rest": int(np.isin(g, REST).sum())}
    if n < settings.min_trials or not strata:
        note = f"too few trials: n={n} (claims.min_trials = {settings.min_trials}" + (
            " per architecture)" if scope == "within" else ")"
        )
        return Outcome(**counts, n_strata=len(strata), note=note)
    taus = [s["tau"].to_numpy() for s in strata]
    rng = _rng(settings, experiment, "7", scope)
    estimate, low, high, p = sign_flip_test(taus, settings.permutations, settings.bootstrap, rng)
    tau = used["tau"].to_numpy()
    return Outcome(
        estimate=estimate,
        ci_low=low,
        ci_high=high,
        p_value=p,
        **counts,
        n_strata=len(strata),
        value_high=float(np.mean(tau[g == HIGH])) if (g == HIGH).any() else np.nan,
        value_rest=float(np.mean(tau[np.isin(g, REST)])) if np.isin(g, REST).any() else np.nan,
        tested=True,
    )


REQUIRED_COLUMNS = (
    "experiment",
    "model",
    "dataset",
    "arch",
    "arch_index",
    "trial_id",
    "group",
    "layer",
    "layer_index",
    "state",
    "nonfinite",
    STRENGTH,
    *DESCRIPTOR_COLUMNS,
)


def test_claims(features: pd.DataFrame, settings: ClaimSettings | None = None) -> pd.DataFrame:
    """The claims table of every experiment in ``features`` (BH across the whole table)."""
    settings = settings or ClaimSettings()
    missing = [c for c in REQUIRED_COLUMNS if c not in features.columns]
    acc = f"final_{settings.accuracy}_acc"
    if acc not in features.columns:
        missing.append(acc)
    if missing:
        raise ValueError(
            f"features table lacks column(s) {missing}; regenerate it with the rule `features`"
        )
    rows = []
    for _, df in features.groupby("experiment", sort=False):
        rows += experiment_claims(df, settings)
    table = pd.DataFrame(rows)
    if table.empty:
        return pd.DataFrame(columns=COLUMNS)
    return _verdicts(table, settings)[list(COLUMNS)]


test_claims.__test__ = False  # not a pytest test despite its name


def _verdicts(table: pd.DataFrame, settings: ClaimSettings) -> pd.DataFrame:
    tested = table["_tested"] & table["p_value"].notna()
    table["q_value"] = np.nan
    if tested.any():
        table.loc[tested, "q_value"] = sps.false_discovery_control(
            table.loc[tested, "p_value"].to_numpy(dtype=float)
        )
    significant = table["q_value"] < settings.alpha
    sign = table["_sign"]
    expected_side = np.where(sign > 0, table["ci_low"] > 0, table["ci_high"] < 0)
    other_side = np.where(sign > 0, table["ci_high"] < 0, table["ci_low"] > 0)
    table["verdict"] = np.select(
        [significant & expected_side, significant & other_side],
        ["supported", "contradicted"],
        "inconclusive",
    )
    return table


# ---------------------------------------------------------------------------- output


ACCURACY_LABELS = {
    "1": "std",
    "4a": "kurtosis",
    "4b": "mass near 0",
    "5b": "mean strength",
    "8a": "WW alpha",
}


def test_rows() -> list[tuple[str, str, str]]:
    """(claim, test, label) of the summary grid rows, in order: the group claims, then the
    rank correlations with accuracy."""
    kinds = {"3": "layers", "7": "layers", "8b": "range"}
    rows = [(c, kinds.get(c, "group"), f"{c}: {text}") for c, text in CLAIMS.items()]
    rows += [
        (c, "accuracy", f"{c}: rank correlation of {ACCURACY_LABELS[c]} with accuracy")
        for c in (*UNIVARIATE, "5b")
    ]
    return rows


def column_order(df: pd.DataFrame) -> list[str]:
    """The ``layer`` values of one experiment's rows: layers (input side first), then the
    layer pairs of claim 5a, then claim 3's "final vs others"."""
    layers = list(dict.fromkeys(df.loc[df["test"] == "accuracy", "layer"]))
    pairs = list(dict.fromkeys(df.loc[df["claim"] == "5a", "layer"]))
    rest = [c for c in dict.fromkeys(df["layer"]) if c not in layers and c not in pairs]
    return layers + pairs + rest


def verdict_cell(row: Mapping) -> str:
    """One scope's verdict in the Markdown grid: yes / NO / ? (tested) or n/a (untested)."""
    if not np.isfinite(row["p_value"]):
        return "n/a"
    return {"supported": "yes", "contradicted": "NO", "inconclusive": "?"}[row["verdict"]]


def claims_markdown(table: pd.DataFrame, settings: ClaimSettings) -> str:
    """A verdict grid per experiment (test x layer, "pooled / within") and the detail rows."""
    lines = [
        "# The paper's claims, tested",
        "",
        f"High vs {REST_LABEL} trials, final weights. Verdicts: yes = supported (BH q < "
        f"{settings.alpha} and the 95 % CI on the expected side of 0), NO = contradicted "
        "(CI on the other side), ? = inconclusive, n/a = not testable (too few trials; "
        "within: no architecture holds both groups). Cells: pooled / within architecture. "
        "Method: docs/claims.md.",
        "",
    ]
    for experiment, df in table.groupby("experiment", sort=False):
        lines += [f"## {experiment}", ""]
        columns = column_order(df)
        lines.append("| claim | " + " | ".join(columns) + " |")
        lines.append("|---|" + "---|" * len(columns))
        for claim, test, label in test_rows():
            cells = []
            for column in columns:
                sel = df[(df["claim"] == claim) & (df["test"] == test) & (df["layer"] == column)]
                by_scope = {r["scope"]: r for _, r in sel.iterrows()}
                cells.append(" / ".join(verdict_cell(by_scope[s]) for s in SCOPES if s in by_scope))
            if any(cells):
                lines.append(f"| {label} | " + " | ".join(cells) + " |")
        lines.append("")
    lines += [
        "## All rows (rank correlations per architecture: in claims.csv)",
        "",
    ]
    detail = table[~table["scope"].str.startswith("arch=")]
    head = ("experiment", "claim", "test", "scope", "layer", "statistic", "estimate",
            "ci_low", "ci_high", "q_value", "verdict", "n_high", "n_rest", "note")  # fmt: skip
    lines.append("| " + " | ".join(head) + " |")
    lines.append("|" + "---|" * len(head))
    for _, r in detail.iterrows():
        lines.append("| " + " | ".join(_fmt(r[c]) for c in head) + " |")
    return "\n".join(lines) + "\n"


def _fmt(value) -> str:
    if isinstance(value, float | np.floating):
        if not np.isfinite(value):
            return "–"
        return f"{value:.2g}" if abs(value) < 1e-3 and value != 0 else f"{value:.3f}"
    return str(value).replace("|", "/")


def write_claims(
    table: pd.DataFrame, csv_path: str | os.PathLike, md_path: str | os.PathLike, settings
) -> None:
    with atomic_output(csv_path) as tmp:
        table.to_csv(tmp, index=False)
    with atomic_output(md_path) as tmp:
        tmp.write_text(claims_markdown(table, settings))


def read_claims(path: str | os.PathLike) -> pd.DataFrame:
    return pd.read_csv(path, keep_default_na=True, dtype={"claim": str})
