"""The reconstruction errors as an input of the accuracy predictor, on synthetic tables
whose answer is known: accuracy is a function of one reconstruction error, the weight
features are noise."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from test_predict import FEATURES, LAYERS, long_table, result, three_archs

from weightzoo.analysis.predict.accuracy import predict_experiment
from weightzoo.analysis.predict.design import design
from weightzoo.analysis.predict.files import RECONSTRUCTION_SETS, read_results
from weightzoo.analysis.reconstruct.summary import COLUMNS, TRIAL_LEVEL, trial_features

RATIOS = (0.1, 0.5)


def reconstruction_table(features: pd.DataFrame, errors: np.ndarray) -> pd.DataFrame:
    """A reconstruction table (``network`` rows and one layer row per trial and ratio, and
    a shared row): ``errors [T, len(RATIOS) + 1]``, the own errors then the shared one, in
    the order of the features table's trials."""
    trials = features[(features["state"] == "final") & (features["layer_index"] == 0)]
    rows = []
    for (_, t), err in zip(trials.iterrows(), errors, strict=True):
        base = {c: t[c] for c in ("experiment", "model", "dataset", "arch", "trial_id", "group")}
        for j, kind in enumerate(["own"] * len(RATIOS) + ["shared"]):
            ratio = RATIOS[j] if kind == "own" else np.nan
            for layer, index, e in ((TRIAL_LEVEL, -1, err[j]), ("FC1", 0, 9.0)):
                rows.append({**base, "kind": kind, "ratio": ratio, "layer": layer,
                             "layer_index": index, "rel_error_fit": e})  # fmt: skip
    return pd.DataFrame(rows).reindex(columns=list(COLUMNS))


@pytest.fixture(scope="module")
def zoo():
    rng = np.random.default_rng(3)
    arch = three_archs(40)
    acc = rng.uniform(20, 98, len(arch))
    final = rng.normal(size=(len(arch), len(LAYERS), len(FEATURES)))  # noise
    features = long_table(acc, arch, final)
    errors = rng.uniform(0.2, 1.0, size=(len(arch), len(RATIOS) + 1))
    errors[:, 1] = 1.2 - acc / 100  # the error at ratio 0.5 falls as accuracy rises
    return features, reconstruction_table(features, errors), acc


def test_trial_features_give_one_column_per_ratio_and_the_shared_one(zoo):
    features, table, acc = zoo
    rec = trial_features(table)
    assert list(rec.columns) == ["experiment", "arch", "trial_id", "rec_error_r0.1",
                                 "rec_error_r0.5", "rec_shared_error"]  # fmt: skip
    assert len(rec) == len(acc)


def test_errors_that_determine_accuracy_are_found_and_the_noise_is_not(zoo):
    features, table, _ = zoo
    results, oof = predict_experiment(features, reconstruction=trial_features(table))
    assert set(RECONSTRUCTION_SETS) <= set(results["features"])
    for reg in ("hgb", "ridge"):
        assert result(results, "reconstruction", reg)["r2"] > 0.9
        assert result(results, "final_weights_reconstruction", reg)["r2"] > 0.8
        assert result(results, "final_weights", reg)["r2"] < 0.1
    row = result(results, "reconstruction")
    assert row["n_features"] == 3 and row["n_dropped"] == 0
    assert result(results, "final_weights_reconstruction")["n_features"] == 3 + 3 * len(FEATURES)
    assert set(oof["features"]) >= set(RECONSTRUCTION_SETS)


def test_without_errors_the_output_is_unchanged(zoo):
    features, table, _ = zoo
    plain, _ = predict_experiment(features)
    with_rec, _ = predict_experiment(features, reconstruction=trial_features(table))
    assert not plain["features"].isin(RECONSTRUCTION_SETS).any()
    pd.testing.assert_frame_equal(
        with_rec[~with_rec["features"].isin(RECONSTRUCTION_SETS)].reset_index(drop=True), plain
    )


def test_a_trial_without_errors_is_dropped_and_counted(zoo):
    features, table, acc = zoo
    rec = trial_features(table)
    rec = rec[~((rec["arch"] == "dnn_8-8") & (rec["trial_id"] < 2))]  # e.g. diverged
    d = design(features, "reconstruction", rec)
    assert d.n_dropped == 2 and len(d.y) == len(acc) - 2
    assert design(features, "final_weights_reconstruction", rec).n_dropped == 2


def test_bad_reconstruction_input_is_refused_naming_what_is_missing(zoo):
    features, table, _ = zoo
    with pytest.raises(ValueError, match="'reconstruction' needs the experiment's"):
        design(features, "reconstruction")
    rec = trial_features(table)
    with pytest.raises(ValueError, match="no rows of experiment 'dnn_digits'"):
        design(features, "reconstruction", rec.assign(experiment="other"))
    with pytest.raises(ValueError, match="rec_"):
        design(features, "reconstruction", rec[["experiment", "arch", "trial_id"]])


def test_the_stage_reads_the_reconstruction_table_and_the_figure_draws_it(zoo, tmp_path):
    from weightzoo.stages.figures import draw_figure
    from weightzoo.stages.predict import predict, predict_table

    features, table, _ = zoo
    features.to_parquet(tmp_path / "e.parquet")
    table.to_parquet(tmp_path / "rec.parquet")
    out = tmp_path / "out"
    predict(tmp_path / "e.parquet", out / "e.csv", out / "e.oof.csv",
            reconstruct_path=tmp_path / "rec.parquet")  # fmt: skip
    results = read_results(out / "e.csv")
    assert result(results, "reconstruction", "ridge")["r2"] > 0.9
    predict_table([out / "e.csv"], out / "predict.md")
    assert "final_weights_reconstruction = final_weights plus" in (out / "predict.md").read_text()
    draw_figure("predict", {"results": [out / "e.csv"], "oof": [out / "e.oof.csv"]},
                out / "e.pdf", out / "e.png")  # fmt: skip
    assert (out / "e.png").stat().st_size > 10_000
