"""The tests that do not exchange labels between high and low/mid trials: the rank
correlation of a statistic with accuracy, the fraction of high trials in WeightWatcher's
"well trained" range (claim 8b) and the layer order of the weight change (claim 7)."""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats as sps

from .. import stats
from ..dynamics import sign_flip_test
from .definitions import HIGH, REST, TRIAL_KEY, WELL_TRAINED
from .outcome import Outcome, finish, rng_for
from .settings import ClaimSettings


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

    ci = stats.combined_spearman_ci(x, accuracy, cells, weights, settings.bootstrap, rng)
    strata = stats.Strata(tuple(cells), tuple(np.empty(0, int) for _ in cells))
    out = finish(strata, observed, np.concatenate(null), ci, settings)
    out.n = n
    return out


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


def layer_order_test(strata, groups, settings, experiment, scope) -> Outcome:
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
    rng = rng_for(settings, experiment, "7", scope)
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
