"""The settings-controlled scope (:data:`~.definitions.SETTINGS_SCOPE`): a weight statistic's
rank correlation with accuracy inside an architecture, once what the trials' training
settings explain of both is taken out.

When a zoo varies its training per trial (the features table has ``hp_<name>`` columns), a
setting such as the learning rate can drive both a trial's accuracy and its weights; the
within-architecture correlation then restates the setting. Per architecture:

1. the statistic and the accuracy become their ranks among the architecture's trials (one
   trial with exploded weights cannot pull the fit);
2. the trials are split into strata of similar settings (:func:`settings_strata`):
   trials of one ``setting_id`` where the zoo has replicates, else the leaves of a
   regression tree of the accuracy's ranks on the settings;
3. both ranks are regressed by least squares (scikit-learn ``LinearRegression``) on the
   settings' basis (:func:`settings_basis`) plus one indicator per stratum, so trials are
   compared only with trials of their own stratum, after what the basis explains there;
4. the effect is Spearman's rho of the two residuals; architectures are averaged with
   weights n, as in *within*;
5. the p-value permutes the statistic's residuals only inside each stratum; the CI
   resamples the residual pairs inside each architecture (percentile bootstrap, the fit
   held fixed).

Group contrasts (high vs low/mid) are not run in this scope: see :data:`GROUP_NOT_RUN`.
"""

from __future__ import annotations

import zlib

import numpy as np
import pandas as pd
from scipy import stats as sps
from sklearn.linear_model import LinearRegression
from sklearn.tree import DecisionTreeRegressor

from ...train.hparams import LOG_SCALE
from .. import stats
from ..columns import HPARAM_PREFIX, SETTING_ID
from .outcome import Outcome, finish
from .settings import ClaimSettings

# rates sampled over decades (log-uniform): they enter by their log10
LOG_SETTINGS = frozenset(LOG_SCALE)
MIN_RESIDUAL_DF = 3  # trials beyond the fitted columns an architecture needs to take part
MIN_LEAF = 5  # trials per leaf of the strata tree
RESIDUAL_DECIMALS = 9  # residuals of ranks (scale 1..n) rounded: float noise is no ordering
# a centred basis column (standardised values, indicators) this close to 0: constant
CONSTANT_TOLERANCE = 1e-9
GROUP_NOT_RUN = (
    "not run with the settings controlled: high and low/mid are bands of raw accuracy, "
    "which the settings drive; controlling them would need bands of settings-adjusted "
    "accuracy, a different claim. Read the rank correlations with accuracy (test = accuracy) "
    "in this scope"
)


def settings_frame(df: pd.DataFrame) -> pd.DataFrame | None:
    """The ``hp_`` columns that hold a value in ``df`` (and ``setting_id`` when present), or
    None for a zoo with fixed settings. A table concatenated from several experiments carries
    the other experiments' setting columns as all-NaN: those do not count."""
    hp = [c for c in df.columns if str(c).startswith(HPARAM_PREFIX) and _has_value(df[c]).any()]
    if not hp:
        return None
    return df[hp + ([SETTING_ID] if SETTING_ID in df.columns else [])]


def _has_value(values: pd.Series) -> pd.Series:
    """Where a setting column holds a value: neither NaN nor an empty name (an architecture
    that does not vary a setting leaves its column empty)."""
    return values.notna() & (values.astype(str) != "")


def _architecture_settings(settings: pd.DataFrame) -> tuple[pd.DataFrame, np.ndarray]:
    """The setting columns one architecture's trials have values in, and which trials
    ``[n]`` have all of them (an architecture may vary fewer settings than another)."""
    present = pd.DataFrame({c: _has_value(settings[c]) for c in settings.columns})
    columns = [c for c in settings.columns if present[c].any()]
    return settings[columns], present[columns].all(axis=1).to_numpy()


def _is_numeric(values: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values)


def _hp_columns(settings: pd.DataFrame) -> list[str]:
    return [c for c in settings.columns if c != SETTING_ID]


