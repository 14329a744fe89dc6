"""Accuracy predicted from weight features, on synthetic features tables whose
answer is known: the table is built directly in the agreed long format (one row per trial,
layer and state), no zoo needed."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import r2_score

from weightzoo.analysis.predict.accuracy import predict_experiment
from weightzoo.analysis.predict.design import design
from weightzoo.analysis.predict.estimators import PredictSettings, regressor
from weightzoo.analysis.predict.files import (
    OOF_COLUMNS,
    RESULT_COLUMNS,
    read_oof,
    read_results,
    write_predictions,
)
from weightzoo.analysis.predict.markdown import results_markdown, write_markdown

LAYERS = ("FC1", "FC2", "FC3")
FEATURES = ("w_mean", "w_std", "w_kurtosis", "b_mean", "travel")


def long_table(acc, arch, final, initial=None, layers=LAYERS, experiment="dnn_digits"):
    """Features table in the agreed long format.

    ``acc``: [T] final test accuracy (percent); ``arch``: [T] architecture names;
    ``final`` / ``initial``: [T, len(layers), len(FEATURES)] feature values (initial
    defaults to standard-normal noise). ``travel`` is NaN on initial rows, as agreed.
    """
    acc, arch = np.asarray(acc, float), np.asarray(arch, str)
    t = len(acc)
    rng = np.random.default_rng(99)
    if initial is None:
        initial = rng.normal(size=(t, len(layers), len(FEATURES)))
    arch_names = list(dict.fromkeys(arch))
    # trial ids count within an architecture, as in a zoo: (arch, trial_id) is the key
    trial_ids = [int((arch[:i] == arch[i]).sum()) for i in range(t)]
    rows = []
    for state, values in (("final", final), ("initial", initial)):
        for i in range(t):
            for li, layer in enumerate(layers):
                feats = dict(zip(FEATURES, values[i, li], strict=True))
                if state == "initial":
                    feats["travel"] = np.nan
                rows.append(
                    {
                        "experiment": experiment,
                        "model": "dnn",
                        "dataset": "digits",
                        "arch": arch[i],
                        "arch_index": arch_names.index(arch[i]),
                        "trial_id": trial_ids[i],
                        "trial": i,
                        "seed": 1000 + i,
                        "diverged": False,
                        "group": "high" if acc[i] >= 90 else "low",
                        "grouped_by": "test",
                        "group_rule": "bands",
                        "final_train_acc": acc[i],
                        "final_test_acc": acc[i],
                        "max_train_acc": acc[i],
                        "max_test_acc": acc[i],
                        "layer": layer,
                        "layer_index": li,
                        "n_nodes": 10 * arch_names.index(arch[i]) + li,  # identity, not a feature
                        "state": state,
                        "nonfinite": bool(~np.isfinite(values[i, li]).all()),
                        **feats,
                    }
                )
    return pd.DataFrame(rows)


def three_archs(n_per_arch=60):
    return np.repeat(["dnn_4-4", "dnn_8-8", "dnn_16-16"], n_per_arch)


def no_spectral(results):
    """The rows of every input but final_spectral, which these spectrum-less tables skip
    (tests/test_predict_early.py covers it)."""
    spectral = results[results["features"] == "final_spectral"]
    assert (spectral["status"] == "skipped").all()
    assert spectral["reason"].str.contains("spectral|usable trials|architecture").all()
    return results[results["features"] != "final_spectral"]


def result(results, features, regressor="hgb", validation="cv5"):
    row = results[
        (results["features"] == features)
        & (results["regressor"] == regressor)
        & (results["validation"] == validation)
    ]
    assert len(row) == 1
    return row.iloc[0]


@pytest.fixture(scope="module")
def determined():
    """Accuracy is a smooth function of FC2's final weight std, within and across
    architectures; everything else (and every initial feature) is noise."""
    rng = np.random.default_rng(0)
    arch = three_archs()
    acc = rng.uniform(20, 98, len(arch))
    final = rng.normal(size=(len(arch), len(LAYERS), len(FEATURES)))
    final[:, 1, 1] = 2.0 - acc / 50.0  # w_std of FC2: lower std, higher accuracy
    return predict_experiment(long_table(acc, arch, final))


def test_a_feature_that_determines_accuracy_gives_r2_near_one(determined):
    results, oof = determined
    assert set(no_spectral(results)["status"]) == {"ok"}
    for reg in ("hgb", "ridge"):
        row = result(results, "final_weights", reg)
        assert row["r2"] > 0.95, row
        assert row["kendall_tau"] > 0.85
        assert row["tau_within_arch"] > 0.85  # the weights rank trials inside a width too
    # architecture and initial weights know nothing here
    assert result(results, "architecture")["r2"] < 0.1
    assert result(results, "initial_weights")["r2"] < 0.1
    # leave-one-architecture-out: the relation is the same in every width, so it transfers
    assert result(results, "final_weights", "ridge", "loao")["r2"] > 0.95
    assert tuple(oof.columns) == OOF_COLUMNS
    cv = oof[(oof["features"] == "final_weights") & (oof["validation"] == "cv5")]
    assert len(cv) == 2 * 180 and cv["predicted"].notna().all()


def test_pure_noise_gives_r2_at_most_zero():
    rng = np.random.default_rng(1)
    arch = three_archs(50)
    acc = rng.uniform(20, 98, len(arch))
    final = rng.normal(size=(len(arch), len(LAYERS), len(FEATURES)))
    results, _ = predict_experiment(long_table(acc, arch, final))
    ok = results[results["status"] == "ok"]
    assert len(ok) == 12
    assert (ok["r2"] < 0.05).all(), ok[["features", "regressor", "validation", "r2"]]
    assert (ok["kendall_tau"].abs() < 0.2).all()


def test_architecture_only_information_is_matched_by_one_hot_and_lost_out_of_architecture():
    """Accuracy = the architecture's level + noise; final weights carry the architecture
    (an arbitrary per-architecture offset) but nothing about the trial within it."""
    rng = np.random.default_rng(2)
    names = ["dnn_3-3", "dnn_5-5", "dnn_10-10", "dnn_32-32", "dnn_64-64"]
    arch = np.repeat(names, 40)
    level = dict(zip(names, [60.0, 92.0, 30.0, 75.0, 45.0], strict=True))
    code = {n: rng.normal(0, 3, size=(len(LAYERS), len(FEATURES))) for n in names}
    acc = np.array([level[a] for a in arch]) + rng.normal(0, 2, len(arch))
    final = np.stack([code[a] for a in arch]) + rng.normal(0, 0.1, (len(arch), 3, 5))
    results, _ = predict_experiment(long_table(acc, arch, final))
    for reg in ("hgb", "ridge"):
        a = result(results, "final_weights", reg)["r2"]
        b = result(results, "architecture", reg)["r2"]
        assert b > 0.9, b
        assert abs(a - b) < 0.05, (a, b)
        assert result(results, "final_weights", reg, "loao")["r2"] < 0.3
        assert result(results, "architecture", reg, "loao")["r2"] < 0.3
        # nothing about the trial inside its architecture
        assert abs(result(results, "final_weights", reg)["tau_within_arch"]) < 0.2


def test_non_finite_rows_and_missing_accuracy_are_dropped_and_counted():
    rng = np.random.default_rng(3)
    arch = three_archs(20)
    acc = rng.uniform(20, 98, len(arch))
    final = rng.normal(size=(len(arch), len(LAYERS), len(FEATURES)))
    final[:, 0, 0] = acc / 10
    final[[0, 5], 2, :] = np.nan  # non-finite weights of FC3 -> flagged, features NaN
    final[7, 1, 2] = np.nan  # one undefined feature where its architecture has values
    acc[9] = np.nan  # diverged: no accuracy
    results, oof = predict_experiment(long_table(acc, arch, final))
    row = result(results, "final_weights")
    assert (row["n_trials"], row["n_dropped"], row["n_used"]) == (60, 4, 56)
    assert row["status"] == "ok" and row["r2"] > 0.5
    assert result(results, "architecture")["n_dropped"] == 1  # only the missing accuracy
    used = oof[(oof["features"] == "final_weights") & (oof["validation"] == "cv5")]
    used_keys = set(zip(used["arch"], used["trial_id"], strict=True))
    assert not used_keys & {("dnn_4-4", 0), ("dnn_4-4", 5), ("dnn_4-4", 7), ("dnn_4-4", 9)}
    assert len(used_keys) == 56
    # travel is NaN on every initial row: that column is left out, no trial dropped for it
    d = design(long_table(acc, arch, final), "initial_weights")
    assert not any(c.endswith(":travel") for c in d.x.columns)
    assert d.n_dropped == 1


def test_a_layer_missing_from_an_architecture_is_not_a_reason_to_drop():
    rng = np.random.default_rng(4)
    arch = three_archs(20)
    acc = rng.uniform(20, 98, len(arch))
    final = rng.normal(size=(len(arch), len(LAYERS), len(FEATURES)))
    table = long_table(acc, arch, final)
    # the smallest architecture has two layers only: its FC3 rows do not exist
    table = table[~((table["arch"] == "dnn_4-4") & (table["layer"] == "FC3"))]
    d = design(table, "final_weights")
    assert d.n_dropped == 0 and len(d.y) == 60
    assert d.x.loc["dnn_4-4", "FC3:w_std"].isna().all()
    assert d.x.loc["dnn_8-8", "FC3:w_std"].notna().all()
    assert not any("n_nodes" in c for c in d.x.columns)
    results, _ = predict_experiment(table)
    assert set(no_spectral(results)["status"]) == {"ok"}


def test_tiny_zoo_is_skipped_with_a_reason_not_an_error():
    arch = ["dnn_4-4"] * 3
    final = np.random.default_rng(5).normal(size=(3, len(LAYERS), len(FEATURES)))
    results, oof = predict_experiment(long_table([50.0, 60.0, 70.0], arch, final))
    assert len(results) == 16 and set(results["status"]) == {"skipped"}
    results = no_spectral(results)
    cv = results[results["validation"] == "cv5"]
    assert cv["reason"].str.contains("3 usable trials < 5 folds").all()
    loao = results[results["validation"] == "loao"]
    assert loao["reason"].str.contains("needs >= 2").all()
    assert oof.empty and tuple(oof.columns) == OOF_COLUMNS
    assert "Skipped:" in results_markdown(results)


def test_constant_accuracy_is_skipped():
    arch = three_archs(4)
    final = np.random.default_rng(6).normal(size=(12, len(LAYERS), len(FEATURES)))
    results, _ = predict_experiment(long_table(np.full(12, 10.0), arch, final))
    results = no_spectral(results)
    assert set(results["status"]) == {"skipped"}
    assert results["reason"].str.contains("same for every usable trial").all()


def test_one_experiment_per_table():
    arch = three_archs(2)
    final = np.zeros((6, len(LAYERS), len(FEATURES)))
    table = pd.concat(
        [
            long_table(np.arange(6.0), arch, final, experiment="a"),
            long_table(np.arange(6.0), arch, final, experiment="b"),
        ]
    )
    with pytest.raises(ValueError, match="exactly one experiment"):
        predict_experiment(table)


def test_files_round_trip_and_markdown(determined, tmp_path):
    results, oof = determined
    write_predictions(results, oof, tmp_path / "p" / "e.csv", tmp_path / "p" / "e.oof.csv")
    assert sorted(p.name for p in (tmp_path / "p").iterdir()) == ["e.csv", "e.oof.csv"]
    back = read_results(tmp_path / "p" / "e.csv")
    assert tuple(back.columns) == RESULT_COLUMNS
    np.testing.assert_allclose(back["r2"], results["r2"])
    assert len(read_oof(tmp_path / "p" / "e.oof.csv")) == len(oof)
    write_markdown([back], tmp_path / "predict.md")
    md = (tmp_path / "predict.md").read_text()
    assert "| dnn_digits | final_weights | 180 (0) |" in md
    assert md.count("| dnn_digits |") == 4  # final_spectral: a row with '–'s


def test_pipeline_steps_write_scores_table_and_figure(tmp_path):
    """The rules' functions: features parquet -> scores + out-of-fold CSVs -> markdown
    table and predicted-vs-true figure (PDF + PNG)."""
    from weightzoo.stages.figures import draw_figure
    from weightzoo.stages.predict import predict, predict_table

    rng = np.random.default_rng(7)
    arch = three_archs(15)
    acc = rng.uniform(20, 98, len(arch))
    final = rng.normal(size=(len(arch), len(LAYERS), len(FEATURES)))
    final[:, 0, 1] = acc / 10
    table = long_table(acc, arch, final)
    table["group_rule"] = "relative"
    table.to_parquet(tmp_path / "e.parquet")
    predict(tmp_path / "e.parquet", tmp_path / "out" / "e.csv", tmp_path / "out" / "e.oof.csv")
    assert set(read_oof(tmp_path / "out" / "e.oof.csv")["group_rule"]) == {"relative"}
    predict_table([tmp_path / "out" / "e.csv"], tmp_path / "out" / "predict.md")
    draw_figure(
        "predict",
        {"results": [tmp_path / "out" / "e.csv"], "oof": [tmp_path / "out" / "e.oof.csv"]},
        tmp_path / "out" / "e.pdf",
        tmp_path / "out" / "e.png",
    )
    names = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert names == ["e.csv", "e.oof.csv", "e.pdf", "e.png", "predict.md"]
    assert (tmp_path / "out" / "e.png").stat().st_size > 10_000


def test_figure_of_a_skipped_experiment_says_why(tmp_path):
    from weightzoo.figures.predict import draw

    arch = ["dnn_4-4"] * 3
    final = np.random.default_rng(8).normal(size=(3, len(LAYERS), len(FEATURES)))
    results, oof = predict_experiment(long_table([50.0, 60.0, 70.0], arch, final))
    write_predictions(results, oof, tmp_path / "e.csv", tmp_path / "e.oof.csv")
    files = {"results": [str(tmp_path / "e.csv")], "oof": [str(tmp_path / "e.oof.csv")]}
    draw(files, str(tmp_path / "e.pdf"), str(tmp_path / "e.png"))
    assert (tmp_path / "e.pdf").exists() and (tmp_path / "e.png").exists()


@pytest.mark.slow
def test_workflow_plans_the_predict_stage(tmp_path):
    """Dry run on the tiny workflow config: the predictor table and figures need the
    features of every experiment, and nothing is planned twice."""
    from test_workflow import TINY, copy_repo, planned_jobs, write_config

    root = copy_repo(tmp_path)
    config = write_config(root, {**TINY, "groups": {"method": "relative"}})
    jobs = planned_jobs(
        root,
        "results/predict/predict.md",
        "results/predict/dnn_digits.pdf",
        "--configfile=" + str(config),
    )
    assert sorted(jobs["predict"]) == [
        f"results/predict/{e}.csv, results/predict/{e}.oof.csv, results/predict/{e}.arch.csv"
        for e in ("cnn_digits", "dnn_digits", "vit_digits")
    ]
    assert len(jobs["features"]) == 3
    assert jobs["predict_table"] == ["results/predict/predict.md"]
    assert jobs["predict_figure"] == [
        "results/predict/dnn_digits.pdf, results/predict/dnn_digits.png"
    ]


@pytest.mark.parametrize("name", ["hgb", "ridge"])
def test_a_column_without_any_finite_value_in_a_fold_is_no_error(name):
    # a fold where the only architecture with a fitted WeightWatcher alpha is held out
    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 3))  # [trials, features]
    x[:, 1] = np.nan
    y = x[:, 0] + 0.01 * rng.normal(size=40)
    model = regressor(name, PredictSettings()).fit(x, y)
    assert r2_score(y, model.predict(x)) > 0.9
