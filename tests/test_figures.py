"""Figure data on small synthetic zoos, and every figure drawn from it (PDF + PNG), also for
edge cases. Figures only draw: each test first computes the data a figure reads."""

from __future__ import annotations

import importlib

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from weightzoo.analysis.features import features_from_file, node_strengths, write_features
from weightzoo.analysis.figuredata import convergence, store, weight_kde
from weightzoo.analysis.figuredata.tsne import quantile_descriptor
from weightzoo.analysis.groups import assign_groups, read_groups_csv, write_groups_csv
from weightzoo.analysis.trials import load_experiments, trial_features
from weightzoo.figures.registry import FIGURES, REGISTRY
from weightzoo.stages.figuredata import figure_data
from weightzoo.train.dynamics import STATS
from weightzoo.train.models import get_family
from weightzoo.zoo.hdf5 import ArchTrials, Zoo, write_zoo

BANDS = {"low": [30, 55], "mid": [80, 82], "high": [95, 100]}
N_IN, N_CLASSES, EPOCHS = 64, 10, 5


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


def with_dynamics(a: ArchTrials, model: str) -> ArchTrials:
    """``a`` with recorded layer dynamics (falling RWC; NaN after a trial diverged)."""
    rng = np.random.default_rng(len(a.arch_name))
    t = a.n_trials
    bad = a.trials["diverged"]
    for layer in get_family(model).layers(a.arch):
        stats_of = {}
        for stat in STATS:
            values = rng.uniform(0.5, 1.0, (t, EPOCHS)) / np.arange(1, EPOCHS + 1)
            values[bad, 2:] = np.nan
            stats_of[stat] = values.astype(np.float32)
        a.dynamics[layer.param] = stats_of
    return a


def write_experiment(directory, dataset, archs, model="dnn"):
    archs = [with_dynamics(a, model) for a in archs]
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


# the modules drawn by rule figure and what each reads (registry), t-SNE kept short
MODULES = {f.module: f.reads for f in FIGURES}
FAST = {"tsne": {"max_iter": 250}}


def compute(reads, zoos_groups, out_dir, **options) -> dict[str, list[str]]:
    """The inputs a figure reading ``reads`` gets, computed here as the workflow would."""
    paths = []
    for zoo, groups in zip(*zoos_groups, strict=True):
        name = zoo.rsplit("/", 1)[-1].removesuffix(".h5")
        path = out_dir / f"{reads}-{name}.parquet"
        if reads == "features":
            write_features(features_from_file(zoo, read_groups_csv(groups), spectral=False), path)
        else:
            figure_data(reads, zoo, groups, path, {**FAST.get(reads, {}), **options})
        paths.append(str(path))
    return {"features" if reads == "features" else "data": paths}


def draw(module_name, zoos_groups, out_dir, data_options=None, **options):
    module = importlib.import_module(f"weightzoo.figures.{module_name}")
    inputs = compute(MODULES[module_name], zoos_groups, out_dir, **(data_options or {}))
    pdf, png = out_dir / f"{module_name}.pdf", out_dir / f"{module_name}.png"
    module.draw(inputs, str(pdf), str(png), **options)
    return pdf, png


def assert_written(out_dir, pdf, png):
    assert pdf.stat().st_size > 1000 and pdf.read_bytes()[:4] == b"%PDF"
    assert png.stat().st_size > 1000 and png.read_bytes()[:4] == b"\x89PNG"
    assert not [p for p in out_dir.iterdir() if ".tmp-" in p.name]


def caption(out_dir, module_name, zoos_groups, data_options) -> str:
    """The caption a figure writes (drawn on a Figure whose saving is intercepted)."""
    from weightzoo.figures import common

    seen = {}
    original = common.save_figure
    common.save_figure = lambda fig, *a, **k: seen.setdefault("fig", fig)
    try:
        draw(module_name, zoos_groups, out_dir, data_options)
    finally:
        common.save_figure = original
    return seen["fig"]._supxlabel.get_text().replace("\n", " ")