def _transformed(column: str, values: np.ndarray) -> dict[str, np.ndarray]:
    """A numeric setting before standardising and squaring: log10 for the rates spanning
    decades; exact zeros (weight decay's ``zero_share``) get an indicator of their own and
    the mean log of the others, so the indicator alone sets their level."""
    name = column.removeprefix(HPARAM_PREFIX)
    if name not in LOG_SETTINGS:
        return {name: values}
    if (values < 0).any():
        raise ValueError(
            f"features column {column} holds negative values ({values.min()!r}); a {name} "
            "cannot be negative: regenerate the features table with the rule `features`"
        )
    zero = values == 0
    logs = np.log10(np.where(zero, 1.0, values))
    logs[zero] = logs[~zero].mean() if (~zero).any() else 0.0
    out = {f"{name} = 0": zero.astype(float)} if zero.any() else {}
    return {**out, f"log10 {name}": logs}


def settings_basis(settings: pd.DataFrame) -> pd.DataFrame:
    """The columns through which the settings enter the fit (the intercept is the fit's own):

    * per numeric setting its value (log10 for :data:`LOG_SETTINGS`), standardised, and
      that value squared; a log setting with exact zeros adds an indicator of them;
    * per categorical setting one indicator per level but the first (sorted);
    * every such indicator times every numeric setting's standardised value: each
      optimizer (activation, init) has its own slope in the learning rate (init std ...).

    Columns without spread among these trials are dropped."""
    numeric: dict[str, np.ndarray] = {}  # standardised values, the interactions' partners
    columns: dict[str, np.ndarray] = {}
    indicators: dict[str, np.ndarray] = {}
    for column in _hp_columns(settings):
        values = settings[column]
        if not _is_numeric(values):
            dummies = pd.get_dummies(
                values.astype(str), prefix=column.removeprefix(HPARAM_PREFIX), prefix_sep="=",
                drop_first=True, dtype=float,
            )  # fmt: skip
            indicators.update({k: v.to_numpy() for k, v in dummies.items()})
            continue
        for label, t in _transformed(column, values.to_numpy(dtype=float)).items():
            if label.endswith(" = 0"):
                columns[label] = t
                continue
            z = (t - t.mean()) / (t.std() or 1.0)
            numeric[label] = z
            columns[label] = z
            columns[f"({label})^2"] = z**2
    columns.update(indicators)
    for d, indicator in indicators.items():
        columns.update({f"{d} * {label}": indicator * z for label, z in numeric.items()})
    basis = pd.DataFrame(columns, index=settings.index)
    return basis.loc[:, basis.nunique() > 1]


def has_replicates(settings: pd.DataFrame) -> bool:
    """Whether at least half the trials share their ``setting_id`` with another trial."""
    if SETTING_ID not in settings.columns:
        return False
    ids = settings[SETTING_ID]
    return bool((ids.map(ids.value_counts()) >= 2).mean() >= 0.5)


def settings_strata(
    settings: pd.DataFrame, basis: pd.DataFrame, accuracy: np.ndarray
) -> tuple[np.ndarray, str]:
    """Codes ``[n]`` of the strata of similar settings, and how they were made.

    With replicates (:func:`has_replicates`) the setting ids: trials of one stratum trained
    identical settings and differ only by their seed, so comparing them is exact. Otherwise
    the leaves of a regression tree (scikit-learn, ``min_samples_leaf`` :data:`MIN_LEAF`)
    of ``accuracy`` (its ranks) on the basis: bins of the settings, cut finely where the
    accuracy changes with them (a threshold of the learning rate, an optimizer that wants
    another rate) and not at all along settings that do not move it. Bins of equal width
    along every setting cannot be that fine once a zoo varies several settings."""
    if has_replicates(settings):
        return pd.factorize(settings[SETTING_ID], sort=True)[0], "one setting_id each (replicates)"
    if basis.shape[1] == 0:
        return np.zeros(len(basis), dtype=np.int64), "one stratum"
    tree = DecisionTreeRegressor(min_samples_leaf=MIN_LEAF, random_state=0)
    leaves = tree.fit(basis.to_numpy(), accuracy).apply(basis.to_numpy())
    return pd.factorize(leaves, sort=True)[0], "leaves of a tree of accuracy on the settings"


