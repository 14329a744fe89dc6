"""The rows of one experiment's claims table: which test runs on which trials, layer and
scope, and each row's identity (claim, test, scope, layer, statistic, expected sign)."""

from __future__ import annotations

from dataclasses import asdict

import numpy as np
import pandas as pd

from ..dynamics import trial_layer_trends
from .controlled import GROUP_NOT_RUN, controlled_correlation_test, settings_frame
from .definitions import (
    ALPHA,
    DESCRIPTOR_COLUMNS,
    HIGH,
    LAYER_ORDER,
    NON,
    REST,
    SCOPES,
    SETTINGS_SCOPE,
    STRENGTH,
    TRIAL_KEY,
    UNIVARIATE,
)
from .group_tests import (
    contrast_test,
    correlation_difference_test,
    dispersion_test,
    final_layer_gap_test,
    silhouette_test,
)
from .outcome import Outcome, rng_for
from .settings import ClaimSettings
from .trial_tests import accuracy_correlation_test, layer_order_test, well_trained_test


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
                rng_for(settings, *key, claim, scope),
            )
            rows.append(_row(exp, claim, "group", scope, layer, column, "Cliff's delta", sign, out))
        descriptors = comp[list(DESCRIPTOR_COLUMNS)].to_numpy(dtype=float)
        out = dispersion_test(
            descriptors, is_high, codes, within, settings, rng_for(settings, *key, "2", scope)
        )
        rows.append(
            _row(exp, "2", "group", scope, layer, "distance to group centroid",
                 "Cliff's delta", -1, out)
        )  # fmt: skip
        out = silhouette_test(
            descriptors, is_high, codes, within, settings, rng_for(settings, *key, "6", scope)
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
    trial_settings = settings_frame(use)  # None: the zoo's settings are fixed
    scopes = [
        ("pooled", None),
        ("within", None),
        *([(SETTINGS_SCOPE, None)] if trial_settings is not None else []),
        *((f"arch={a}", i) for i, a in arch_names.items()),
    ]
    rows = []
    statistics = {**UNIVARIATE, "5b": (STRENGTH, -1 if model == "vit" else +1)}
    for scope, arch_index in scopes:  # scope outer: its permutations serve every statistic
        for claim, (column, sign) in statistics.items():
            sel = np.ones(len(use), dtype=bool) if arch_index is None else codes == arch_index
            rng = rng_for(settings, exp["experiment"], layer, claim, "accuracy", scope)
            if scope == SETTINGS_SCOPE:
                out = controlled_correlation_test(
                    use[column].to_numpy(dtype=float), accuracy, codes, trial_settings,
                    settings, rng,
                )  # fmt: skip
            else:
                out = accuracy_correlation_test(
                    use[column].to_numpy(dtype=float)[sel],
                    accuracy[sel],
                    codes[sel],
                    scope == "within",
                    settings,
                    rng,
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
                rng_for(settings, exp["experiment"], a, b, "5a", scope),
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
            rng_for(settings, exp["experiment"], "3", scope),
        )
        others = [c for c in wide.columns if c != "(final)"]
        out.note = out.note or f"final layer {'/'.join(final_labels)} vs {', '.join(others)}"
        rows.append(
            _row(exp, "3", "layers", scope, "final vs others", "w_std",
                 "log-std gap final - max other", +1, out)
        )  # fmt: skip
    return rows


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
    if settings_frame(final) is not None:
        rows += _contrasts_not_run(exp, rows)
    return rows


def _contrasts_not_run(exp: dict, rows: list[dict]) -> list[dict]:
    """Where the settings vary: a row per group contrast (claims 1-6, 8a; claim 7 compares
    layers, not groups) saying why the settings-controlled scope does not test it."""
    out = []
    for r in rows:
        if r["scope"] == "within" and r["test"] != "accuracy" and r["claim"] != "7":
            out.append(
                _row(exp, r["claim"], r["test"], SETTINGS_SCOPE, r["layer"], r["statistic"],
                     r["effect_name"], r["_sign"], Outcome(note=GROUP_NOT_RUN))
            )  # fmt: skip
    return out


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
            out = layer_order_test(used, groups, settings, exp["experiment"], scope)
        rows.append(
            _row(exp, "7", "layers", scope, "all layers", LAYER_ORDER,
                 "mean Kendall tau, layer order vs RWC", +1, out)
        )  # fmt: skip
    return rows
