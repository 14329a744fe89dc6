"""Accuracy predicted from the training settings (the ``hp_`` columns of a zoo whose
settings vary per trial), and what the weights add beyond them, on synthetic features
tables whose answer is known. Tables without ``hp_`` columns keep their old output."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from test_predict import FEATURES, LAYERS, long_table
from threadpoolctl import threadpool_limits

from weightzoo.analysis.predict.accuracy import arch_taus, predict_experiment
from weightzoo.analysis.predict.design import design
from weightzoo.analysis.predict.estimators import PredictSettings, hparam_encoder
from weightzoo.analysis.predict.files import (
    ARCH_COLUMNS,
    FEATURE_SETS,
    HPARAM_SETS,
    INCREMENT,
    OOF_COLUMNS,
    OOF_SEED_COLUMNS,
    RESULT_COLUMNS,
    SEED_COLUMNS,
    read_arch_taus,
    read_oof,
    read_results,
    write_predictions,
)
from weightzoo.analysis.predict.markdown import results_markdown, write_markdown
from weightzoo.analysis.predict.validation import fold_splits, out_of_fold, scores

FIXED = Path(__file__).parent / "fixtures" / "predict_fixed_settings"
QUICK = PredictSettings(hgb_max_iter=15, n_fold_seeds=2)  # where only bookkeeping is tested


def best_lr_curve(lr):
    """Accuracy (percent) of a learning rate: best at 10^-2.5, falling off on both sides."""
    return 90.0 - 12.0 * (np.log10(lr) + 2.5) ** 2


def hp_table(n_settings=50, replicates=3, archs=("cnn_16",), seed=0, weight_effect=0.0):
    """Features table of a zoo that varies its training per trial, with ``replicates``
    trials per sampled setting (``setting_id`` = trial_id // replicates, counted within
    the architecture, as the trainer does).

    Accuracy = :func:`best_lr_curve` of the trial's lr, plus ``weight_effect`` x z, where z
    is a per-trial value (the seed's luck) that no setting explains and FC2's final
    ``w_mean`` shows; FC1's final ``w_std`` follows log10(lr) (the weights carry the
    settings too). Weight decay, optimizer and dropout are drawn but do nothing.
    """
    rng = np.random.default_rng(seed)
    acc, arch, final, settings = [], [], [], []
    for a in archs:
        lr = 10 ** rng.uniform(-4, -1, n_settings)
        zero = rng.uniform(size=n_settings) < 0.25
        weight_decay = np.where(zero, 0.0, 10 ** rng.uniform(-6, -2, n_settings))
        optimizer = rng.choice(["adam", "sgd_momentum", "rmsprop"], n_settings)
        dropout = rng.uniform(0, 0.5, n_settings)
        for t in range(n_settings * replicates):
            s = t // replicates
            z = rng.normal()
            values = rng.normal(size=(len(LAYERS), len(FEATURES)))  # [layer, feature]
            values[0, 1] = np.log10(lr[s]) + rng.normal(0, 0.3)
            values[1, 0] = z
            acc.append(best_lr_curve(lr[s]) + weight_effect * z + rng.normal(0, 0.3))
            arch.append(a)
            final.append(values)
            settings.append(
                {
                    "setting_id": s,
                    "hp_lr": lr[s],
                    "hp_weight_decay": weight_decay[s],
                    "hp_optimizer": str(optimizer[s]),
                    "hp_dropout": dropout[s],
                }
            )
    return with_settings(long_table(np.array(acc), np.array(arch), np.array(final)), settings)


def with_settings(table: pd.DataFrame, settings: list[dict]) -> pd.DataFrame:
    """``table`` with each trial's ``settings`` (in trial order) on all its rows."""
    trials = table.drop_duplicates("trial")[["trial"]].reset_index(drop=True)
    per_trial = pd.concat([trials, pd.DataFrame(settings)], axis=1)
    out = table.merge(per_trial, on="trial", how="left")
    return out.astype({"setting_id": "int64"}) if "setting_id" in out else out


def row(results, features, regressor="hgb", validation="cv5"):
    match = results[
        (results["features"] == features)
        & (results["regressor"] == regressor)
        & (results["validation"] == validation)
    ]
    assert len(match) == 1, (features, regressor, validation)
    return match.iloc[0]


@pytest.fixture(scope="module")
def settings_only():
    """(a) accuracy follows the learning rate alone."""
    return predict_experiment(hp_table())


