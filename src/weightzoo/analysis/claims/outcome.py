"""One test's result (:class:`Outcome`) and what every test shares: its random generator,
the strata of a pooled or within-architecture test, and the "too few trials" rule."""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field

import numpy as np

from .. import stats
from .definitions import REST_LABEL
from .settings import ClaimSettings


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


def rng_for(settings: ClaimSettings, *key) -> np.random.Generator:
    """A generator per test, from the seed and the test's identity (order-independent)."""
    return np.random.default_rng([settings.seed, zlib.crc32("|".join(map(str, key)).encode())])


def too_few(strata: stats.Strata, settings: ClaimSettings, within: bool) -> str:
    if within and len(strata) == 0:
        return f"no architecture has >= {stats.MIN_PER_CELL} trials of both high and {REST_LABEL}"
    if strata.n_high < settings.min_trials or strata.n_rest < settings.min_trials:
        return (
            f"too few trials: high n={strata.n_high}, {REST_LABEL} n={strata.n_rest} "
            f"(claims.min_trials = {settings.min_trials})"
        )
    return ""


def untested(strata: stats.Strata, n: int, note: str) -> Outcome:
    return Outcome(n=n, n_high=strata.n_high, n_rest=strata.n_rest, n_strata=len(strata), note=note)


def finish(
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


def pooled_or_within(is_high, strata_codes, within: bool, min_per_cell=stats.MIN_PER_CELL):
    codes = strata_codes if within else np.zeros(len(is_high), dtype=int)
    return stats.make_strata(is_high, codes, min_per_cell)


def strata_cells(strata: stats.Strata) -> list[np.ndarray]:
    return [c for pair in strata_pairs(strata) for c in pair]


def strata_pairs(strata: stats.Strata):
    return zip(strata.high, strata.rest, strict=True)


def finite_rows(x, is_high, strata_codes):
    x = np.asarray(x, dtype=float)
    ok = np.isfinite(x).all(axis=1)
    return x[ok], np.asarray(is_high)[ok], np.asarray(strata_codes)[ok]
