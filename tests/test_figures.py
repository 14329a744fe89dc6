"""Figures on small synthetic zoos: every module draws PDF + PNG, also for edge cases."""

from __future__ import annotations

import importlib

import numpy as np
import pytest

from weightzoo.analysis.features import node_strengths
from weightzoo.analysis.groups import assign_groups, write_groups_csv
from weightzoo.analysis.trials import (
    load_experiments,
    quantile_descriptor,
    sample_group_weights,
    trial_features,
)
from weightzoo.figures import FIGURE_MODULES
from weightzoo.train.models import get_family
from weightzoo.zoo.hdf5 import ArchTrials, Zoo, write_zoo

BANDS = {"low": [30, 55], "mid": [80, 82], "high": [95, 100]}
N_IN, N_CLASSES, EPOCHS = 64, 10, 5
FAST = {"fig11_tsne": {"max_iter": 250}}


IMAGE = (1, 8, 8)  # digits-sized inputs of the CNN and ViT zoos
CNN_ARCH = {"channels": 3}
VIT_ARCH = {"d_model": 8, "nhead": 2, "patch": 4, "dim_feedforward": 6}


def make_arch(widths, final_acc, seed, nan_trials=(), model="dnn", arch=None):
    """One architecture (DNN ``widths``, or ``arch`` of ``model``); trial k reaches
    ``final_acc[k]``, better trials get tighter weights; trials in ``nan_trials`` diverge
    at epoch 2 (NaN metrics and weights)."""
    rng = np.random.default_rng(seed)
    family = get_family(model)
    arch = {"widths": list(widths)} if model == "dnn" else dict(arch)
    t = len(final_acc)
    acc = np.asarray(final_acc, dtype=np.float32)
    shapes = family.param_shapes(arch, (N_IN,) if model == "dnn" else IMAGE, N_CLASSES)
    scale = (1.2 - acc)[:, None]
    initial = {p: rng.normal(0, 0.1, (t, *s)).astype(np.float32) for p, s in shapes.items()}
    final = {
        p: (rng.normal(0, 1, (t, *s)) * scale.reshape(t, *([1] * len(s)))).astype(np.float32)
        for p, s in shapes.items()
    }
    ramp = np.linspace(0.3, 1.0, EPOCHS, dtype=np.float32)
    metrics = {
        "train_acc": acc[:, None] * ramp,
        "test_acc": acc[:, None] * ramp,
        "train_loss": (2.3 * (1.05 - acc[:, None]) / ramp).astype(np.float32),
        "test_loss": (2.3 * (1.1 - acc[:, None]) / ramp).astype(np.float32),
    }
    diverged = np.zeros(t, bool)
    for k in nan_trials:
        diverged[k] = True
        for m in metrics.values():
            m[k, 2:] = np.nan
        for w in final.values():
            w[k] = np.nan
    trials = {
        "trial_id": np.arange(t, dtype=np.int64),
        "seed": np.arange(t, dtype=np.int64) + seed,
        "diverged": diverged,
        "diverged_epoch": np.where(diverged, 2, -1).astype(np.int32),
    }
    return ArchTrials(family.arch_name(arch), arch, trials, metrics, initial, final)


def write_experiment(directory, dataset, archs, model="dnn"):
    zoo = Zoo(f"{model}_{dataset}", model, dataset, archs, versions={"test": "1"})
    zoo_path = directory / f"{zoo.experiment}.h5"
    groups_path = directory / f"{zoo.experiment}_groups.csv"
    write_zoo(zoo_path, zoo)
    write_groups_csv(assign_groups(zoo.trials_table(), BANDS), groups_path)
    return str(zoo_path), str(groups_path)


@pytest.fixture(scope="module")
def two_experiments(tmp_path_factory):
    """MNIST and F-MNIST zoos, two widths each, all groups present plus NaN trials."""
    d = tmp_path_factory.mktemp("zoos")
    accs = [0.11, 0.40, 0.81, 0.97, 0.98, 0.70]  # non, low, mid, high, high, between
    paths = [
        write_experiment(
            d,
            "mnist",
            [make_arch((4, 3), accs, 1, nan_trials=(1,)), make_arch((6, 5), accs[::-1], 2)],
        ),
        write_experiment(
            d, "fmnist", [make_arch((4, 3), accs, 3), make_arch((6, 5), accs, 4, nan_trials=(0, 5))]
        ),
    ]
    return [p[0] for p in paths], [p[1] for p in paths]