@pytest.fixture(scope="module")
def weights_matter():
    """(b) accuracy also follows a per-trial weight statistic that no setting explains."""
    return predict_experiment(hp_table(weight_effect=10.0, seed=1))


def test_settings_inputs_and_columns_join_only_where_settings_vary(settings_only):
    results, oof = settings_only
    assert tuple(results.columns) == RESULT_COLUMNS + SEED_COLUMNS
    assert list(dict.fromkeys(results["features"])) == [*FEATURE_SETS, *HPARAM_SETS, INCREMENT]
    ok = results[results["status"] == "ok"]
    assert set(ok["validation"]) == {"cv5"}  # one architecture: nothing to leave out
    assert (ok["n_fold_seeds"] == 3).all() and (ok["fold_groups"] == "setting_id").all()
    assert ok["r2_sd"].notna().all() and (ok["r2_sd"] > 0).all()  # the seeds differ
    assert tuple(oof.columns) == OOF_COLUMNS + OOF_SEED_COLUMNS
    cv = oof[(oof["features"] == "hyperparameters") & (oof["regressor"] == "hgb")]
    assert len(cv) == 3 * 150 and sorted(cv["fold_seed"].unique()) == [0, 1, 2]
    assert row(results, "hyperparameters")["n_features"] == 4  # raw settings, before encoding


def test_a_settings_that_determine_accuracy_leave_the_weights_nothing_to_add(settings_only):
    results, _ = settings_only
    alone = row(results, "hyperparameters")
    assert alone["r2"] > 0.9 and alone["kendall_tau"] > 0.8, alone
    assert row(results, "architecture_hyperparameters")["r2"] > 0.9
    both = row(results, "final_weights_hyperparameters")
    assert both["r2"] > 0.9
    gain = row(results, INCREMENT)
    assert abs(gain["r2"]) < 0.05 and abs(gain["kendall_tau"]) < 0.1, gain
    # the increment is the per-seed difference of the two rows (no trial dropped here)
    assert gain["r2"] == pytest.approx(both["r2"] - alone["r2"])
    assert np.isfinite(gain["r2_sd"]) and np.isnan(gain["kendall_p"])
    assert gain["n_features"] == both["n_features"] - alone["n_features"] == 15


def test_b_a_weight_statistic_beyond_the_settings_shows_as_an_increment(weights_matter):
    results, _ = weights_matter
    alone = row(results, "hyperparameters")
    both = row(results, "final_weights_hyperparameters")
    assert both["r2"] > alone["r2"] + 0.3, (both["r2"], alone["r2"])
    for reg in ("hgb", "ridge"):
        gain = row(results, INCREMENT, reg)
        assert gain["r2"] > 0.2 and gain["r2"] > 5 * gain["r2_sd"], gain
        assert gain["kendall_tau"] > 0.2 and gain["tau_within_arch"] > 0.2


def test_c_replicates_of_a_setting_never_straddle_train_and_test():
    # two architectures whose setting ids overlap: the pair (arch, setting_id) is one setting
    table = hp_table(n_settings=12, replicates=3, archs=("cnn_8", "cnn_16"))
    settings = PredictSettings()
    for feature_set in ("final_weights", "initial_weights", *HPARAM_SETS):
        d = design(table, feature_set)
        pairs = np.array([f"{a}/{s}" for a, s in zip(d.arch, d.trials["setting_id"], strict=True)])
        for seed in settings.fold_seeds(True):
            splits = fold_splits(d, "cv5", settings, seed)
            assert len(splits) == 5
            for train, test in splits:
                assert not set(pairs[train]) & set(pairs[test]), (feature_set, seed)
            tested = np.sort(np.concatenate([test for _, test in splits]))
            np.testing.assert_array_equal(tested, np.arange(len(d.y)))  # each trial once
    # the fold seeds give different folds
    d = design(table, "hyperparameters")
    first, second = (fold_splits(d, "cv5", settings, s)[0][1] for s in (0, 1))
    assert set(first) != set(second)


def test_c_grouped_folds_stop_the_settings_from_looking_up_a_replicate():
    """Accuracy = a level per setting that no setting value explains (plus seed noise):
    held-out settings cannot be predicted, but a replicate in the training fold gives its
    setting's level away when the folds split replicates (the leak the grouping stops)."""
    table = hp_table(n_settings=50, replicates=3)
    level = np.random.default_rng(5).uniform(40, 95, 50)  # [setting]
    table["final_test_acc"] = level[table["setting_id"]] + 0.3 * (table["trial_id"] % 3)
    settings = PredictSettings()
    r2 = {}
    for name, t in (("grouped", table), ("split", table.drop(columns="setting_id"))):
        d = design(t, "hyperparameters")
        with threadpool_limits(settings.threads):  # as predict_experiment runs the trees
            predicted = out_of_fold(d, "hgb", fold_splits(d, "cv5", settings), settings)
        r2[name] = scores(d.y, predicted, d.arch)["r2"]
    assert r2["grouped"] < 0.2, r2
    assert r2["split"] > 0.5, r2  # the leak, had the folds split the replicates


