"""How early a trial's fate shows and the spectral input of the predictor (WeightWatcher's
columns), on synthetic features tables with known answers (long format, no zoo needed)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from weightzoo.analysis.predict.accuracy import predict_experiment
from weightzoo.analysis.predict.early import predict_early, state_order
from weightzoo.analysis.predict.files import EARLY_COLUMNS, read_early

STATES = ("initial", "epoch_1", "epoch_2", "epoch_5", "final")
LAYERS = ("FC1", "FC2")


def table(acc, groups, arch, values, states=STATES, extra=None):
    """Long features table: ``values[state]`` = ``[T, len(LAYERS), 2]`` (w_mean, w_std);
    ``extra[state]``: more columns ``{name: [T, len(LAYERS)]}``."""
    arch_names = list(dict.fromkeys(arch))
    ids = [int((np.asarray(arch[:i]) == arch[i]).sum()) for i in range(len(acc))]
    rows = []
    for state in states:
        for i in range(len(acc)):
            for li, layer in enumerate(LAYERS):
                more = {k: v[i, li] for k, v in (extra or {}).get(state, {}).items()}
                rows.append(
                    {
                        "experiment": "dnn_digits",
                        "model": "dnn",
                        "dataset": "digits",
                        "arch": arch[i],
                        "arch_index": arch_names.index(arch[i]),
                        "trial_id": ids[i],
                        "group": groups[i],
                        "group_rule": "bands",
                        "final_test_acc": acc[i],
                        "layer": layer,
                        "layer_index": li,
                        "state": state,
                        "nonfinite": False,
                        "w_mean": values[state][i, li, 0],
                        "w_std": values[state][i, li, 1],
                        **more,
                    }
                )
    return pd.DataFrame(rows)


def fate_from_epoch_2(n=160, seed=0):
    """Half the trials end high (95 %), half low (50 %), in both architectures alike; the
    weights say nothing about it before epoch 2 and reveal it from epoch 2 on."""
    rng = np.random.default_rng(seed)
    high = rng.permutation(np.arange(n) % 2 == 0)
    acc = np.where(high, 95.0, 50.0) + rng.normal(0, 1, n)
    arch = np.repeat(["dnn_8-8", "dnn_16-16"], n // 2)
    values = {}
    for state in STATES:
        v = rng.normal(size=(n, len(LAYERS), 2))
        if state not in ("initial", "epoch_1"):
            v[:, 1, 1] = high + rng.normal(0, 0.05, n)  # FC2's std tells the fate
        values[state] = v
    return table(acc, np.where(high, "high", "low"), arch, values)


def pick(early, state, target, estimator, validation="cv5"):
    row = early[
        (early["state"] == state)
        & (early["target"] == target)
        & (early["estimator"] == estimator)
        & (early["validation"] == validation)
    ]
    assert len(row) == 1
    return row.iloc[0]


@pytest.fixture(scope="module")
def early():
    return predict_early(fate_from_epoch_2(), epochs=20)


def test_fate_readable_from_epoch_2_on_and_not_before(early):
    for state in ("epoch_2", "epoch_5", "final"):
        for estimator in ("hgb", "logistic"):
            assert pick(early, state, "high", estimator)["roc_auc"] > 0.95
        assert pick(early, state, "accuracy", "hgb")["r2"] > 0.8
        # between-group pairs only: at most 80 * 80 / C(160, 2) ≈ 0.50
        assert pick(early, state, "accuracy", "ridge")["kendall_tau"] > 0.4
    for state in ("initial", "epoch_1"):
        for estimator in ("hgb", "logistic"):
            assert 0.3 < pick(early, state, "high", estimator)["roc_auc"] < 0.7
        assert pick(early, state, "accuracy", "hgb")["r2"] < 0.15


def test_states_in_training_order_with_their_epochs(early):
    assert list(early.columns) == list(EARLY_COLUMNS)
    assert list(dict.fromkeys(early["state"])) == list(STATES)
    epochs = early.drop_duplicates("state").set_index("state")["epoch"]
    assert epochs.to_dict() == {"initial": 0, "epoch_1": 1, "epoch_2": 2, "epoch_5": 5, "final": 20}
    # both validations, two regressors and two classifiers per state
    assert len(early) == len(STATES) * 2 * 4 and (early["status"] == "ok").all()
    assert set(early["n_used"]) == {160} and set(early["n_high"]) == {80}


def test_state_order_and_unknown_states():
    assert state_order(["final", "epoch_10", "initial", "epoch_2"]) == [
        "initial",
        "epoch_2",
        "epoch_10",
        "final",
    ]
    with pytest.raises(ValueError, match="unknown weight states"):
        state_order(["final", "best"])


def test_too_small_zoo_and_single_class_are_skipped_with_reasons():
    rng = np.random.default_rng(1)
    values = {s: rng.normal(size=(3, len(LAYERS), 2)) for s in STATES}
    tiny = predict_early(table([50.0, 60.0, 70.0], ["low"] * 3, ["a"] * 3, values))
    assert (tiny["status"] == "skipped").all()
    assert tiny["reason"].str.contains("usable trials|architecture").all()

    n = 40
    values = {s: rng.normal(size=(n, len(LAYERS), 2)) for s in STATES}
    arch = np.repeat(["a", "b"], n // 2)
    none_high = predict_early(table(rng.uniform(20, 60, n), ["low"] * n, arch, values))
    clf = none_high[none_high["target"] == "high"]
    assert (clf["status"] == "skipped").all()
    assert clf["reason"].str.startswith("one class only").all()
    reg = none_high[none_high["target"] == "accuracy"]
    assert (reg["status"] == "ok").all()


def test_write_read_and_figure(tmp_path):
    from weightzoo.stages.figures import draw_figure
    from weightzoo.stages.predict import predict_early as run_early

    fate_from_epoch_2(n=60, seed=3).to_parquet(tmp_path / "e.parquet")
    run_early(tmp_path / "e.parquet", tmp_path / "out" / "e.early.csv", epochs=None)
    back = read_early(tmp_path / "out" / "e.early.csv")
    assert np.isnan(back.loc[back["state"] == "final", "epoch"]).all()  # epochs unknown
    draw_figure(
        "early",
        {"early": [tmp_path / "out" / "e.early.csv"]},
        tmp_path / "out" / "e.pdf",
        tmp_path / "out" / "e.png",
    )
    assert (tmp_path / "out" / "e.png").stat().st_size > 10_000


def spectral_table(unreliable: bool):
    """Accuracy determined by FC2's ww_alpha; the weight statistics are noise."""
    rng = np.random.default_rng(5)
    n = 150
    acc = rng.uniform(20, 98, n)
    arch = np.repeat(["a", "b", "c"], n // 3)
    values = {s: rng.normal(size=(n, len(LAYERS), 2)) for s in ("final", "initial")}
    alpha = rng.normal(size=(n, len(LAYERS)))
    alpha[:, 1] = 2 + acc / 25
    alpha[0, 0] = np.nan  # one failed fit: never a reason to drop the trial
    spectral = {
        "ww_alpha": alpha,
        "ww_log_norm": rng.normal(size=(n, len(LAYERS))),
        "ww_unreliable": np.full((n, len(LAYERS)), unreliable),
    }
    extra = {"final": spectral, "initial": spectral}
    groups = np.where(acc >= 90, "high", "low")
    return table(acc, groups, arch, values, states=("final", "initial"), extra=extra)


def r2(results, features):
    row = results[
        (results["features"] == features)
        & (results["regressor"] == "hgb")
        & (results["validation"] == "cv5")
    ]
    return row.iloc[0]


def test_spectral_columns_add_to_r2_and_flagged_fits_are_ignored():
    results, _ = predict_experiment(spectral_table(unreliable=False))
    with_spectra, without = r2(results, "final_spectral"), r2(results, "final_weights")
    assert with_spectra["r2"] > 0.9 and without["r2"] < 0.1
    assert with_spectra["n_dropped"] == 0 and with_spectra["n_used"] == 150
    flagged, _ = predict_experiment(spectral_table(unreliable=True))
    assert r2(flagged, "final_spectral")["r2"] < 0.1  # alpha unusable, log_norm is noise


def test_old_tables_without_spectral_columns_skip_that_input():
    rng = np.random.default_rng(6)
    n = 30
    values = {s: rng.normal(size=(n, len(LAYERS), 2)) for s in ("final", "initial")}
    t = table(
        rng.uniform(20, 98, n),
        ["low"] * n,
        np.repeat(["a", "b"], n // 2),
        values,
        states=("final", "initial"),
    )
    results, _ = predict_experiment(t)
    row = r2(results, "final_spectral")
    assert row["status"] == "skipped" and "spectral" in row["reason"]
    assert r2(results, "final_weights")["status"] == "ok"
