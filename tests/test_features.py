"""The features table on synthetic weights whose features are known in closed form."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from test_figures import BANDS, CNN_ARCH, VIT_ARCH, make_arch
from test_zoo import SETTINGS, with_settings  # a synthetic zoo that varies its training

from weightzoo.analysis import features as F
from weightzoo.analysis.figuredata import tables as T
from weightzoo.analysis.groups import assign_groups, read_groups_csv, write_groups_csv
from weightzoo.train.models import LayerInfo, get_family
from weightzoo.zoo.hdf5 import Zoo, write_zoo

ROW = LayerInfo("w.weight", "L", (1,))  # a plain [out, in] matrix, nodes = rows
ACCS = [0.11, 0.40, 0.81, 0.97, 0.98, 0.70]  # non, low, mid, high, high, between


def features_of(w, bias=None, initial=None, layer=ROW):
    w = np.asarray(w, dtype=float)[None]  # one trial
    pick = lambda a: None if a is None else np.asarray(a, dtype=float)[None]  # noqa: E731
    return {k: v[0] for k, v in F.chunk_features(w, pick(bias), layer, pick(initial)).items()}


def make_zoo(model="dnn", nan_trials=(1,)):
    arch = {"dnn": None, "cnn": CNN_ARCH, "vit": VIT_ARCH}[model]
    archs = [make_arch((4, 3), ACCS, 1, nan_trials=nan_trials, model=model, arch=arch)]
    if model == "dnn":
        archs.append(make_arch((6, 5), ACCS[::-1], 2))
    zoo = Zoo(f"{model}_mnist", model, "mnist", archs)
    return zoo, assign_groups(zoo.trials_table(), BANDS)


def test_spread_kurtosis_strength_and_norms_of_a_known_matrix():
    w = [[-2.0, -1.0], [1.0, 2.0]]
    f = features_of(w, bias=[1.0, -1.0])
    assert f["w_mean"] == 0.0 and f["w_std"] == pytest.approx(np.sqrt(2.5))
    quantiles = [f[f"w_q{q}"] for q in F.QUANTILES]
    np.testing.assert_allclose(quantiles, [-2, -1.25, 0, 1.25, 2])  # linear interpolation
    assert f["w_abs_mean"] == 1.5
    assert f["w_kurtosis"] == pytest.approx(8.5 / 2.5**2 - 3)  # m4 / m2^2 - 3 (Fisher)
    assert f["w_frac_near_zero"] == 0.0
    assert (f["b_mean"], f["b_std"], f["b_q0"], f["b_q100"]) == (0.0, 1.0, -1.0, 1.0)
    # node strengths: |-2| + |-1| = 3 and 1 + 2 = 3; signed: -3 + 1 = -2 and 3 - 1 = 2
    assert (f["strength_mean"], f["strength_std"], f["strength_median"]) == (3.0, 0.0, 3.0)
    assert (f["signed_strength_mean"], f["signed_strength_std"]) == (0.0, 2.0)
    # W^T W = [[5, 4], [4, 5]]: singular values 3 and 1
    assert f["fro_norm"] == pytest.approx(np.sqrt(10))
    assert f["spectral_norm"] == pytest.approx(3.0)
    assert f["stable_rank"] == pytest.approx(10 / 9)
    assert np.isnan(f["travel"])  # no initial weights given


def test_standard_normal_weights_have_their_textbook_features():
    w = np.random.default_rng(0).standard_normal((200, 500))
    f = features_of(w)
    assert f["w_std"] == pytest.approx(1.0, abs=0.01)
    assert f["w_q50"] == pytest.approx(0.0, abs=0.01)
    assert f["w_q75"] == pytest.approx(0.6745, abs=0.01)
    assert f["w_abs_mean"] == pytest.approx(np.sqrt(2 / np.pi), abs=0.01)
    assert f["w_kurtosis"] == pytest.approx(0.0, abs=0.05)
    assert f["w_frac_near_zero"] == pytest.approx(0.0797, abs=0.005)  # P(|z| < 0.1)
    assert all(np.isnan(f[c]) for c in F.BIAS_COLUMNS)  # no bias given


def test_kurtosis_and_spectral_norm_match_scipy_and_svdvals():
    import scipy.stats
    import torch

    rng = np.random.default_rng(5)
    for shape in ((7, 30), (30, 7), (5, 5)):
        w = rng.standard_t(5, size=(3, *shape))  # heavy tails: kurtosis far from 0
        f = F.chunk_features(w, None, ROW)
        np.testing.assert_allclose(f["w_kurtosis"], scipy.stats.kurtosis(w.reshape(3, -1), axis=1))
        svd = torch.linalg.svdvals(torch.from_numpy(w))[:, 0].numpy()
        np.testing.assert_allclose(f["spectral_norm"], svd, rtol=1e-12)


def test_rank_one_matrix_has_stable_rank_one():
    rng = np.random.default_rng(1)
    f = features_of(np.outer(rng.standard_normal(7), rng.standard_normal(5)))
    assert f["stable_rank"] == pytest.approx(1.0)


def test_orthogonal_matrix_has_spectral_norm_one():
    q, _ = np.linalg.qr(np.random.default_rng(2).standard_normal((6, 6)))
    f = features_of(q)
    assert f["spectral_norm"] == pytest.approx(1.0)
    assert f["stable_rank"] == pytest.approx(6.0)  # ||Q||_F^2 = 6


def test_travel_of_a_doubled_matrix_is_one():
    w0 = np.random.default_rng(3).standard_normal((4, 3))
    assert features_of(2 * w0, initial=w0)["travel"] == pytest.approx(1.0)
    assert features_of(w0, initial=w0)["travel"] == 0.0
    assert np.isnan(features_of(w0, initial=np.full_like(w0, np.inf))["travel"])


def test_constant_weights_give_nan_not_errors():
    f = features_of(np.zeros((3, 4)))
    assert f["w_std"] == 0.0 and f["fro_norm"] == 0.0 and f["spectral_norm"] == 0.0
    assert np.isnan(f["w_kurtosis"]) and np.isnan(f["stable_rank"])


def test_conv_kernel_is_a_c_by_cin_k_k_matrix_and_a_node_is_a_kernel():
    conv = get_family("cnn").layers(CNN_ARCH)[0]
    w = np.random.default_rng(4).standard_normal((2, 3, 3, 3))  # [C, Cin, k, k]
    f = features_of(w, bias=[0.5, -0.5], layer=conv)
    matrix = w.reshape(2, 27)  # [C, Cin*k*k]
    assert f["spectral_norm"] == pytest.approx(np.linalg.norm(matrix, ord=2))
    assert f["strength_mean"] == pytest.approx(np.abs(matrix).sum(axis=1).mean())
    assert f["signed_strength_mean"] == pytest.approx(matrix.sum(axis=1).mean())
    assert F.n_nodes(w.shape, conv) == 2


def test_bias_names_of_every_model_are_found():
    assert F.bias_param("fc1.weight") == "fc1.bias"
    assert F.bias_param("encoder.self_attn.in_proj_weight") == "encoder.self_attn.in_proj_bias"
    with pytest.raises(ValueError, match="pos_embedding"):
        F.bias_param("pos_embedding")
    for model in ("dnn", "cnn", "vit"):
        zoo, groups = make_zoo(model, nan_trials=())
        df = F.zoo_features(zoo, groups)
        assert df[list(F.FEATURE_COLUMNS)].drop(columns="travel").notna().all().all(), model


def test_one_row_per_trial_layer_and_state_with_identity():
    zoo, groups = make_zoo()
    df = F.zoo_features(zoo, groups)
    assert list(df.columns) == list(F.COLUMNS)
    assert len(df) == 12 * 3 * 2  # trials x layers x states
    assert not df.duplicated(["arch", "trial_id", "layer", "state"]).any()
    assert df["trial"].nunique() == 12  # trial_id repeats across architectures, trial does not
    first = df[(df["arch"] == "h4-3") & (df["trial_id"] == 3)]
    assert set(first["group"]) == {"high"} and set(first["final_test_acc"]) == {97.0}
    assert list(first["layer"]) == ["FC1", "FC1", "FC2", "FC2", "FC3", "FC3"]
    assert list(first["layer_index"]) == [0, 0, 1, 1, 2, 2]
    assert list(first["state"]) == ["final", "initial"] * 3
    assert list(first["n_nodes"]) == [4, 4, 3, 3, 10, 10]
    assert set(df["group_rule"]) == {"bands"} and set(df["grouped_by"]) == {"test"}
    assert df.loc[df["state"] == "initial", "travel"].isna().all()


def test_non_finite_trial_keeps_its_rows_with_nan_features():
    zoo, groups = make_zoo(nan_trials=(1,))
    df = F.zoo_features(zoo, groups)
    bad = df[(df["arch"] == "h4-3") & (df["trial_id"] == 1)]
    final = bad[bad["state"] == "final"]
    assert len(final) == 3 and final["nonfinite"].all() and bad["diverged"].all()
    assert final[list(F.FEATURE_COLUMNS)].isna().all().all()
    initial = bad[bad["state"] == "initial"]  # its initial weights were finite
    assert not initial["nonfinite"].any() and initial["w_std"].notna().all()
    assert df["nonfinite"].sum() == 3


def test_chunking_gives_the_same_table():
    zoo, groups = make_zoo()
    whole = F.zoo_features(zoo, groups)
    one_trial_per_chunk = F.zoo_features(zoo, groups, chunk_elements=1)
    pd.testing.assert_frame_equal(whole, one_trial_per_chunk, check_exact=False, rtol=1e-12)


def test_file_reader_streams_the_same_table_and_round_trips(tmp_path):
    zoo, groups = make_zoo()
    write_zoo(tmp_path / "zoo.h5", zoo)
    write_groups_csv(groups, tmp_path / "groups.csv")
    from_file = F.features_from_file(
        tmp_path / "zoo.h5", read_groups_csv(tmp_path / "groups.csv"), chunk_elements=300
    )
    pd.testing.assert_frame_equal(from_file, F.zoo_features(zoo, groups))
    F.write_features(from_file, tmp_path / "f.parquet")
    pd.testing.assert_frame_equal(F.read_features(tmp_path / "f.parquet"), from_file)
    assert [p.name for p in tmp_path.iterdir() if ".tmp-" in p.name] == []


def test_only_the_states_asked_for():
    zoo, groups = make_zoo()
    df = F.zoo_features(zoo, groups, states=("final",))
    assert set(df["state"]) == {"final"} and df["travel"].notna().sum() == 33  # 11 finite trials
    with pytest.raises(ValueError, match="states must be among"):
        F.zoo_features(zoo, groups, states=("epoch_x",))
    with pytest.raises(ValueError, match="no epoch_3 weights 'fc1.weight'.*checkpoint_epochs"):
        F.zoo_features(zoo, groups, states=("epoch_3",))


def test_trial_without_group_is_a_clear_error():
    zoo, groups = make_zoo()
    with pytest.raises(ValueError, match=r"1 trial\(s\) have no group.*h6-5, trial_id 5"):
        F.zoo_features(zoo, groups.iloc[:-1])


def test_reading_a_table_without_the_agreed_columns_fails(tmp_path):
    pd.DataFrame({"w_std": [1.0]}).to_parquet(tmp_path / "x.parquet")
    with pytest.raises(ValueError, match="not a features table"):
        F.read_features(tmp_path / "x.parquet")


def test_layer_values_pairs_layers_per_trial_and_counts_left_out_trials():
    zoo, groups = make_zoo(nan_trials=(1,))
    zoo.archs.append(make_arch((5,), ACCS, 3))  # one hidden layer: FC1, FC2 only
    groups = assign_groups(zoo.trials_table(), BANDS)
    df = F.zoo_features(zoo, groups)
    assert T.layer_labels(df) == ["FC1", "FC2", "FC3"]
    assert T.trial_counts(df) == {"non": 4, "low": 2, "mid": 3, "high": 6, "between": 3}
    values, n_skipped = T.layer_values(df, "strength_mean", ["FC2", "FC3"])
    assert n_skipped == 1  # the NaN trial; the h5 trials have no FC3 and are not counted
    assert len(values) == 11 and list(values.columns[-3:]) == ["FC2", "FC3", "group"]
    row = df[(df["arch"] == "h6-5") & (df["trial_id"] == 0) & (df["state"] == "final")]
    first = values[(values["arch_index"] == 1) & (values["trial_id"] == 0)].iloc[0]
    assert first["FC3"] == row.loc[row["layer"] == "FC3", "strength_mean"].item()
    assert first["group"] == row["group"].iat[0]


def test_varied_settings_are_identity_columns_never_features(tmp_path):
    from weightzoo.analysis.predict.design import feature_columns
    from weightzoo.zoo.hdf5 import read_zoo

    zoo, _ = make_zoo(nan_trials=())
    zoo.archs[0] = with_settings(zoo.archs[0])
    groups = assign_groups(zoo.trials_table(), BANDS)
    df = F.zoo_features(zoo, groups)
    assert list(df.columns) == F.table_columns(SETTINGS)  # right after `diverged`
    assert not set(SETTINGS) & set(F.FEATURE_COLUMNS) and not set(SETTINGS) & set(F.COLUMNS)
    assert not set(SETTINGS) & set(feature_columns(df, spectral=True))
    rows = df[(df["arch"] == "h4-3") & (df["layer"] == "FC2") & (df["state"] == "final")]
    assert rows["hp_optimizer"].tolist() == ["adam"] * 2 + ["sgd_momentum"] * 2 + ["rmsprop"] * 2
    assert rows["setting_id"].tolist() == [0, 0, 1, 1, 2, 2]
    assert df.loc[df["arch"] == "h6-5", "hp_lr"].isna().all()  # this architecture varies none
    # the streaming reader and parquet give the same table
    write_zoo(tmp_path / "zoo.h5", zoo)
    assert read_zoo(tmp_path / "zoo.h5", weights=()).archs[0].hparams  # stored, read back
    write_groups_csv(groups, tmp_path / "groups.csv")
    from_file = F.features_from_file(tmp_path / "zoo.h5", read_groups_csv(tmp_path / "groups.csv"))
    pd.testing.assert_frame_equal(from_file, df)
    F.write_features(df, tmp_path / "f.parquet")
    pd.testing.assert_frame_equal(F.read_features(tmp_path / "f.parquet"), df)


def test_fixed_settings_give_the_agreed_columns_only():
    zoo, groups = make_zoo()
    assert list(F.zoo_features(zoo, groups).columns) == list(F.COLUMNS) == F.table_columns()