def read_fixed(name: str) -> pd.DataFrame:
    return pd.read_csv(FIXED / name, keep_default_na=False)


def fixed_settings_table():
    """A zoo with fixed settings (no ``hp_`` column): 3 architectures x 8 trials, accuracy
    read from FC2's weight std, one trial with non-finite weights, one without accuracy.
    ``tests/fixtures/predict_fixed_settings/`` holds what the predictor wrote for it before
    the settings inputs existed."""
    rng = np.random.default_rng(11)
    arch = np.repeat(["dnn_4-4", "dnn_8-8", "dnn_16-16"], 8)
    acc = rng.uniform(20, 98, len(arch))
    final = rng.normal(size=(len(arch), len(LAYERS), len(FEATURES)))
    final[:, 1, 1] = 2.0 - acc / 50.0 + rng.normal(0, 0.1, len(arch))
    final[4, 2, :] = np.nan
    acc[10] = np.nan
    return long_table(acc, arch, final, experiment="fixed")


def test_d_a_table_with_fixed_settings_gives_the_output_it_always_gave(tmp_path):
    results, oof = predict_experiment(fixed_settings_table())
    assert tuple(results.columns) == RESULT_COLUMNS and tuple(oof.columns) == OOF_COLUMNS
    assert list(dict.fromkeys(results["features"])) == list(FEATURE_SETS)
    write_predictions(results, oof, tmp_path / "fixed.csv", tmp_path / "fixed.oof.csv")
    write_markdown([results], tmp_path / "predict.md")
    assert (tmp_path / "predict.md").read_text() == (FIXED / "predict.md").read_text()
    for name in ("fixed.csv", "fixed.oof.csv"):
        ours, before = (tmp_path / name).read_text(), (FIXED / name).read_text()
        assert ours.splitlines()[0] == before.splitlines()[0]  # the same columns, in order
        # numbers to the last digits (a BLAS elsewhere may round the ridge differently)
        pd.testing.assert_frame_equal(
            pd.read_csv(tmp_path / name, keep_default_na=False),
            read_fixed(name),
            check_exact=False,
            rtol=1e-9,
        )


def test_encoder_logs_rates_marks_zero_decay_and_one_hots_names():
    x = pd.DataFrame(
        {
            "FC1:w_std": [0.5, 0.6, 0.7],
            "hp_lr": [1e-3, 1e-2, 1e-1],
            "hp_weight_decay": [0.0, 1e-4, 1e-2],
            "hp_optimizer": pd.Series(["adam", "sgd_momentum", "adam"], dtype=object),
            "hp_dropout": [0.0, 0.1, 0.2],
        }
    )
    hp = ("hp_lr", "hp_weight_decay", "hp_optimizer", "hp_dropout")
    encoder = hparam_encoder(x, hp).fit(x)
    out = pd.DataFrame(encoder.transform(x), columns=encoder.get_feature_names_out())
    np.testing.assert_allclose(out["log10__hp_lr"], [-3, -2, -1])
    np.testing.assert_array_equal(out["zero_log10__hp_weight_decay==0"], [1, 0, 0])
    np.testing.assert_allclose(out["zero_log10__log10(hp_weight_decay)"], [np.nan, -4, -2])
    np.testing.assert_array_equal(out["one_hot__hp_optimizer_adam"], [1, 0, 1])
    np.testing.assert_allclose(out["remainder__hp_dropout"], [0.0, 0.1, 0.2])
    np.testing.assert_allclose(out["remainder__FC1:w_std"], [0.5, 0.6, 0.7])
    # an optimizer no training trial used: all zeros, no error
    unseen = x.assign(hp_optimizer=pd.Series(["rmsprop"] * 3, dtype=object))
    one_hot = [c for c in out.columns if c.startswith("one_hot__")]
    assert (pd.DataFrame(encoder.transform(unseen), columns=out.columns)[one_hot] == 0).all().all()


