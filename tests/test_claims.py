"""The claims tests (weightzoo.analysis.claims) on synthetic features tables with known answers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from weightzoo.analysis import stats
from weightzoo.analysis.claims.definitions import COLUMNS
from weightzoo.analysis.claims.files import read_claims
from weightzoo.analysis.claims.settings import ClaimSettings
from weightzoo.analysis.claims.table import claims_markdown, test_claims, write_claims

FAST = ClaimSettings(min_trials=10, permutations=999, bootstrap=199, alpha=0.05, seed=0)
LAYERS = ("FC1", "FC2", "FC3")
FAN_IN = {"FC1": 64, "FC2": 32, "FC3": 32}


def features_table(
    arch_groups: list[dict[str, int]],
    std_of,
    rng: np.random.Generator,
    experiment: str = "dnn_synth",
    model: str = "dnn",
    layers=LAYERS,
    accuracy_of=None,
) -> pd.DataFrame:
    """A features table in the agreed long format (final and initial rows).

    ``arch_groups``: per architecture, trials per group; ``std_of(arch_index, group, layer,
    rng)``: a trial's weight std of that layer; the other weight statistics follow from it
    (a normal distribution) with small noise. ``accuracy_of(arch_index, group, rng)``: the
    trial's accuracy (default: a value inside the group's band). Trial ids restart in each
    architecture, as in a zoo."""
    bands = {"non": (10, 10), "low": (30, 60), "mid": (60, 85), "high": (90, 100)}
    rows = []
    for arch_index, counts in enumerate(arch_groups):
        trial_id = 0  # as in a zoo: trial ids count per architecture
        for group, count in counts.items():
            for _ in range(count):
                acc = (
                    accuracy_of(arch_index, group, rng)
                    if accuracy_of
                    else rng.uniform(*bands.get(group, (85, 90)))
                )
                for layer_index, layer in enumerate(layers):
                    for state in ("final", "initial"):
                        std = std_of(arch_index, group, layer, rng) if state == "final" else 0.1
                        rows.append(
                            _row(experiment, model, arch_index, trial_id, group, layer,
                                 layer_index, state, std, acc, rng)
                        )  # fmt: skip
                trial_id += 1
    return pd.DataFrame(rows)


def _row(experiment, model, arch_index, trial_id, group, layer, layer_index, state, std, acc, rng):
    noise = rng.normal(0, 0.01, size=8)
    q = std * np.array([-3.0, -0.674, 0.0, 0.674, 3.0]) + noise[:5] * std
    return {
        "experiment": experiment,
        "model": model,
        "dataset": "synth",
        "arch": f"{model}_{arch_index}",
        "arch_index": arch_index,
        "trial_id": trial_id,
        "seed": trial_id,
        "group": group,
        "grouped_by": "test",
        "group_rule": "bands",
        "final_train_acc": acc,
        "final_test_acc": acc,
        "max_train_acc": acc,
        "max_test_acc": acc,
        "layer": layer,
        "layer_index": layer_index,
        "state": state,
        "nonfinite": False,
        "w_mean": noise[5] * std,
        "w_std": std,
        **{f"w_q{k}": v for k, v in zip((0, 25, 50, 75, 100), q, strict=True)},
        "w_abs_mean": 0.798 * std * (1 + noise[6]),
        "w_kurtosis": noise[7] * 10,
        "w_frac_near_zero": 0.08 + noise[6],
        "strength_mean": FAN_IN[layer] * 0.798 * std * (1 + noise[7]),
        "strength_std": std * (1 + noise[5]),
    }


def rows(table, claim, scope, layer=None, test="group"):
    sel = (table["claim"] == claim) & (table["scope"] == scope) & (table["test"] == test)
    if layer is not None:
        sel &= table["layer"] == layer
    return table[sel]


def verdicts(table, claim, scope, test="group"):
    return set(rows(table, claim, scope, test=test)["verdict"])


def planted_std(arch_index, group, layer, rng):
    """High trials have a lower std in every architecture (and a tight spread)."""
    base = 0.2 + 0.05 * arch_index
    return (
        base
        * (0.5 if group == "high" else 1.0)
        * rng.lognormal(0, 0.05 if group == "high" else 0.3)
    )


def no_effect_std(arch_index, group, layer, rng):
    return 0.2 * rng.lognormal(0, 0.2)


def width_std(arch_index, group, layer, rng):
    """The architecture alone decides the std; the group has no effect within it."""
    return (0.1 if arch_index == 0 else 0.2) * rng.lognormal(0, 0.1)


@pytest.fixture(scope="module")
def planted():
    rng = np.random.default_rng(1)
    table = features_table([{"high": 30, "low": 15, "mid": 15}] * 2, planted_std, rng)
    return table, test_claims(table, FAST)


def test_table_has_the_documented_columns_and_one_row_per_test(planted):
    _, claims = planted
    assert tuple(claims.columns) == COLUMNS
    # per layer: 7 group claims (1, 2, 4a, 4b, 5b, 6, 8a) x 2 scopes, 5 correlated statistics
    # x (pooled, within, 2 archs), claim 8b pooled; claim 3 x 2 scopes; claim 5a: 2 layer
    # pairs x 2 scopes; claim 7 x 2 scopes. (No ww_alpha and no layer dynamics in this
    # table: the 7, 8a and 8b rows are untested.)
    assert len(claims) == 3 * (7 * 2 + 5 * 4 + 1) + 2 + 2 * 2 + 2
    assert (claims.loc[claims["claim"].isin(["7", "8a", "8b"]), "verdict"] == "inconclusive").all()
    assert set(claims["verdict"]) <= {"supported", "contradicted", "inconclusive"}
    tested = claims["p_value"].notna()
    assert (claims.loc[tested, "q_value"] >= claims.loc[tested, "p_value"] - 1e-12).all()


def test_planted_group_difference_is_supported_pooled_and_within(planted):
    _, claims = planted
    for scope in ("pooled", "within"):
        claim1 = rows(claims, "1", scope)
        assert set(claim1["verdict"]) == {"supported"}, claim1
        assert (claim1["estimate"] < -0.9).all()  # Cliff's delta: nearly every high < low/mid
        assert (claim1["value_high"] < claim1["value_rest"]).all()
        assert verdicts(claims, "2", scope) == {"supported"}  # tight high group
        assert verdicts(claims, "6", scope) == {"supported"}  # separated in descriptor space
        assert verdicts(claims, "1", scope, test="accuracy") == {"supported"}
    # no effect was planted on kurtosis or near-zero mass
    assert verdicts(claims, "4a", "pooled") == {"inconclusive"}


def test_permuted_labels_give_inconclusive():
    rng = np.random.default_rng(2)
    table = features_table([{"high": 30, "low": 15, "mid": 15}] * 2, no_effect_std, rng)
    claims = test_claims(table, FAST)
    group = claims[claims["claim"].isin(["1", "2", "6"]) & (claims["test"] == "group")]
    assert set(group["verdict"]) == {"inconclusive"}
    assert (group["p_value"] > 0.01).all()


def test_width_confounded_zoo_is_supported_pooled_but_not_within():
    rng = np.random.default_rng(3)
    # the wide net (arch 0) is mostly high, the narrow one mostly low/mid; std follows width
    table = features_table(
        [{"high": 36, "low": 4}, {"high": 4, "low": 20, "mid": 16}], width_std, rng
    )
    claims = test_claims(table, FAST)
    assert verdicts(claims, "1", "pooled") == {"supported"}
    assert verdicts(claims, "1", "within") == {"inconclusive"}
    within = rows(claims, "1", "within")
    assert (within["n_strata"] == 2).all()
    assert (rows(claims, "1", "pooled")["estimate"] < -0.6).all()
    assert (within["estimate"].abs() < 0.5).all()
    # the accuracy correlation: strong pooled, none inside an architecture
    assert verdicts(claims, "1", "pooled", test="accuracy") == {"supported"}
    assert "supported" not in verdicts(claims, "1", "within", test="accuracy")


def test_tiny_groups_are_inconclusive_not_a_crash():
    rng = np.random.default_rng(4)
    table = features_table([{"high": 3, "low": 20, "mid": 2}], planted_std, rng)
    claims = test_claims(table, FAST)
    # claim 7 compares layers, not groups (and this table has no layer dynamics)
    group = claims[(claims["test"] != "accuracy") & (claims["claim"] != "7")]
    assert set(group["verdict"]) == {"inconclusive"}
    assert group["p_value"].isna().all()
    assert group["note"].str.contains("too few trials|no architecture").all()
    # a zoo without a single high trial, and one with no trial in high, low or mid
    table = features_table([{"low": 20, "mid": 20}], planted_std, rng)
    assert set(test_claims(table, FAST)["verdict"]) == {"inconclusive"}
    table = features_table([{"between": 6, "non": 2}] * 2, planted_std, rng)
    claims = test_claims(table, FAST)
    assert set(claims["verdict"]) == {"inconclusive"}
    assert set(claims["claim"]) == {"1", "2", "3", "4a", "4b", "5a", "5b", "6", "7", "8a", "8b"}


def test_nan_and_nonfinite_rows_are_ignored(planted):
    table, claims = planted
    rng = np.random.default_rng(5)
    extra = features_table([{"high": 5, "low": 5}] * 2, planted_std, rng)
    extra["trial_id"] += 10_000
    extra.loc[extra["trial_id"] % 2 == 0, "nonfinite"] = True
    extra.loc[extra["trial_id"] % 2 == 0, ["w_std", "w_q100"]] = 1e30
    extra.loc[extra["trial_id"] % 2 == 1, list(extra.columns[18:])] = np.nan  # all features
    again = test_claims(pd.concat([table, extra], ignore_index=True), FAST)
    pd.testing.assert_frame_equal(again, claims)


def test_final_layer_gap():
    rng = np.random.default_rng(6)

    def std(arch_index, group, layer, rng):  # the gap exists only in the final layer
        factor = 0.5 if (group == "high" and layer == "FC3") else 1.0
        return 0.2 * factor * rng.lognormal(0, 0.1)

    claims = test_claims(features_table([{"high": 30, "low": 30}] * 2, std, rng), FAST)
    assert verdicts(claims, "3", "pooled", test="layers") == {"supported"}
    assert verdicts(claims, "3", "within", test="layers") == {"supported"}

    # and one where the gap is in the first layer: claim 3 contradicted
    def std_first(arch_index, group, layer, rng):
        factor = 0.5 if (group == "high" and layer == "FC1") else 1.0
        return 0.2 * factor * rng.lognormal(0, 0.1)

    claims = test_claims(features_table([{"high": 30, "low": 30}] * 2, std_first, rng), FAST)
    assert verdicts(claims, "3", "pooled", test="layers") == {"contradicted"}


def test_consecutive_strength_correlation():
    rng = np.random.default_rng(7)
    latent = {}

    def std(arch_index, group, layer, rng):  # high trials: one scale shared by all layers
        key = (arch_index, group)
        if layer == "FC1":
            latent[key] = rng.lognormal(0, 0.5)
        own = latent[key] if group == "high" else rng.lognormal(0, 0.5)
        return 0.2 * own

    claims = test_claims(features_table([{"high": 40, "low": 40}], std, rng), FAST)
    claim5a = rows(claims, "5a", "pooled")
    assert list(claim5a["layer"]) == ["FC1-FC2", "FC2-FC3"]
    assert set(claim5a["verdict"]) == {"supported"}
    assert (claim5a["value_high"] > 0.9).all() and (claim5a["value_rest"].abs() < 0.5).all()


def test_vit_expects_lower_strength():
    rng = np.random.default_rng(8)
    table = features_table(
        [{"high": 20, "low": 20}], planted_std, rng, experiment="vit_synth", model="vit"
    )
    claims = test_claims(table, FAST)
    claim5b = rows(claims, "5b", "pooled")
    assert set(claim5b["expected"]) == {"< 0"}
    assert set(claim5b["verdict"]) == {"supported"}  # high has lower std, hence lower strength


def test_missing_column_names_it():
    rng = np.random.default_rng(9)
    table = features_table([{"high": 3, "low": 3}], planted_std, rng).drop(columns="w_kurtosis")
    with pytest.raises(ValueError, match="w_kurtosis"):
        test_claims(table, FAST)


def test_settings_from_config_rejects_unknown_keys():
    assert ClaimSettings.from_config({"permutations": 99}, "train").accuracy == "train"
    with pytest.raises(ValueError, match="permutaions"):
        ClaimSettings.from_config({"permutaions": 99})


def test_outputs_round_trip(planted, tmp_path):
    _, claims = planted
    write_claims(claims, tmp_path / "claims.csv", tmp_path / "claims.md", FAST)
    back = read_claims(tmp_path / "claims.csv")
    assert list(back["verdict"]) == list(claims["verdict"])
    md = (tmp_path / "claims.md").read_text()
    assert "## dnn_synth" in md and "yes / yes" in md
    assert claims_markdown(claims, FAST) == md


# ------------------------------------------------------------------------------ stats


def test_cliffs_delta_known_values():
    assert stats.cliffs_delta(np.array([1.0, 2.0]), np.array([3.0, 4.0])) == -1
    assert stats.cliffs_delta(np.array([3.0, 4.0]), np.array([1.0, 2.0])) == 1
    assert stats.cliffs_delta(np.array([1.0, 3.0]), np.array([2.0, 2.0])) == 0
    a, b = np.random.default_rng(0).normal(size=(2, 30))
    pairs = np.sign(a[:, None] - b[None, :]).mean()
    assert stats.cliffs_delta(a, b) == pytest.approx(pairs)


def test_single_stratum_pvalue_agrees_with_scipy_permutation_test():
    rng = np.random.default_rng(10)
    x = np.concatenate([rng.normal(0, 1, 25), rng.normal(0.5, 1, 25)])
    is_high = np.arange(50) < 25
    strata = stats.make_strata(is_high, np.zeros(50, dtype=int))
    ranks = sps.rankdata(x)

    def effect(s, pos_high, pos_rest):
        return stats.cliffs_delta_from_ranks(ranks[pos_high].sum(-1), 25, 25)

    observed = effect(0, np.flatnonzero(is_high)[None], np.flatnonzero(~is_high)[None])[0]
    ours = stats.permutation_pvalue(observed, stats.stratified_null(strata, effect, 20000, seed=1))
    theirs = sps.permutation_test(
        (x[is_high], x[~is_high]),
        lambda a, b, axis: stats.cliffs_delta(a, b),
        vectorized=True,
        n_resamples=20000,
        rng=np.random.default_rng(2),
    )
    assert observed == pytest.approx(theirs.statistic)
    assert ours == pytest.approx(theirs.pvalue, abs=0.01)


def test_permutations_stay_inside_strata():

    codes = np.repeat([0, 1, 2], [6, 8, 5])
    is_high = np.array([1, 1, 0, 0, 0, 1] + [1, 0] * 4 + [1, 1, 1, 1, 1], dtype=bool)
    strata = stats.make_strata(is_high, codes)
    assert len(strata) == 2  # stratum 2 has no low/mid trial
    seen = []

    def effect(s, pos_high, pos_rest):
        seen.append((s, pos_high, pos_rest))
        return np.zeros(len(pos_high))

    stats.stratified_null(strata, effect, 50, seed=0)
    for s, pos_high, pos_rest in seen:
        members = set(np.flatnonzero(codes == s))
        assert set(pos_high.ravel()) | set(pos_rest.ravel()) <= members
        assert pos_high.shape[1] == is_high[codes == s].sum()


def test_summary_figure_is_drawn(planted, tmp_path):
    from weightzoo.figures.claims import draw, draw_table

    _, claims = planted
    write_claims(claims, tmp_path / "claims.csv", tmp_path / "claims.md", FAST)
    draw(
        {"claims": [str(tmp_path / "claims.csv")]}, tmp_path / "claims.pdf", tmp_path / "claims.png"
    )
    assert (tmp_path / "claims.pdf").stat().st_size > 1000
    assert (tmp_path / "claims.png").read_bytes()[:4] == b"\x89PNG"
    # no rows: no crash
    draw_table(claims.iloc[0:0], tmp_path / "empty.pdf", tmp_path / "empty.png")


@pytest.mark.slow
def test_claims_rules_run_on_the_tiny_config(tmp_path):
    """Rules claims + claims_figure end to end (tiny zoos: every row inconclusive, no crash)."""
    from test_workflow import TINY, copy_repo, snakemake, write_config

    root = copy_repo(tmp_path)
    config = write_config(root, {**TINY, "claims": {"permutations": 199, "bootstrap": 99}})
    snakemake(root, "--configfile=" + str(config), "results/claims/claims.png")
    table = read_claims(root / "results" / "claims" / "claims.csv")
    assert set(table["experiment"]) == {"dnn_digits", "cnn_digits", "vit_digits"}
    assert set(table["verdict"]) == {"inconclusive"}
    assert "## dnn_digits" in (root / "results" / "claims" / "claims.md").read_text()
    assert (root / "results" / "claims" / "claims.pdf").stat().st_size > 1000
    assert "rows from 3 experiments" in (root / "results/logs/claims/claims.log").read_text()


def with_alpha(table, rng, high_alpha, rest_alpha, unreliable=False):
    """``table`` plus WeightWatcher's alpha: high trials around ``high_alpha``, the others
    around ``rest_alpha``; every fit flagged unreliable if asked."""
    high = (table["group"] == "high").to_numpy()
    alpha = np.where(high, high_alpha, rest_alpha) + rng.normal(0, 0.3, len(table))
    return table.assign(ww_alpha=alpha, ww_unreliable=unreliable)


def test_spectral_alpha_lower_and_well_trained_in_high_nets():
    rng = np.random.default_rng(11)
    base = features_table([{"high": 30, "low": 15, "mid": 15}] * 2, no_effect_std, rng)
    claims = test_claims(with_alpha(base, rng, 3.5, 7.0), FAST)
    assert verdicts(claims, "8a", "pooled") == {"supported"}
    assert verdicts(claims, "8a", "within") == {"supported"}
    assert verdicts(claims, "8a", "pooled", test="accuracy") == {"supported"}
    assert verdicts(claims, "8b", "pooled", test="range") == {"supported"}
    assert set(rows(claims, "8b", "pooled", test="range")["note"]) == {
        "60 of 60 high trials have alpha in [2, 6]"
    }
    # high nets' alpha outside 2-6 (over-trained side): 8b contradicted, 8a still holds
    claims = test_claims(with_alpha(base, rng, 1.2, 4.0), FAST)
    assert verdicts(claims, "8b", "pooled", test="range") == {"contradicted"}
    assert verdicts(claims, "8a", "pooled") == {"supported"}


def test_flagged_fits_are_ignored_by_the_spectral_claims():
    rng = np.random.default_rng(12)
    base = features_table([{"high": 30, "low": 15, "mid": 15}] * 2, no_effect_std, rng)
    claims = test_claims(with_alpha(base, rng, 3.5, 7.0, unreliable=True), FAST)
    spectral = claims[claims["claim"].isin(["8a", "8b"])]
    assert (spectral["verdict"] == "inconclusive").all() and spectral["p_value"].isna().all()
    assert spectral["note"].str.contains("too few|no architecture").all()