@pytest.fixture(scope="module")
def three_trials(tmp_path_factory):
    """One experiment, one architecture, three trials; group *mid* is empty."""
    d = tmp_path_factory.mktemp("tiny")
    zoo, groups = write_experiment(d, "mnist", [make_arch((4, 3), [0.11, 0.40, 0.97], 5)])
    return [zoo], [groups]


@pytest.fixture(scope="module")
def three_models(tmp_path_factory):
    """DNN, CNN and ViT zoos on two datasets (Fig. 1 draws them as a model x dataset grid)."""
    d = tmp_path_factory.mktemp("models")
    accs = [0.11, 0.40, 0.81, 0.97, 0.98, 0.70]
    paths = [write_experiment(d, "mnist", [make_arch((4, 3), accs, 1)])]
    for i, dataset in enumerate(("mnist", "fmnist")):
        for model, arch in (("cnn", CNN_ARCH), ("vit", VIT_ARCH)):
            archs = [make_arch((), accs, 10 + i, nan_trials=(2,), model=model, arch=arch)]
            paths.append(write_experiment(d, dataset, archs, model=model))
    return [p[0] for p in paths], [p[1] for p in paths]


def one_model(zoos_groups, model):
    zoos, groups = zoos_groups
    keep = [i for i, z in enumerate(zoos) if f"/{model}_" in z]
    return [zoos[i] for i in keep], [groups[i] for i in keep]


def draw(module_name, zoos_groups, out_dir, **options):
    module = importlib.import_module(f"weightzoo.figures.{module_name}")
    pdf, png = out_dir / f"{module_name}.pdf", out_dir / f"{module_name}.png"
    module.make(*zoos_groups, str(pdf), str(png), **{**FAST.get(module_name, {}), **options})
    return pdf, png


def assert_written(out_dir, pdf, png):
    assert pdf.stat().st_size > 1000 and pdf.read_bytes()[:4] == b"%PDF"
    assert png.stat().st_size > 1000 and png.read_bytes()[:4] == b"\x89PNG"
    assert not [p for p in out_dir.iterdir() if ".tmp-" in p.name]


@pytest.mark.parametrize("module_name", FIGURE_MODULES)
def test_figure_from_two_experiments(module_name, two_experiments, tmp_path):
    pdf, png = draw(module_name, two_experiments, tmp_path)
    assert_written(tmp_path, pdf, png)


@pytest.mark.parametrize("module_name", FIGURE_MODULES)
def test_figure_with_three_trials_and_an_empty_group(module_name, three_trials, tmp_path):
    pdf, png = draw(module_name, three_trials, tmp_path)
    assert_written(tmp_path, pdf, png)


@pytest.mark.parametrize("module_name", FIGURE_MODULES[1:])
@pytest.mark.parametrize("model", ["cnn", "vit"])
def test_figure_of_cnn_and_vit_layers(module_name, model, three_models, tmp_path):
    pdf, png = draw(module_name, one_model(three_models, model), tmp_path, number=7)
    assert_written(tmp_path, pdf, png)


def test_convergence_grid_of_all_models(three_models, tmp_path):
    pdf, png = draw("fig01_convergence", three_models, tmp_path)
    assert_written(tmp_path, pdf, png)


def test_cnn_and_vit_layers_the_figures_read(three_models):
    cnn, vit = (load_experiments(*one_model(three_models, m))[0] for m in ("cnn", "vit"))
    assert cnn.layer_labels() == ["Conv", "FC"]
    assert vit.layer_labels() == ["attn in", "attn out", "MLP 1", "MLP 2", "head"]
    # a CNN node is a kernel: its strength sums |w| over in-channels and the 3x3 window
    conv = get_family("cnn").layers(CNN_ARCH)[0]
    w = np.ones((2, 3, 1, 3, 3))  # [T, C, Cin, k, k]
    np.testing.assert_array_equal(node_strengths(w, conv), np.full((2, 3), 9.0))


@pytest.mark.parametrize("module_name", ["fig02_weight_stats", "fig08_node_strength"])
def test_figure_with_a_thousand_trials(module_name, tmp_path):
    accs = np.random.default_rng(0).choice([0.11, 0.4, 0.81, 0.97], size=1000)
    zoo_groups = write_experiment(tmp_path, "mnist", [make_arch((4, 3), accs, 8)])
    pdf, png = draw(module_name, ([zoo_groups[0]], [zoo_groups[1]]), tmp_path)
    assert_written(tmp_path, pdf, png)
    # the legend counts every trial
    assert load_experiments([zoo_groups[0]], [zoo_groups[1]])[0].counts()["high"] > 200