def test_trials_dropped_for_their_weights_refit_the_settings_on_the_same_trials():
    table = hp_table(n_settings=20, replicates=2, weight_effect=10.0, seed=2)
    bad = (table["trial"] == 3) & (table["state"] == "final") & (table["layer"] == "FC3")
    table.loc[bad, "w_mean"] = np.nan
    table.loc[bad, "nonfinite"] = True
    results, _ = predict_experiment(table, QUICK)
    assert row(results, "hyperparameters")["n_used"] == 40  # the settings drop no trial
    both, gain = row(results, "final_weights_hyperparameters"), row(results, INCREMENT)
    assert both["n_used"] == gain["n_used"] == 39 and both["n_dropped"] == 1
    assert gain["status"] == "ok" and np.isfinite(gain["r2"])


def test_an_architecture_that_varies_nothing_has_no_setting_and_is_no_error():
    table = hp_table(n_settings=10, replicates=2, archs=("cnn_8", "cnn_16"))
    fixed = table["arch"] == "cnn_8"
    table["setting_id"] = table["setting_id"].astype("Int64").mask(fixed)
    table.loc[fixed, ["hp_lr", "hp_weight_decay", "hp_dropout"]] = np.nan
    table["hp_optimizer"] = table["hp_optimizer"].astype(object).mask(fixed)
    d = design(table, "architecture_hyperparameters")
    groups = pd.Series(d.groups, index=d.trials.index)
    assert groups.loc["cnn_8"].nunique() == 20  # each trial its own group
    assert groups.loc["cnn_16"].nunique() == 10  # the replicates share one
    assert set(d.x["hp_optimizer"].loc["cnn_8"]) == {"(none)"}
    results, _ = predict_experiment(table, QUICK)
    assert set(results[results["features"].isin(HPARAM_SETS)]["status"]) == {"ok"}


def test_tau_per_architecture_needs_enough_held_out_trials():
    rng = np.random.default_rng(3)
    true = rng.uniform(20, 90, 36)
    oof = pd.DataFrame(
        {
            "experiment": "e",
            "arch": np.tile(["big"] * 30 + ["small"] * 6, 2),
            "features": "hyperparameters",
            "regressor": "hgb",
            "validation": "cv5",
            "true": np.tile(true, 2),
            "predicted": np.tile(true + rng.normal(0, 1, 36), 2),
            "fold_seed": np.repeat([0, 1], 36),
        }
    )
    table = arch_taus(oof, min_trials=10)
    assert tuple(table.columns) == ARCH_COLUMNS
    table = table.set_index("arch")
    assert table.loc["big", "status"] == "ok" and table.loc["big", "kendall_tau"] > 0.8
    assert table.loc["big", "n_trials"] == 30 and table.loc["big", "n_fold_seeds"] == 2
    assert table.loc["small", "status"] == "skipped"
    assert np.isnan(table.loc["small", "kendall_tau"])
    assert table.loc["small", "reason"] == "6 held-out trials < 10"


def test_markdown_files_and_figure_of_a_zoo_with_varied_settings(weights_matter, tmp_path):
    from weightzoo.figures.predict import draw
    from weightzoo.stages.predict import predict

    results, oof = weights_matter
    md = results_markdown(results)
    assert f"| dnn_digits | {INCREMENT} | 150 (0) | +0." in md
    assert " ± " in md and "keeps the replicates of one setting in one fold" in md
    write_predictions(results, oof, tmp_path / "e.csv", tmp_path / "e.oof.csv")
    back = read_results(tmp_path / "e.csv")
    assert tuple(back.columns) == RESULT_COLUMNS + SEED_COLUMNS
    assert set(read_oof(tmp_path / "e.oof.csv")["fold_seed"]) == {0, 1, 2}
    files = {"results": [str(tmp_path / "e.csv")], "oof": [str(tmp_path / "e.oof.csv")]}
    draw(files, str(tmp_path / "e.pdf"), str(tmp_path / "e.png"))
    assert (tmp_path / "e.png").stat().st_size > 10_000
    # the stage writes the per-architecture τ beside the scores when asked
    table = hp_table(n_settings=6, replicates=2)
    table.to_parquet(tmp_path / "t.parquet")
    out = tmp_path / "out"
    predict(tmp_path / "t.parquet", out / "t.csv", out / "t.oof.csv", out / "t.arch.csv")
    arch = read_arch_taus(out / "t.arch.csv")
    assert set(arch["features"]) == {*FEATURE_SETS, *HPARAM_SETS} - {"final_spectral"}
    assert (arch["n_fold_seeds"] == 3).all() and (arch["status"] == "ok").all()