def residualise(
    design: np.ndarray, values: np.ndarray, strata: np.ndarray
) -> tuple[np.ndarray, int]:
    """Residuals of ``values [n, k]`` after least squares on ``design [n, p]`` plus one
    intercept per stratum (``strata [n]``, dense codes), and the number of fitted columns.

    Computed as the theorem of Frisch, Waugh and Lovell has it: values and design centred
    inside each stratum, then one fit without intercept (scikit-learn ``LinearRegression``),
    the same residuals as a fit with an indicator per stratum without their n x strata
    matrix. A design column constant inside every stratum centres to zero and drops out."""
    values, design = _centred(values, strata), _centred(design, strata)
    design = design[:, np.abs(design).max(axis=0, initial=0) > CONSTANT_TOLERANCE]
    n_strata = int(strata.max()) + 1
    if design.shape[1] == 0:
        return values, n_strata
    fit = LinearRegression(fit_intercept=False).fit(design, values)
    return values - fit.predict(design), n_strata + int(fit.rank_)


def _centred(a: np.ndarray, strata: np.ndarray) -> np.ndarray:
    """``a [n, k]`` minus its mean inside each stratum."""
    sums = np.zeros((int(strata.max()) + 1, a.shape[1]))
    np.add.at(sums, strata, a)
    return a - (sums / np.bincount(strata)[:, None])[strata]


def stratified_permutations(codes: np.ndarray, n_perm: int, seed: int):
    """Batches ``[P, n]`` of positions: each row a uniform random permutation of
    ``range(n)`` that moves positions only inside their stratum (``codes [n]``, integers).
    Drawn from ``seed`` and the strata, so every statistic of the same trials gets the
    same permutations."""
    codes = np.ascontiguousarray(codes, dtype=np.int64)
    rng = np.random.default_rng([seed, zlib.crc32(codes.tobytes())])
    grouped = np.argsort(codes, kind="stable")  # positions, stratum by stratum
    for size in stats.perm_batches(n_perm, len(codes)):
        keys = codes[grouped][None, :] + rng.random((size, len(codes)))  # [P, n]
        order = np.argsort(keys, axis=1)  # [P, n] shuffles each stratum's block in place
        perm = np.empty((size, len(codes)), dtype=np.intp)
        perm[:, grouped] = grouped[order]
        yield perm


def _architecture(x: np.ndarray, accuracy: np.ndarray, settings: pd.DataFrame) -> dict | None:
    """One architecture's trials that take part (not alone in their stratum): the ranks of
    their residuals ``[m, 2]`` (statistic, accuracy), their strata ``[m]`` (dense codes),
    the basis' width and how the strata were made. None when fewer than
    :data:`MIN_RESIDUAL_DF` trials are left beyond the fitted columns."""
    basis = settings_basis(settings)
    strata, how = settings_strata(settings, basis, sps.rankdata(accuracy))
    keep = np.bincount(strata)[strata] >= 2  # a trial alone has nothing to be compared with
    if keep.sum() <= MIN_RESIDUAL_DF:
        return None
    strata = pd.factorize(strata[keep], sort=True)[0]
    ranks = np.column_stack([sps.rankdata(x[keep]), sps.rankdata(accuracy[keep])])  # [m, 2]
    basis = basis[keep]
    residuals, fitted = residualise(basis.to_numpy(dtype=float), ranks, strata)
    if len(strata) - fitted < MIN_RESIDUAL_DF:
        return None
    return {
        "ranks": sps.rankdata(np.round(residuals, RESIDUAL_DECIMALS), axis=0),
        "strata": strata,
        "basis_columns": basis.shape[1],
        "how": how,
        "settings": _hp_columns(settings),
    }