def test_pairing_and_counts(two_experiments):
    experiments = load_experiments(*two_experiments)
    assert [e.name for e in experiments] == ["dnn_mnist", "dnn_fmnist"]
    mnist = experiments[0]
    assert list(mnist.trial_groups["h4-3"]) == ["non", "non", "mid", "high", "high", "between"]
    assert mnist.counts() == {"non": 3, "low": 1, "mid": 2, "high": 4, "between": 2}
    assert mnist.layer_labels() == ["FC1", "FC2", "FC3"]


def test_groups_file_of_another_experiment_is_an_error(two_experiments):
    zoos, groups = two_experiments
    with pytest.raises(ValueError, match="in no groups file"):
        load_experiments(zoos[:1], groups[1:])


def test_non_finite_trials_are_left_out(two_experiments):
    mnist = load_experiments(*two_experiments)[0]
    feats = trial_features(mnist, ["FC1"], lambda w, layer: w.reshape(len(w), -1)[:, :1])
    assert feats.n == 11 and feats.n_skipped == 1


def test_chunked_features_equal_unchunked(two_experiments, monkeypatch):
    from weightzoo.analysis import trials

    mnist = load_experiments(*two_experiments)[0]
    describe = quantile_descriptor(4)
    whole = trial_features(mnist, ["FC1", "FC2"], describe)
    monkeypatch.setattr(trials, "CHUNK_ELEMENTS", 100)  # one trial per chunk
    chunked = trial_features(mnist, ["FC1", "FC2"], describe)
    np.testing.assert_array_equal(whole.groups, chunked.groups)
    for label in ("FC1", "FC2"):
        np.testing.assert_allclose(whole.values[label], chunked.values[label])


def test_weight_subsample_is_bounded_and_deterministic(two_experiments):
    mnist = load_experiments(*two_experiments)[0]
    draw_once = lambda: sample_group_weights(mnist, "FC1", np.random.default_rng(0), 500)  # noqa: E731
    first, skipped = draw_once()
    second, _ = draw_once()
    assert skipped == 1  # the diverged trial
    assert first["high"].size == 500  # 4 trials, 2 * 4 * 64 + 2 * 6 * 64 weights pooled
    assert first["low"].size == 6 * N_IN  # one low trial of width 6: all its weights
    assert np.isfinite(first["non"]).all()
    for g in first:
        np.testing.assert_array_equal(first[g], second[g])


def test_node_strength_sums_incoming_absolute_weights():
    layer = get_family("dnn").layers({"widths": [2, 2]})[0]
    w = np.array([[[1.0, -2.0], [0.5, 0.5]]])  # one trial, [out=2, in=2]
    np.testing.assert_allclose(node_strengths(w, layer), [[3.0, 1.0]])


def test_quantile_descriptor_has_fixed_length():
    layer = get_family("dnn").layers({"widths": [2, 2]})[0]
    describe = quantile_descriptor(8)
    assert describe(np.zeros((3, 4, 64)), layer).shape == (3, 10)
    assert describe(np.zeros((2, 9, 64)), layer).shape == (2, 10)


def test_raw_tsne_with_mixed_widths_is_a_clear_error(two_experiments, tmp_path):
    with pytest.raises(ValueError, match="descriptor='raw' needs all trials"):
        draw("fig11_tsne", two_experiments, tmp_path, descriptor="raw")


def test_raw_tsne_with_one_width(tmp_path):
    accs = [0.11, 0.40, 0.81, 0.97, 0.98, 0.99]
    zoo_groups = write_experiment(tmp_path, "cifar10", [make_arch((4, 3), accs, 7)])
    pdf, png = draw(
        "fig11_tsne", ([zoo_groups[0]], [zoo_groups[1]]), tmp_path, descriptor="raw", pca_dims=5
    )
    assert_written(tmp_path, pdf, png)


def test_convergence_options(two_experiments, tmp_path):
    pdf, png = draw(
        "fig01_convergence", two_experiments, tmp_path, split="train", loss_scale="linear"
    )
    assert_written(tmp_path, pdf, png)
    with pytest.raises(ValueError, match="split"):
        draw("fig01_convergence", two_experiments, tmp_path, split="val")


def test_unknown_option_is_rejected(two_experiments, tmp_path):
    with pytest.raises(TypeError):
        draw("fig02_weight_stats", two_experiments, tmp_path, colour="red")
