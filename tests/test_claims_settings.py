"""The claims' settings-controlled scope (weightzoo.analysis.claims.controlled) on synthetic
features tables of zoos that vary their training per trial, with planted effects."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps
from test_claims import FAST, _row, features_table, planted_std, rows

from weightzoo.analysis import stats
from weightzoo.analysis.claims import controlled
from weightzoo.analysis.claims import rows as claim_rows
from weightzoo.analysis.claims.controlled import (
    GROUP_NOT_RUN,
    MIN_LEAF,
    controlled_correlation_test,
    residualise,
    settings_basis,
    settings_frame,
    settings_strata,
    stratified_permutations,
)
from weightzoo.analysis.claims.definitions import SETTINGS_SCOPE
from weightzoo.analysis.claims.table import claims_markdown, test_claims

OPTIMIZERS = ("adam", "rmsprop", "sgd_momentum")


def settings_zoo(
    seed: int,
    weight_effect: float,
    n: int = 90,
    archs: int = 2,
    replicates: int = 1,
    permute: bool = False,
    lr_threshold: float = 0.0,
) -> pd.DataFrame:
    """A one-layer features table whose trials sample lr (log-uniform over 3 decades),
    weight_decay (30 % exact zeros) and the optimizer, ``replicates`` trials per setting.

    The settings drive both the accuracy and the weight std: a higher lr, Adam and weight
    decay give a higher accuracy and a lower std. ``weight_effect``: a component of the std
    of its own (a trial's seed) that lowers the accuracy by that many points per standard
    deviation, independent of the settings. ``permute``: the accuracies (and groups)
    shuffled over trials. ``lr_threshold``: above lr = 10^-1.5 training breaks down (the
    accuracy falls by that many points, the std grows), which no smooth basis fits."""
    rng = np.random.default_rng(seed)
    trials = []
    for arch_index in range(archs):
        for setting in range(n // replicates):
            lr = 10 ** rng.uniform(-4, -1)
            weight_decay = 0.0 if rng.random() < 0.3 else 10 ** rng.uniform(-6, -3)
            optimizer = str(rng.choice(OPTIMIZERS))
            for replicate in range(replicates):
                t = np.log10(lr) + 4  # 0 .. 3
                broken = t > 2.5
                own = rng.normal()
                accuracy = (
                    40 + 12 * t + 8 * (optimizer == "adam") + 3 * (weight_decay > 0)
                    - lr_threshold * broken - weight_effect * own + rng.normal(0, 3)
                )  # fmt: skip
                log_std = (
                    -0.5 * t - 0.3 * (optimizer == "adam") - 0.2 * (weight_decay > 0)
                    + lr_threshold / 30 * broken + 0.3 * own
                )  # fmt: skip
                trials.append(
                    {"arch_index": arch_index, "trial_id": setting * replicates + replicate,
                     "setting_id": setting, "hp_lr": lr, "hp_weight_decay": weight_decay,
                     "hp_optimizer": optimizer, "acc": accuracy, "std": 0.2 * np.exp(log_std)}
                )  # fmt: skip
    trials = pd.DataFrame(trials)
    if permute:
        trials["acc"] = rng.permutation(trials["acc"].to_numpy())
    share = trials["acc"].rank(pct=True)
    trials["group"] = np.select([share > 0.6, share > 0.3], ["high", "mid"], "low")
    out = []
    for t in trials.itertuples():
        row = _row("dnn_hp", "dnn", t.arch_index, t.trial_id, t.group, "FC1", 0, "final",
                   t.std, t.acc, rng)  # fmt: skip
        row.update(setting_id=t.setting_id, hp_lr=t.hp_lr, hp_weight_decay=t.hp_weight_decay,
                   hp_optimizer=t.hp_optimizer)  # fmt: skip
        out.append(row)
    return pd.DataFrame(out)


def verdict(table, claim, scope, test="accuracy") -> str:
    (value,) = rows(table, claim, scope, test=test)["verdict"]
    return value


@pytest.fixture(scope="module")
def settings_only():
    """(a) lr, weight decay and optimizer drive accuracy and std; no weight effect beyond."""
    return test_claims(settings_zoo(1, weight_effect=0.0), FAST)


@pytest.fixture(scope="module")
def weight_effect():
    """(b) the std has a component of its own that drives the accuracy."""
    return test_claims(settings_zoo(1, weight_effect=3.0), FAST)


def test_settings_only_effect_is_found_within_but_not_with_settings_controlled(settings_only):
    claims = settings_only
    for scope in ("pooled", "within"):  # what the scopes without the settings see
        assert verdict(claims, "1", scope) == "supported"
        assert verdict(claims, "5b", scope) == "contradicted"  # strength follows the std
    controlled_rows = claims[(claims["scope"] == SETTINGS_SCOPE) & (claims["test"] == "accuracy")]
    assert set(controlled_rows["verdict"]) == {"inconclusive"}
    claim1 = rows(claims, "1", SETTINGS_SCOPE, test="accuracy").iloc[0]
    assert abs(claim1["estimate"]) < 0.15 and claim1["p_value"] > 0.2
    assert claim1["ci_low"] < 0 < claim1["ci_high"]
    assert claim1["note"].startswith("controlled for lr, weight_decay, optimizer")


def test_weight_effect_beyond_the_settings_is_supported_with_settings_controlled(weight_effect):
    claims = weight_effect
    claim1 = rows(claims, "1", SETTINGS_SCOPE, test="accuracy").iloc[0]
    assert claim1["verdict"] == "supported"
    assert claim1["estimate"] < -0.5 and claim1["ci_high"] < 0
    assert claim1["n"] == 180 and claim1["n_strata"] == 2  # two architectures
    assert verdict(claims, "5b", SETTINGS_SCOPE) == "contradicted"
    assert verdict(claims, "4a", SETTINGS_SCOPE) == "inconclusive"  # nothing planted there


def test_permuted_accuracy_finds_nothing():
    claims = test_claims(settings_zoo(1, weight_effect=3.0, permute=True), FAST)
    accuracy = claims[(claims["test"] == "accuracy") & ~claims["scope"].str.startswith("arch=")]
    assert set(accuracy["verdict"]) == {"inconclusive"}
    controlled_rows = accuracy[accuracy["scope"] == SETTINGS_SCOPE].dropna(subset="p_value")
    assert len(controlled_rows) == 4  # w_std, kurtosis, mass near 0, strength (no ww_alpha)
    assert (controlled_rows["p_value"] > 0.05).all()


def test_replicates_compare_trials_of_one_setting():
    found = test_claims(settings_zoo(2, weight_effect=3.0, replicates=3), FAST)
    claim1 = rows(found, "1", SETTINGS_SCOPE, test="accuracy").iloc[0]
    assert claim1["verdict"] == "supported"
    assert "60 strata of similar settings: one setting_id each (replicates)" in claim1["note"]
    none = test_claims(settings_zoo(2, weight_effect=0.0, replicates=3), FAST)
    assert verdict(none, "1", "within") == "supported"
    assert verdict(none, "1", SETTINGS_SCOPE) == "inconclusive"


def test_a_learning_rate_threshold_is_not_taken_for_a_weight_effect():
    """Training that breaks down above some lr moves accuracy and std together in a way the
    basis cannot fit; the strata (tree leaves cut at the threshold) keep it out."""
    claims = test_claims(settings_zoo(3, weight_effect=0.0, n=150, lr_threshold=40), FAST)
    assert verdict(claims, "1", "within") == "supported"
    assert verdict(claims, "1", SETTINGS_SCOPE) == "inconclusive"


def test_an_architecture_that_varies_nothing_takes_part_as_it_is():
    """Settings vary in architecture 0 only; architecture 1 leaves its hp_ columns empty:
    there is nothing to control, its trials are compared as they are (one stratum)."""
    table = settings_zoo(1, weight_effect=3.0)
    fixed = table["arch_index"] == 1
    table.loc[fixed, ["hp_lr", "hp_weight_decay", "setting_id"]] = np.nan
    table.loc[fixed, "hp_optimizer"] = ""
    claims = test_claims(table, FAST)
    claim1 = rows(claims, "1", SETTINGS_SCOPE, test="accuracy").iloc[0]
    assert claim1["n"] == 180 and claim1["n_strata"] == 2
    assert claim1["verdict"] == "supported"
    assert claim1["note"].startswith("controlled for lr, weight_decay, optimizer")
    assert "leaves of a tree of accuracy on the settings / one stratum" in claim1["note"]


def test_group_contrasts_say_why_they_are_not_run(weight_effect):
    claims = weight_effect
    controlled_rows = claims[claims["scope"] == SETTINGS_SCOPE]
    groups = controlled_rows[controlled_rows["test"] != "accuracy"]
    # one layer: claims 1, 2, 4a, 4b, 5b, 6, 8a and claim 3; no layer pairs (5a); 7 and 8b
    # compare no groups inside architectures
    assert sorted(groups["claim"]) == ["1", "2", "3", "4a", "4b", "5b", "6", "8a"]
    assert set(groups["note"]) == {GROUP_NOT_RUN}
    assert groups["p_value"].isna().all() and set(groups["verdict"]) == {"inconclusive"}
    md = claims_markdown(claims, FAST)
    assert f"a third verdict, {SETTINGS_SCOPE}" in md
    assert "| 1: rank correlation of std with accuracy | yes / yes / yes |" in md
    assert "| 1: high nets have a lower weight std than low/mid nets | yes / yes / n/a |" in md


def test_summary_figure_draws_the_third_scope(weight_effect, tmp_path):
    from weightzoo.figures.claims import draw_table

    draw_table(weight_effect, tmp_path / "claims.pdf", tmp_path / "claims.png")
    assert (tmp_path / "claims.png").read_bytes()[:4] == b"\x89PNG"


# ------------------------------------------------------------ fixed settings: unchanged


def test_fixed_settings_tables_never_enter_the_controlled_scope(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("the settings-controlled test ran on a table without hp_ columns")

    monkeypatch.setattr(claim_rows, "controlled_correlation_test", refuse)
    rng = np.random.default_rng(1)
    table = features_table([{"high": 30, "low": 15, "mid": 15}] * 2, planted_std, rng)
    claims = test_claims(table, FAST)
    assert SETTINGS_SCOPE not in set(claims["scope"])
    assert SETTINGS_SCOPE not in claims_markdown(claims, FAST)


def test_an_experiment_with_fixed_settings_keeps_its_rows_next_to_one_that_varies():
    """A run's features tables are concatenated: the varied experiment's hp_ columns are
    NaN in the other one, which must not count as settings."""
    rng = np.random.default_rng(4)
    fixed = features_table(
        [{"high": 30, "low": 15, "mid": 15}] * 2, planted_std, rng, layers=("FC1", "FC2")
    )
    alone = test_claims(fixed, FAST)
    both = test_claims(pd.concat([fixed, settings_zoo(1, 3.0)], ignore_index=True), FAST)
    again = both[both["experiment"] == "dnn_synth"].reset_index(drop=True)
    assert SETTINGS_SCOPE not in set(again["scope"])
    same = [c for c in alone.columns if c not in ("q_value", "verdict")]  # BH spans the run
    pd.testing.assert_frame_equal(again[same], alone[same])


# ------------------------------------------------------------------------ the pieces


def test_settings_basis_columns():
    settings = pd.DataFrame(
        {
            "hp_lr": [1e-4, 1e-3, 1e-2, 1e-1],
            "hp_weight_decay": [1e-5, 0.0, 0.0, 1e-3],
            "hp_dropout": [0.1, 0.1, 0.1, 0.1],  # no spread: no column
            "hp_optimizer": ["sgd_momentum", "adam", "adam", "rmsprop"],
        }
    )
    basis = settings_basis(settings)
    assert list(basis.columns) == [
        "log10 lr", "(log10 lr)^2", "weight_decay = 0", "log10 weight_decay",
        "(log10 weight_decay)^2", "optimizer=rmsprop", "optimizer=sgd_momentum",
        "optimizer=rmsprop * log10 lr", "optimizer=rmsprop * log10 weight_decay",
        "optimizer=sgd_momentum * log10 lr", "optimizer=sgd_momentum * log10 weight_decay",
    ]  # fmt: skip
    z = basis["log10 lr"].to_numpy()
    assert z == pytest.approx(sps.zscore([-4, -3, -2, -1]))  # log10, standardised
    assert list(basis["weight_decay = 0"]) == [0, 1, 1, 0]
    # the zeros sit at the mean log of the others (-4): their level is the indicator's
    wd = basis["log10 weight_decay"].to_numpy()
    assert wd[1] == pytest.approx(wd[2]) and wd[1] == pytest.approx(wd[[0, 3]].mean())
    assert np.isfinite(basis.to_numpy()).all()
    with pytest.raises(ValueError, match="hp_lr"):
        settings_basis(settings.assign(hp_lr=[-1e-3, 1e-3, 1e-2, 1e-1]))


def test_residuals_are_those_of_ols_with_an_intercept_per_stratum():
    import statsmodels.api as sm

    rng = np.random.default_rng(8)
    design = rng.normal(size=(60, 4))
    design[:, 3] = np.repeat(rng.normal(size=12), 5)  # constant inside each stratum
    strata = np.repeat(np.arange(12), 5)
    values = design @ rng.normal(size=(4, 2)) + rng.normal(size=(60, 2))
    residuals, fitted = residualise(design, values, strata)
    dummies = pd.get_dummies(strata, dtype=float).to_numpy()  # [60, 12]
    for k in range(2):  # column 3 lies in the dummies' span: left out of the OLS
        ols = sm.OLS(values[:, k], np.hstack([dummies, design[:, :3]])).fit()
        assert residuals[:, k] == pytest.approx(ols.resid, abs=1e-9)
    assert fitted == 12 + 3  # the stratum-constant column adds nothing


def test_settings_frame_ignores_other_experiments_settings():
    table = pd.DataFrame({"w_std": [1.0, 2.0], "hp_lr": [np.nan, np.nan], "setting_id": [0, 1]})
    assert settings_frame(table) is None
    assert settings_frame(table.drop(columns="hp_lr")) is None
    table["hp_optimizer"] = ["adam", "sgd_momentum"]
    assert list(settings_frame(table).columns) == ["hp_optimizer", "setting_id"]


def test_strata_are_setting_ids_with_replicates_else_tree_leaves():
    rng = np.random.default_rng(5)
    lr = 10 ** rng.uniform(-4, -1, 120)
    settings = pd.DataFrame({"hp_lr": np.repeat(lr[:40], 3), "setting_id": np.repeat(range(40), 3)})
    codes, how = settings_strata(settings, settings_basis(settings), rng.normal(size=120))
    assert how == "one setting_id each (replicates)"
    assert list(codes) == list(settings["setting_id"])
    # no replicates: leaves of a tree of the accuracy, cut where the accuracy steps
    settings = pd.DataFrame({"hp_lr": lr, "setting_id": np.arange(120)})
    accuracy = np.where(lr > 10**-1.5, 10.0, 90.0) + rng.normal(0, 1, 120)
    codes, how = settings_strata(settings, settings_basis(settings), accuracy)
    assert how.startswith("leaves of a tree")
    assert np.bincount(codes).min() >= MIN_LEAF
    for code in np.unique(codes):
        assert len(set(lr[codes == code] > 10**-1.5)) == 1  # no leaf straddles the step


def test_stratified_permutations_stay_inside_strata():
    codes = np.array([2, 0, 1, 0, 2, 2, 1, 0, 0])
    batches = list(stratified_permutations(codes, 500, seed=0))
    perm = np.concatenate(batches)
    assert perm.shape == (500, 9)
    assert (np.sort(perm, axis=1) == np.arange(9)).all()  # each row a permutation
    assert (codes[perm] == codes).all()  # every position keeps its stratum
    assert len({tuple(p) for p in perm}) > 100  # 4! * 2! * 3! = 288 possible
    again = np.concatenate(list(stratified_permutations(codes, 500, seed=0)))
    assert (again == perm).all()


def test_one_stratum_pvalue_agrees_with_scipy_permutation_test():
    """Settings without spread leave one stratum: the test is Spearman's rho of statistic
    and accuracy with scipy's permutation p-value."""
    rng = np.random.default_rng(6)
    x = rng.normal(size=40)
    accuracy = 0.4 * x + rng.normal(size=40)
    settings = pd.DataFrame({"hp_lr": np.full(40, 1e-3)})
    out = controlled_correlation_test(
        x, accuracy, np.zeros(40), settings, replace(FAST, permutations=20000),
        np.random.default_rng(0),
    )  # fmt: skip
    theirs = sps.permutation_test(
        (x,),
        lambda a, axis: stats.spearman_rows(a, accuracy),
        permutation_type="pairings",
        vectorized=True,
        n_resamples=20000,
        rng=np.random.default_rng(2),
    )
    assert out.estimate == pytest.approx(sps.spearmanr(x, accuracy).statistic)
    assert out.p_value == pytest.approx(theirs.pvalue, abs=0.01)
    assert "1 stratum of similar settings: one stratum" in out.note


def test_too_few_trials_for_the_fit_is_untestable_not_a_crash():
    table = settings_zoo(7, weight_effect=3.0, n=9, archs=2)
    out = controlled_correlation_test(
        table["w_std"].to_numpy(),
        table["final_test_acc"].to_numpy(),
        table["arch_index"].to_numpy(),
        settings_frame(table),
        FAST,
        np.random.default_rng(0),
    )
    assert not out.tested and np.isnan(out.p_value)
    assert out.note.startswith("no architecture has 3 trials more than the fit")
    claims = test_claims(table, FAST)
    assert verdict(claims, "1", SETTINGS_SCOPE) == "inconclusive"
    assert controlled.MIN_RESIDUAL_DF == 3
