"""The ``generic`` family (imported zoos: layers of any shape) through every analysis that
needs only weights, on a synthetic zoo written with the zoo writers (tests/generic_zoo.py)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from generic_zoo import BANDS, CONV_PARAMS, MLP_PARAMS, generic_arch, write_generic_zoo

from weightzoo.analysis import features as F
from weightzoo.analysis.dynamics import dynamics_long
from weightzoo.analysis.figuredata import tables as T
from weightzoo.analysis.figuredata.store import read_figure_data
from weightzoo.analysis.groups import assign_groups, read_groups_csv, write_groups_csv
from weightzoo.analysis.spectral import eigenvalues
from weightzoo.figures.registry import figures_for
from weightzoo.train.models import ForwardNeedsModelError, LayerInfo, get_family
from weightzoo.train.shapes import get_shapes
from weightzoo.zoo.hdf5 import read_zoo

MLP, CONV = generic_arch(MLP_PARAMS), generic_arch(CONV_PARAMS, "convnet")


@pytest.fixture(scope="module")
def zoo_files(tmp_path_factory):
    """An imported toy zoo and its groups file on disk."""
    root = tmp_path_factory.mktemp("generic")
    zoo = write_generic_zoo(root / "zoo.h5")
    write_groups_csv(assign_groups(zoo.trials_table(), BANDS), root / "groups.csv")
    return root


@pytest.fixture(scope="module")
def table(zoo_files):
    groups = read_groups_csv(zoo_files / "groups.csv")
    return F.features_from_file(zoo_files / "zoo.h5", groups)


def test_generic_is_a_registered_family_of_shapes_and_layers():
    family = get_family("generic")
    assert get_shapes("generic").param_shapes(MLP) == dict(MLP_PARAMS)
    assert family.layers(MLP) == [
        LayerInfo("0.weight", "0", (1,)),
        LayerInfo("2.weight", "2", (1,)),
    ]
    # the conv kernel is a layer over (in, kh, kw); batch norm and biases are not layers
    assert family.layers(CONV) == [
        LayerInfo("0.weight", "0", (1, 2, 3)),
        LayerInfo("4.weight", "4", (1,)),
    ]
    attention = generic_arch([("attn.in_proj_weight", (12, 4)), ("attn.in_proj_bias", (12,))])
    assert [li.label for li in family.layers(attention)] == ["attn.in_proj_weight"]
    assert F.bias_param("attn.in_proj_weight") == "attn.in_proj_bias"


def test_arch_names_are_the_label_or_a_hash_of_the_shapes():
    shapes = get_shapes("generic")
    assert shapes.arch_name(CONV) == "convnet"
    assert shapes.arch_name(generic_arch(MLP_PARAMS, "my net/v2")) == "my_net_v2"
    hashed = shapes.arch_name(MLP)
    assert hashed.startswith("g") and len(hashed) == 9
    assert shapes.arch_name(generic_arch(MLP_PARAMS[:2])) != hashed  # another signature


def test_a_forward_pass_asks_for_the_model_class():
    family = get_family("generic")
    with pytest.raises(ForwardNeedsModelError, match="--model package.module:Class"):
        family.forward({}, None, MLP)
    with pytest.raises(ForwardNeedsModelError, match="--model"):
        family.reference_module(MLP, (1, 8, 8), 10)


def test_a_bad_generic_arch_names_what_it_needs():
    with pytest.raises(ValueError, match="'parameters'"):
        get_family("generic").layers({"widths": [3]})


def test_features_have_one_row_per_trial_and_layer_matched_by_name(table, zoo_files):
    zoo = read_zoo(zoo_files / "zoo.h5", weights=())
    n_trials = sum(a.n_trials for a in zoo.archs)
    mlp = get_shapes("generic").arch_name(MLP)
    # final weights only (no initial in the source): one state, two layers per architecture
    assert set(table["state"]) == {"final"}
    assert len(table) == n_trials * 2
    per_arch = table.groupby("arch")["layer"].agg(lambda s: sorted(set(s))).to_dict()
    assert per_arch == {mlp: ["0", "2"], "convnet": ["0", "4"]}
    # layer "0" is one layer of both architectures (by name), with its own sizes in each
    zero = table[table["layer"] == "0"].drop_duplicates("arch").set_index("arch")
    assert zero.loc["convnet", "n_nodes"] == 4 and zero.loc["convnet", "n_weights"] == 36
    assert zero.loc[mlp, "n_nodes"] == 16
    assert T.layer_labels(table)[0] == "0" and sorted(T.layer_labels(table)) == ["0", "2", "4"]
    assert table["travel"].isna().all() and table["rwc"].isna().all()  # no W0, no dynamics
    assert not table["nonfinite"].any()


def test_node_strengths_of_a_conv_kernel_equal_a_hand_computation(table, zoo_files):
    archs = read_zoo(zoo_files / "zoo.h5", weights=("final",)).archs
    conv = next(a for a in archs if a.arch_name == "convnet")
    w = conv.final["0.weight"].astype(np.float64)  # [T, C, Cin, kh, kw]
    b = conv.final["0.bias"].astype(np.float64)  # [T, C]
    strength = np.array([[np.abs(w[t, c]).sum() for c in range(4)] for t in range(len(w))])
    signed = np.array([[w[t, c].sum() + b[t, c] for c in range(4)] for t in range(len(w))])
    rows = table[(table["arch"] == "convnet") & (table["layer"] == "0")].sort_values("trial_id")
    np.testing.assert_allclose(rows["strength_mean"], strength.mean(axis=1), rtol=1e-10)
    np.testing.assert_allclose(rows["strength_median"], np.median(strength, axis=1), rtol=1e-10)
    np.testing.assert_allclose(rows["signed_strength_mean"], signed.mean(axis=1), rtol=1e-10)
    np.testing.assert_allclose(rows["b_mean"], b.mean(axis=1), rtol=1e-6)


def test_initial_weights_when_the_source_has_them(tmp_path):
    zoo = write_generic_zoo(tmp_path / "zoo.h5", n_per_arch=4, initial=True)
    groups = assign_groups(zoo.trials_table(), BANDS)
    df = F.features_from_file(tmp_path / "zoo.h5", groups, spectral=False)
    assert set(df["state"]) == {"final", "initial"}
    assert df.loc[df["state"] == "final", "travel"].notna().all()


def test_spectra_of_1d_and_3d_kernels_pool_the_kernel_positions():
    rng = np.random.default_rng(0)
    conv1d = LayerInfo("c.weight", "c", (1, 2))
    w = rng.standard_normal((2, 5, 3, 4))  # [t, out, in, k]
    evals = eigenvalues(w, conv1d)
    expected = [
        np.sort(
            np.concatenate([np.linalg.svd(w[t, :, :, k] * np.sqrt(0.5))[1] ** 2 for k in range(4)])
        )
        for t in range(2)
    ]
    np.testing.assert_allclose(evals[:, -12:], np.array(expected), rtol=1e-9, atol=1e-12)
    conv3d = LayerInfo("c.weight", "c", (1, 2, 3, 4))
    assert eigenvalues(rng.standard_normal((1, 3, 2, 2, 2, 2)), conv3d).shape == (1, 16)


def test_dynamics_are_skipped_for_an_imported_zoo(zoo_files):
    zoo = read_zoo(zoo_files / "zoo.h5", weights=())
    groups = {a.arch_name: np.full(a.n_trials, "high") for a in zoo.archs}
    long = dynamics_long(zoo, groups)
    assert long.empty and list(long.columns)[-1] == "value"


def test_figures_of_an_imported_zoo_have_no_rwc():
    names = set(figures_for(["generic"]))
    assert {"weight_stats_generic", "node_strength_generic", "tsne_generic"} <= names
    assert not any(name.startswith("rwc_") for name in names)


def test_node_strength_pairs_are_consecutive_within_an_architecture(table):
    assert sorted(T.consecutive_layers(table)) == [("0", "2"), ("0", "4")]


# ------------------------------------------------- every weights-only stage, end to end


def weights_only_analysis(zoo_path, groups_path, out) -> dict:
    """What the workflow runs on one experiment after its zoo and groups, stage by stage
    (the rules' own functions), with small settings; returns the output paths."""
    from weightzoo.stages.claims import claims
    from weightzoo.stages.features import features
    from weightzoo.stages.figuredata import figure_data
    from weightzoo.stages.figures import draw_figure
    from weightzoo.stages.groups import table2
    from weightzoo.stages.predict import predict, predict_early

    out.mkdir(parents=True, exist_ok=True)
    paths = {"features": out / "features.parquet", "claims": out / "claims.csv"}
    table2([groups_path], out / "table2.csv", out / "table2.md")
    features(zoo_path, groups_path, paths["features"])
    data_options = {
        "convergence": {},
        "weight_kde": {"max_samples": 500},
        "tsne": {"max_iter": 250, "n_quantiles": 8},
        "rwc": {},
    }
    for kind, options in data_options.items():
        figure_data(kind, zoo_path, groups_path, out / f"{kind}.parquet", options)
    for name, fig in figures_for(["generic"]).items():
        reads = {"features": {"features": [paths["features"]]}}.get(
            fig.reads, {"data": [out / f"{fig.reads}.parquet"]}
        )
        draw_figure(fig.module, reads, out / f"{name}.pdf", out / f"{name}.png", fig.number)
    small = {"permutations": 99, "bootstrap": 99, "min_trials": 4}
    claims([paths["features"]], paths["claims"], out / "claims.md", small, "test")
    draw_figure("claims", {"claims": [paths["claims"]]}, out / "claims.pdf", out / "claims.png")
    predict(paths["features"], out / "predict.csv", out / "predict.oof.csv", out / "arch.csv")
    draw_figure(
        "predict",
        {"results": [out / "predict.csv"], "oof": [out / "predict.oof.csv"]},
        out / "predict.pdf",
        out / "predict.png",
    )
    predict_early(paths["features"], out / "early.csv")
    draw_figure("early", {"early": [out / "early.csv"]}, out / "early.pdf", out / "early.png")
    return paths


def test_every_weights_only_stage_runs_on_an_imported_zoo(zoo_files):
    out = zoo_files / "results"
    paths = weights_only_analysis(zoo_files / "zoo.h5", zoo_files / "groups.csv", out)
    assert "generic" in (out / "table2.md").read_text()
    kde = read_figure_data(out / "weight_kde.parquet", "weight_kde")
    assert kde.layers[0] == "0" and sorted(kde.layers) == ["0", "2", "4"]
    # layer "0" pools both architectures' weights (matched by name)
    assert set(kde.rows_of("0")["group"]) >= {"low", "high"}
    rwc = read_figure_data(out / "rwc.parquet", "rwc")
    assert rwc.rows.empty and "no layer dynamics" in rwc.panel("0")["note"]
    claims = pd.read_csv(paths["claims"])
    assert len(claims) and set(claims["experiment"]) == {"imported_toy"}
    results = pd.read_csv(out / "predict.csv")
    assert (results["status"] == "ok").any()
    assert "architecture" in set(results["features"])
    for name in figures_for(["generic"]):
        assert (out / f"{name}.png").stat().st_size > 0