def controlled_correlation_test(
    x: np.ndarray,
    accuracy: np.ndarray,
    arch_codes: np.ndarray,
    settings_df: pd.DataFrame,
    settings: ClaimSettings,
    rng: np.random.Generator,
) -> Outcome:
    """Spearman rho of the residuals of ``x`` and ``accuracy`` after the training settings
    (``settings_df``: one row per trial, :func:`settings_frame`) and their strata, per
    architecture (``arch_codes``), averaged with weights n; p-value from the statistic's
    residuals permuted inside the strata, CI from the residual pairs resampled inside each
    architecture. Trials with a NaN value or setting are dropped."""
    x = np.asarray(x, dtype=float)
    accuracy = np.asarray(accuracy, dtype=float)
    ok = np.isfinite(x) & np.isfinite(accuracy)
    x, accuracy, arch_codes = x[ok], accuracy[ok], np.asarray(arch_codes)[ok]
    settings_df = settings_df[ok]
    archs, left_out = [], 0
    for code in np.unique(arch_codes):
        rows = np.flatnonzero(arch_codes == code)
        arch_settings, complete = _architecture_settings(settings_df.iloc[rows])
        rows = rows[complete]
        arch = _architecture(x[rows], accuracy[rows], arch_settings[complete])
        if arch is None:
            left_out += 1
        else:
            archs.append(arch)
    n = int(sum(len(a["strata"]) for a in archs))
    note = _untestable(archs, n, left_out, settings)
    if note:
        return Outcome(n=n, n_strata=len(archs), note=note)
    bounds = np.cumsum([0] + [len(a["strata"]) for a in archs])
    cells = [np.arange(lo, hi) for lo, hi in zip(bounds[:-1], bounds[1:], strict=True)]
    rx = np.concatenate([a["ranks"][:, 0] for a in archs])
    ry = np.concatenate([a["ranks"][:, 1] for a in archs])
    offsets = np.cumsum([0] + [_n_strata([a]) for a in archs])[:-1]
    strata = np.concatenate([a["strata"] + o for a, o in zip(archs, offsets, strict=True)])
    weights = np.array([len(c) for c in cells], dtype=float)

    def combined(rx_rows):  # [P, n] residual ranks of the statistic -> [P]
        return stats.combine([stats.pearson_rows(rx_rows[:, c], ry[c]) for c in cells], weights)

    observed = combined(rx[None])[0]
    permutations = stratified_permutations(strata, settings.permutations, settings.seed)
    null = np.concatenate([combined(rx[p]) for p in permutations])
    ci = stats.combined_spearman_ci(rx, ry, cells, weights, settings.bootstrap, rng)
    out = finish(
        stats.Strata(tuple(cells), tuple(np.empty(0, int) for _ in cells)),
        observed, null, ci, settings, note=_description(archs, left_out),
    )  # fmt: skip
    out.n = n
    return out


def _description(archs: list[dict], left_out: int) -> str:
    """What a tested row controlled for, in its ``note``."""
    columns = dict.fromkeys(c for a in archs for c in a["settings"])
    names = ", ".join(c.removeprefix(HPARAM_PREFIX) for c in columns) or "nothing (fixed)"
    hows = " / ".join(sorted({a["how"] for a in archs}))
    k = _n_strata(archs)
    note = (
        f"controlled for {names}: basis of {max(a['basis_columns'] for a in archs)} columns, "
        f"compared within {k} {'stratum' if k == 1 else 'strata'} of similar settings: {hows}"
    )
    if left_out:
        note += f"; {left_out} architecture(s) left out: too few trials for the fit"
    return note


def _n_strata(archs: list[dict]) -> int:
    return int(sum(int(a["strata"].max()) + 1 for a in archs))


def _untestable(archs: list[dict], n: int, left_out: int, settings: ClaimSettings) -> str:
    if not archs:
        return (
            f"no architecture has {MIN_RESIDUAL_DF} trials more than the fit of its settings "
            f"has columns ({left_out} architecture(s) too small or without replicates)"
        )
    if n < settings.min_trials:
        return f"too few trials: n={n} (claims.min_trials = {settings.min_trials})"
    return ""