@pytest.mark.parametrize("module_name", sorted(MODULES))
def test_figure_from_two_experiments(module_name, two_experiments, tmp_path):
    pdf, png = draw(module_name, two_experiments, tmp_path)
    assert_written(tmp_path, pdf, png)


@pytest.mark.parametrize("module_name", sorted(MODULES))
def test_figure_with_three_trials_and_an_empty_group(module_name, three_trials, tmp_path):
    pdf, png = draw(module_name, three_trials, tmp_path)
    assert_written(tmp_path, pdf, png)


@pytest.mark.parametrize("module_name", sorted(set(MODULES) - {"fig01_convergence"}))
@pytest.mark.parametrize("model", ["cnn", "vit"])
def test_figure_of_cnn_and_vit_layers(module_name, model, three_models, tmp_path):
    pdf, png = draw(module_name, one_model(three_models, model), tmp_path, number=7)
    assert_written(tmp_path, pdf, png)


def test_convergence_grid_of_all_models(three_models, tmp_path):
    pdf, png = draw("fig01_convergence", three_models, tmp_path)
    assert_written(tmp_path, pdf, png)


def test_registry_lists_every_figure_once_with_a_draw_function():
    names = [f.name for f in REGISTRY]
    # the paper's 13, the Small CNN's and the imported zoos' four versions of them, RWC per
    # model that records dynamics (not the imported zoos), claims/predict/early/reconstruct
    assert len(names) == len(set(names)) == 13 + 4 + 4 + 4 + 4
    for figure in REGISTRY:
        module = importlib.import_module(f"weightzoo.figures.{figure.module}")
        assert "inputs" in module.draw.__code__.co_varnames[:1], figure.module


def test_report_sections_are_numbered_once_each():
    from weightzoo.figures.registry import SECTIONS

    numbers = [int(s.split()[0]) for s in SECTIONS.values()]
    assert numbers == list(range(len(numbers)))
    assert {f.section for f in REGISTRY} <= set(SECTIONS.values())


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
    rng = np.random.default_rng
    draw_once = lambda: weight_kde.sample_group_weights(mnist, "FC1", rng(0), 500)  # noqa: E731
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
        draw("fig11_tsne", two_experiments, tmp_path, data_options={"descriptor": "raw"})


def test_raw_tsne_with_one_width(tmp_path):
    accs = [0.11, 0.40, 0.81, 0.97, 0.98, 0.99]
    zoo_groups = write_experiment(tmp_path, "cifar10", [make_arch((4, 3), accs, 7)])
    options = {"descriptor": "raw", "pca_dims": 5}
    pdf, png = draw("fig11_tsne", ([zoo_groups[0]], [zoo_groups[1]]), tmp_path, options)
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


def test_captions_quote_the_settings_the_data_was_computed_with(two_experiments, tmp_path):
    kde = caption(tmp_path, "fig05_weight_kde", two_experiments, {"max_samples": 300, "seed": 4})
    assert "at most 300 weights per group, seed 4" in kde
    assert "Groups: bands" in kde  # the rule that made the groups, from the data
    tsne = caption(tmp_path, "fig11_tsne", two_experiments, {"n_quantiles": 5})
    assert "5 quantiles + mean + std" in tsne and "250 iterations" in tsne


def test_figure_data_of_another_kind_is_an_error(two_experiments, tmp_path):
    with pytest.raises(ValueError, match="not tsne figure data"):
        store.read_figure_data(compute("rwc", two_experiments, tmp_path)["data"][0], "tsne")


# ------------------------------------------------- figure data with known answers


def test_convergence_data_equal_the_zoo_metrics(two_experiments, tmp_path):
    zoo, groups = two_experiments[0][0], two_experiments[1][0]
    convergence.convergence_data(zoo, groups, tmp_path / "c.parquet")
    data = store.read_figure_data(tmp_path / "c.parquet", "convergence")
    exp = load_experiments([zoo], [groups], weights=())[0]
    assert data.counts == exp.counts() and data.layers == ["FC1", "FC2", "FC3"]
    assert (data.name, data.model, data.dataset, data.group_rule) == (
        "dnn_mnist",
        "dnn",
        "mnist",
        "bands",
    )
    for a in exp.zoo.archs:
        mine = data.rows[data.rows["arch"] == a.arch_name]
        test_acc = mine.pivot(index="trial_id", columns="epoch", values="test_acc")
        expected = a.metrics["test_acc"].astype(float) * 100
        np.testing.assert_array_equal(test_acc.to_numpy(), expected)
        loss = mine.pivot(index="trial_id", columns="epoch", values="train_loss").to_numpy()
        np.testing.assert_array_equal(loss, a.metrics["train_loss"].astype(float))
        groups_of = mine.drop_duplicates("trial_id")["group"].to_numpy()
        np.testing.assert_array_equal(groups_of, exp.trial_groups[a.arch_name])


def test_kde_of_a_normal_sample_is_near_the_normal_density(tmp_path):
    """Every trial's weights are N(0, 1) draws: the pooled KDE is close to the density."""
    rng = np.random.default_rng(0)
    arch = make_arch((32, 32), [0.97] * 6, 11)
    for w in (*arch.final.values(),):
        w[...] = rng.normal(size=w.shape)
    zoo, groups = write_experiment(tmp_path, "mnist", [arch])
    weight_kde.weight_kde_data(zoo, groups, tmp_path / "k.parquet", max_samples=5000)
    data = store.read_figure_data(tmp_path / "k.parquet", "weight_kde")
    curve = data.rows[(data.rows["layer"] == "FC2") & (data.rows["part"] == "kde")]
    assert set(curve["group"]) == {"high"}
    inner = curve[curve["x"].abs() < 2]
    np.testing.assert_allclose(inner["density"], stats.norm.pdf(inner["x"]), atol=0.03)
    samples = data.rows[(data.rows["layer"] == "FC2") & (data.rows["part"] == "sample")]
    assert len(samples) == 5000  # 6 trials x 32 x 32 weights, subsampled
    panel = data.panel("FC2")
    lo, hi = np.quantile(samples["x"], [0.005, 0.995])
    assert (panel["lo"], panel["hi"]) == pytest.approx((lo, hi))


def test_tsne_keeps_separated_groups_apart(tmp_path):
    """Two groups of trials with very different weight scales embed as two clusters."""
    arch = make_arch((8, 8), [0.40] * 6 + [0.97] * 6, 12)
    for w in arch.final.values():
        w[6:] *= 50.0
    zoo, groups = write_experiment(tmp_path, "mnist", [arch])
    figure_data("tsne", zoo, groups, tmp_path / "t.parquet", {"max_iter": 250, "n_quantiles": 8})
    data = store.read_figure_data(tmp_path / "t.parquet", "tsne")
    points = data.rows[data.rows["layer"] == "FC1"]
    assert len(points) == 12 and data.panel("FC1")["n_skipped"] == 0
    centres = points.groupby("group")[["x", "y"]].mean()
    spread = points.groupby("group")[["x", "y"]].std().to_numpy().max()
    gap = np.linalg.norm(centres.loc["high"] - centres.loc["low"])
    assert gap > 2 * spread


def test_tsne_of_too_few_trials_says_why(three_trials, tmp_path):
    figure_data("tsne", three_trials[0][0], three_trials[1][0], tmp_path / "t.parquet", {})
    data = store.read_figure_data(tmp_path / "t.parquet", "tsne")
    assert data.rows.empty
    assert data.panel("FC1")["note"].startswith("t-SNE skipped: 3 trial(s)")


def test_rwc_bands_are_the_median_and_quartiles_of_the_trials(two_experiments, tmp_path):
    from weightzoo.analysis.dynamics import dynamics_long, group_bands

    zoo, groups = two_experiments[0][1], two_experiments[1][1]
    figure_data("rwc", zoo, groups, tmp_path / "r.parquet", {})
    data = store.read_figure_data(tmp_path / "r.parquet", "rwc")
    exp = load_experiments([zoo], [groups], weights=())[0]
    expected = group_bands(dynamics_long(exp.zoo, exp.trial_groups, "rwc"))
    pd.testing.assert_frame_equal(data.rows, expected.reset_index(drop=True))
    assert data.panel("FC1")["n_skipped"] == 2  # the fmnist zoo's two diverged trials
