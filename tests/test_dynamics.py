"""Per-epoch layer dynamics and checkpoints: known answers, bit-identity alone vs in an
ensemble, sub-ensembles, divergence, HDF5 round trip, schema-1 files."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.datasets import load_digits

from weightzoo.config import ConfigError, validate_config
from weightzoo.train.dynamics import RWC_EPS, STATS, DynamicsRecorder, layer_dynamics, per_trial_sum
from weightzoo.train.models import get_family, trial_state_dict
from weightzoo.train.seeds import trial_seed
from weightzoo.train.trainer import (
    EnsembleTrainer,
    TensorData,
    TrainSettings,
    train_trials,
)
from weightzoo.zoo import hdf5 as zoo_io

DNN = get_family("dnn")
ARCH = {"widths": [12, 8]}
LAYERS = ("fc1.weight", "fc2.weight", "fc3.weight")
META = {"experiment": "dnn_digits", "model": "dnn", "dataset": "digits"}
FIXTURE_V1 = Path(__file__).parent / "fixtures" / "zoo_v1.h5"


def seeds(n, start=0):
    return [trial_seed(0, "test", "h12-8", i) for i in range(start, start + n)]


def train(data, n=3, epochs=3, checkpoints=(), **kwargs):
    settings = TrainSettings(epochs=epochs, init_std=0.1, checkpoint_epochs=checkpoints)
    return train_trials(DNN, ARCH, seeds(n), data, settings, progress_file=None, **kwargs)


# --------------------------------------------------------------------------- known answers
def test_a_weight_that_does_not_change_has_rwc_zero_and_keeps_its_norm():
    w0 = torch.randn(4, 30, 20, generator=torch.Generator().manual_seed(0))  # [T, out, in]
    stats = layer_dynamics(w0.clone(), previous=w0, initial=w0)
    assert torch.equal(stats["rwc"], torch.zeros(4))
    assert torch.equal(stats["dist_from_init"], torch.zeros(4))
    expected = torch.linalg.vector_norm(w0.flatten(1).double(), dim=1)
    torch.testing.assert_close(stats["fro_norm"].double(), expected, rtol=1e-6, atol=0)


def test_a_doubled_weight_has_rwc_one_and_travelled_its_own_norm():
    w0 = torch.randn(4, 30, 20, generator=torch.Generator().manual_seed(1))
    stats = layer_dynamics(2 * w0, previous=w0, initial=w0)
    norm = torch.linalg.vector_norm(w0.flatten(1).double(), dim=1)  # [T]
    # |2w - w| / (|w| + eps) = 1 - eps / (|w| + eps): 1 up to eps / |w|
    torch.testing.assert_close(stats["rwc"].double(), torch.ones(4, dtype=torch.float64))
    torch.testing.assert_close(stats["dist_from_init"].double(), norm, rtol=1e-6, atol=0)
    torch.testing.assert_close(stats["fro_norm"].double(), 2 * norm, rtol=1e-6, atol=0)


def test_a_zero_weight_gives_a_finite_rwc():
    """Agrawal et al.'s form without epsilon divides by zero where a weight is exactly 0."""
    w0 = torch.zeros(1, 2, 2)
    stats = layer_dynamics(w0 + 1e-3, previous=w0, initial=w0)
    assert torch.isfinite(stats["rwc"]).all()
    assert stats["rwc"].item() == pytest.approx(1e-3 / RWC_EPS, rel=1e-5)


def test_per_trial_sums_do_not_depend_on_the_ensemble():
    """784 x 100 = 78400 elements: above torch's grain size, where a single trial's plain
    sum is split over threads and rounds differently from the same trial in a stack."""
    x = torch.randn(5, 100, 784, generator=torch.Generator().manual_seed(2))  # [T, out, in]
    together = per_trial_sum(x)
    for k in range(5):
        assert torch.equal(per_trial_sum(x[k : k + 1])[0], together[k]), k
    torch.testing.assert_close(
        together.double(), x.double().flatten(1).sum(1), rtol=1e-5, atol=1e-3
    )


# --------------------------------------------------------------------------- the trainer
def test_dynamics_are_t_by_e_per_layer_and_match_the_checkpointed_weights(digits_tensors):
    result = train(digits_tensors(torch.float32), n=3, epochs=3, checkpoints=[1, 2, 3])
    assert set(result.dynamics) == set(LAYERS)
    for name in LAYERS:
        assert set(result.dynamics[name]) == set(STATS)
        assert all(
            v.shape == (3, 3) and v.dtype == np.float32 for v in result.dynamics[name].values()
        )
    # recomputed in float64 from the stored weights: epoch t compares t with t-1
    states = [result.initial, *(result.checkpoints[k] for k in (1, 2, 3))]
    assert all(np.array_equal(result.checkpoints[3][n], result.final[n]) for n in result.final)
    for name in LAYERS:
        w = [s[name].astype(np.float64).reshape(3, -1) for s in states]  # [T, N] each
        for t in (1, 2, 3):
            rwc = (np.abs(w[t] - w[t - 1]) / (np.abs(w[t - 1]) + RWC_EPS)).mean(1)
            got = result.dynamics[name]
            np.testing.assert_allclose(got["rwc"][:, t - 1], rwc, rtol=1e-5)
            np.testing.assert_allclose(
                got["fro_norm"][:, t - 1], np.linalg.norm(w[t], axis=1), rtol=1e-5
            )
            travelled = np.linalg.norm(w[t] - w[0], axis=1)
            np.testing.assert_allclose(got["dist_from_init"][:, t - 1], travelled, rtol=1e-5)
        assert (got["rwc"] > 0).all() and (np.diff(got["dist_from_init"], axis=1) != 0).all()


def test_a_trials_dynamics_and_checkpoints_are_bit_identical_alone(digits_tensors):
    data = digits_tensors(torch.float32)
    settings = TrainSettings(epochs=2, init_std=0.1, checkpoint_epochs=[1])
    together = train_trials(DNN, ARCH, seeds(4), data, settings, progress_file=None)
    alone = train_trials(DNN, ARCH, seeds(4)[2:3], data, settings, progress_file=None)
    for name, stats in together.dynamics.items():
        for stat, values in stats.items():
            assert np.array_equal(values[2], alone.dynamics[name][stat][0]), (name, stat)
    for name, w in together.checkpoints[1].items():
        assert np.array_equal(w[2], alone.checkpoints[1][name][0]), name


def test_checkpoints_equal_a_run_stopped_at_that_epoch(digits_tensors):
    data = digits_tensors(torch.float32, n_train=500)
    long = train(data, n=3, epochs=4, checkpoints=[1, 2])
    assert sorted(long.checkpoints) == [1, 2]
    for k in (1, 2):
        short = train(data, n=3, epochs=k)
        for name in short.final:
            assert np.array_equal(long.checkpoints[k][name], short.final[name]), (k, name)
        for name in LAYERS:  # the first k epochs of dynamics are the short run's
            for stat in STATS:
                assert np.array_equal(long.dynamics[name][stat][:, :k], short.dynamics[name][stat])
    assert not np.array_equal(long.checkpoints[1]["fc1.weight"], long.checkpoints[2]["fc1.weight"])


def test_sub_ensembles_concatenate_dynamics_and_checkpoints(digits_tensors):
    data = digits_tensors(torch.float32, n_train=300)
    whole = train(data, n=5, epochs=2, checkpoints=[1])
    split = train(data, n=5, epochs=2, checkpoints=[1], max_trials=2)
    for name in LAYERS:
        for stat in STATS:
            assert np.array_equal(whole.dynamics[name][stat], split.dynamics[name][stat])
    for name, w in whole.checkpoints[1].items():
        assert np.array_equal(w, split.checkpoints[1][name])


def test_a_diverged_trial_has_nan_dynamics_and_leaves_the_others_alone(digits_tensors):
    data = digits_tensors(torch.float32, n_train=300)
    settings = TrainSettings(epochs=2, init_std=0.1)
    clean = train_trials(DNN, ARCH, seeds(4), data, settings, progress_file=None)
    trainer = EnsembleTrainer(DNN, ARCH, seeds(4), data, settings)
    with torch.no_grad():
        trainer.params["fc2.weight"][1, 0, 0] = float("inf")  # poison trial 1
    poisoned = trainer.run(progress_file=None)
    assert poisoned.diverged_epoch.tolist() == [-1, 0, -1, -1]
    for name in LAYERS:
        for stat in STATS:
            values = poisoned.dynamics[name][stat]  # [T, E]
            assert np.isnan(values[1]).all(), (name, stat)
            assert np.array_equal(values[[0, 2, 3]], clean.dynamics[name][stat][[0, 2, 3]])


def test_dynamics_off_changes_no_weight(digits_tensors):
    data = digits_tensors(torch.float32, n_train=300)
    on, off = train(data, epochs=1), train(data, epochs=1, record_dynamics=False)
    assert off.dynamics == {} and on.dynamics
    assert all(np.array_equal(on.final[n], off.final[n]) for n in on.final)


def test_recorder_keeps_values_on_the_device_until_asked():
    params = {"w": torch.ones(2, 3, 3)}
    recorder = DynamicsRecorder(params, ["w"], epochs=2)
    params["w"] = params["w"] * 3
    recorder.record(params, 0, torch.tensor([False, True]))
    values = recorder.arrays()["w"]
    assert values["rwc"][0].tolist()[0] == pytest.approx(2.0)
    assert np.isnan(values["rwc"][1]).all() and np.isnan(values["rwc"][:, 1]).all()


# --------------------------------------------------------------------------- settings
@pytest.mark.parametrize("epochs", [[0], [21], [3, 25]])
def test_checkpoint_epochs_outside_the_training_are_refused_naming_the_key(epochs):
    config = {
        "training": {"checkpoint_epochs": epochs},
        "experiments": {
            "dnn_digits": {
                "model": "dnn",
                "dataset": "digits",
                "trials": 2,
                "architectures": [{"widths": [4]}],
                "bands": {"low": [0, 50], "mid": [50, 90], "high": [90, 100]},
            }
        },
    }
    with pytest.raises(ConfigError, match=r"training\.checkpoint_epochs"):
        validate_config(config)
    with pytest.raises(ValueError, match=r"training\.checkpoint_epochs"):
        TrainSettings(epochs=20, checkpoint_epochs=epochs)


def test_an_experiment_training_fewer_epochs_is_checked_against_its_own():
    config = {
        "training": {"checkpoint_epochs": [5]},
        "experiments": {
            "short": {
                "model": "dnn",
                "dataset": "digits",
                "trials": 2,
                "training": {"epochs": 3},
                "architectures": [{"widths": [4]}],
                "bands": {"low": [0, 50], "mid": [50, 90], "high": [90, 100]},
            }
        },
    }
    with pytest.raises(ConfigError, match=r"experiments\.short: training\.checkpoint_epochs \[5\]"):
        validate_config(config)


def test_checkpoint_epochs_are_sorted_and_unique():
    assert TrainSettings(epochs=9, checkpoint_epochs=[5, 1, 5]).checkpoint_epochs == (1, 5)
    assert (
        validate_config(
            {
                "experiments": {
                    "e": {
                        "model": "dnn",
                        "dataset": "digits",
                        "trials": 1,
                        "architectures": [{"widths": [4]}],
                        "bands": {"low": [0, 50], "mid": [50, 90], "high": [90, 100]},
                    }
                }
            }
        )["training"]["checkpoint_epochs"]
        == []
    )


# --------------------------------------------------------------------------- HDF5
@pytest.fixture
def zoo_with_checkpoints(tmp_path, digits_tensors):
    data = digits_tensors(torch.float32, n_train=300)
    name = DNN.arch_name(ARCH)
    paths = []
    for ids in ([2, 3], [0, 1]):  # two chunks, merged and sorted by trial id
        s = [trial_seed(0, "dnn_digits", name, i) for i in ids]
        settings = TrainSettings(epochs=3, init_std=0.1, checkpoint_epochs=[1, 2])
        result = train_trials(DNN, ARCH, s, data, settings, progress_file=None)
        paths.append(tmp_path / f"job{ids[0]}.h5")
        zoo_io.write_job_file(paths[-1], result.to_arch_trials(name, ARCH, ids, s), META)
    out = tmp_path / "zoo.h5"
    zoo = zoo_io.merge_job_files(paths, out, {"trials": 4})
    return out, paths, zoo


def test_zoo_stores_checkpoints_and_dynamics_in_the_documented_layout(zoo_with_checkpoints):
    path, jobs, merged = zoo_with_checkpoints
    with h5py.File(path, "r") as f:
        assert f.attrs["schema_version"] == 2
        g = f["archs/h12-8"]
        assert set(g["weights"]) == {"initial", "final", "epoch_1", "epoch_2"}
        assert g["weights/epoch_1/fc1.weight"].shape == (4, 12, 64)
        assert g["dynamics/fc1.weight/rwc"].shape == (4, 3)
    assert merged.archs[0].final == {} and set(merged.archs[0].dynamics) == set(LAYERS)
    default = zoo_io.read_zoo(path).archs[0]
    assert default.checkpoints == {} and set(default.dynamics) == set(LAYERS)
    everything = zoo_io.read_zoo(path, weights=("final", "epoch_*")).archs[0]
    assert everything.checkpoint_epochs == [1, 2] and everything.initial == {}
    job, _ = zoo_io.read_job_file(jobs[1])  # trials 0, 1
    for name, w in job.checkpoints[2].items():
        assert np.array_equal(everything.weights("epoch_2")[name][:2], w)
    for stat, v in job.dynamics["fc2.weight"].items():
        assert np.array_equal(everything.dynamics["fc2.weight"][stat][:2], v)
    picked = everything.select(np.array([3, 0]))
    assert np.array_equal(picked.checkpoints[1]["fc1.bias"][1], job.checkpoints[1]["fc1.bias"][0])
    assert np.array_equal(
        picked.dynamics["fc1.weight"]["rwc"][1], job.dynamics["fc1.weight"]["rwc"][0]
    )


def test_one_checkpoint_reads_alone_and_a_missing_one_is_named(zoo_with_checkpoints):
    path, _, _ = zoo_with_checkpoints
    arch = zoo_io.read_zoo(path, weights=("epoch_2",)).archs[0]
    assert arch.checkpoint_epochs == [2] and arch.final == {}
    one = zoo_io.read_trial_params(path, "h12-8", 3, weights="epoch_1")
    full = zoo_io.read_zoo(path, weights=("epoch_1",)).archs[0]
    assert np.array_equal(one["fc2.weight"], full.checkpoints[1]["fc2.weight"][3])
    with pytest.raises(ValueError, match=r"no checkpoint after epoch\(s\) \[7\].*epoch_1"):
        zoo_io.read_zoo(path, weights=("epoch_7",))
    with pytest.raises(ValueError, match=r"no checkpoint after epoch\(s\) \[7\]"):
        zoo_io.read_trial_params(path, "h12-8", 0, weights="epoch_7")
    with pytest.raises(ValueError, match="weights must be among"):
        zoo_io.read_zoo(path, weights=("epoch_x",))
    with pytest.raises(KeyError, match="no weight set 'epoch_1'"):
        arch.weights("epoch_1")


def test_job_files_with_different_checkpoints_are_not_merged(tmp_path, digits_tensors):
    data = digits_tensors(torch.float32, n_train=200)
    name = DNN.arch_name(ARCH)
    paths = []
    for ids, checkpoints in (([0], [1]), ([1], [])):
        s = [trial_seed(0, "dnn_digits", name, i) for i in ids]
        settings = TrainSettings(epochs=1, init_std=0.1, checkpoint_epochs=checkpoints)
        result = train_trials(DNN, ARCH, s, data, settings, progress_file=None)
        paths.append(tmp_path / f"job{ids[0]}.h5")
        zoo_io.write_job_file(paths[-1], result.to_arch_trials(name, ARCH, ids, s), META)
    with pytest.raises(ValueError, match="h12-8: its job files hold different checkpoints"):
        zoo_io.merge_job_files(paths, tmp_path / "zoo.h5", {})
    assert not (tmp_path / "zoo.h5").exists()


def test_a_schema_1_zoo_still_reads():
    """tests/fixtures/zoo_v1.h5 was written by the code before schema 2 (its script is
    beside it): 2 trials of h4-4 on digits, 2 epochs, no dynamics or checkpoints."""
    with h5py.File(FIXTURE_V1, "r") as f:
        assert f.attrs["schema_version"] == 1
    zoo = zoo_io.read_zoo(FIXTURE_V1, weights=("initial", "final", "epoch_*"))
    (arch,) = zoo.archs
    assert (zoo.experiment, arch.arch_name, arch.n_trials) == ("dnn_digits", "h4-4", 2)
    assert arch.dynamics == {} and arch.checkpoints == {}
    assert arch.metrics["test_acc"].shape == (2, 2)
    # its weights still give the accuracy it recorded (the script's data split)
    d = load_digits()
    x = d.images.astype(np.uint8)[:, None]
    data = TensorData.from_arrays(x[:300], d.target[:300], x[300:400], d.target[300:400], 16)
    params = {n: torch.from_numpy(v) for n, v in arch.final.items()}
    for k in range(2):
        model = DNN.reference_module(arch.arch, data.input_shape, 10)
        model.load_state_dict(trial_state_dict(params, k))
        with torch.no_grad():
            accuracy = (model(data.x_test).argmax(1) == data.y_test).double().mean().item()
        assert accuracy == pytest.approx(float(arch.metrics["test_acc"][k, -1]), abs=1e-7)
    assert zoo_io.read_trial_params(FIXTURE_V1, "h4-4", 1)["fc1.weight"].shape == (4, 64)


def test_a_newer_schema_is_refused_naming_the_versions(tmp_path):
    path = tmp_path / "new.h5"
    with h5py.File(FIXTURE_V1, "r") as src, h5py.File(path, "w") as dst:
        for key, value in src.attrs.items():
            dst.attrs[key] = value
        src.copy("archs", dst)
        dst.attrs["schema_version"] = 3
    with pytest.raises(ValueError, match="schema_version 3, this weightzoo reads versions 1, 2"):
        zoo_io.read_zoo(path)


def test_the_command_exports_a_checkpoint(zoo_with_checkpoints, tmp_path, capsys):
    from weightzoo.cli import main

    path, _, _ = zoo_with_checkpoints
    out = tmp_path / "t.pt"
    argv = ["export", str(path), "--arch", "h12-8", "--trial", "1", "-o", str(out)]
    assert main([*argv, "--weights", "epoch_2"]) == 0
    assert "epoch_2 weights" in capsys.readouterr().out
    stored = zoo_io.read_zoo(path, weights=("epoch_2",)).archs[0].checkpoints[2]
    state = torch.load(out, weights_only=True)
    assert all(np.array_equal(state[n].numpy(), stored[n][1]) for n in stored)
    assert main([*argv, "--weights", "epoch_7"]) == 2
    assert "no checkpoint after epoch(s) [7]" in capsys.readouterr().err
    assert main([*argv, "--weights", "best"]) == 2
    assert "use final, initial or epoch_K" in capsys.readouterr().err


# --------------------------------------------------------------------------- summaries
def synthetic_zoo(rwc_by_layer: dict[str, np.ndarray]) -> zoo_io.Zoo:
    """A DNN zoo of one architecture whose dynamics are the given ``[T, E]`` arrays."""
    t, e = next(iter(rwc_by_layer.values())).shape
    trials = {
        "trial_id": np.arange(t),
        "seed": np.arange(t),
        "diverged": np.zeros(t, dtype=bool),
        "diverged_epoch": np.full(t, -1, dtype=np.int32),
    }
    dynamics = {p: {s: v.astype(np.float32) for s in STATS} for p, v in rwc_by_layer.items()}
    arch = zoo_io.ArchTrials("h4-4", {"widths": [4, 4]}, trials, {}, {}, {}, dynamics=dynamics)
    return zoo_io.Zoo("dnn_digits", "dnn", "digits", [arch])


def test_group_bands_are_the_median_and_quartiles_of_each_group():
    from weightzoo.analysis.dynamics import dynamics_long, group_bands, nonfinite_trials

    # 5 trials, 2 epochs; trials 0-3 high with values 1..4 (x epoch), trial 4 low, NaN epoch 2
    base = np.array([[1, 2], [2, 4], [3, 6], [4, 8], [10, np.nan]], dtype=float)
    zoo = synthetic_zoo({p: base * (i + 1) for i, p in enumerate(LAYERS)})
    groups = {"h4-4": np.array(["high"] * 4 + ["low"])}
    long = dynamics_long(zoo, groups)
    assert len(long) == 5 * 3 * 2 and nonfinite_trials(long) == 1
    bands = group_bands(long).set_index(["layer", "group", "epoch"])
    high = bands.loc[("FC1", "high", 1)]
    assert (high["n"], high["median"], high["q25"], high["q75"]) == (4, 2.5, 1.75, 3.25)
    assert bands.loc[("FC3", "high", 2), "median"] == 3 * 5.0  # layer 3 = base x 3
    assert bands.loc[("FC1", "low", 1), "n"] == 1 and ("FC1", "low", 2) not in bands.index
    assert list(dict.fromkeys(group_bands(long)["layer"])) == ["FC1", "FC2", "FC3"]


def test_a_zoo_without_dynamics_is_named():
    from weightzoo.analysis.dynamics import dynamics_long

    zoo = zoo_io.read_zoo(FIXTURE_V1, weights=())
    with pytest.raises(ValueError, match="dnn_digits/h4-4: the zoo holds no layer dynamics"):
        dynamics_long(zoo, {"h4-4": np.array(["high", "low"])})


def test_features_are_computed_for_every_stored_epoch(zoo_with_checkpoints):
    from weightzoo.analysis.features import features_from_file
    from weightzoo.analysis.groups import assign_groups

    path, _, _ = zoo_with_checkpoints
    zoo = zoo_io.read_zoo(path, weights=("initial", "epoch_*"))
    bands = {"low": [0, 50], "mid": [50, 90], "high": [90, 100]}
    df = features_from_file(path, assign_groups(zoo.trials_table(), bands))
    assert list(dict.fromkeys(df["state"])) == ["final", "initial", "epoch_1", "epoch_2"]
    assert len(df) == 4 * 3 * 4  # trials x layers x states
    arch = zoo.archs[0]
    rows = df[(df["layer"] == "FC2") & (df["state"] == "epoch_2")].sort_values("trial_id")
    w2 = arch.checkpoints[2]["fc2.weight"].reshape(4, -1).astype(np.float64)
    w0 = arch.initial["fc2.weight"].reshape(4, -1).astype(np.float64)
    np.testing.assert_allclose(rows["w_std"], w2.std(axis=1), rtol=1e-12)
    travel = np.linalg.norm(w2 - w0, axis=1) / np.linalg.norm(w0, axis=1)
    np.testing.assert_allclose(rows["travel"], travel, rtol=1e-12)
    rwc = arch.dynamics["fc2.weight"]["rwc"].astype(np.float64)  # [T, E]
    np.testing.assert_array_equal(rows["rwc"], rwc[:, 1])
    np.testing.assert_allclose(rows["rwc_mean"], rwc[:, :2].mean(axis=1), rtol=1e-12)
    final = df[(df["layer"] == "FC2") & (df["state"] == "final")].sort_values("trial_id")
    np.testing.assert_allclose(final["rwc_mean"], rwc.mean(axis=1), rtol=1e-12)
    assert df.loc[df["state"] == "initial", ["rwc", "rwc_mean", "travel"]].isna().all().all()


def test_the_rwc_figure_draws_from_the_zoo_and_its_groups(zoo_with_checkpoints, tmp_path):
    from weightzoo.analysis.figuredata.rwc import rwc_data
    from weightzoo.analysis.groups import assign_groups, write_groups_csv
    from weightzoo.figures import rwc
    from weightzoo.figures.registry import FIGURES

    path, _, _ = zoo_with_checkpoints
    bands = {"low": [0, 50], "mid": [50, 90], "high": [90, 100]}
    groups = tmp_path / "groups.csv"
    write_groups_csv(assign_groups(zoo_io.read_zoo(path, weights=()).trials_table(), bands), groups)
    pdf, png = tmp_path / "rwc.pdf", tmp_path / "rwc.png"
    rwc_data(str(path), str(groups), tmp_path / "rwc.parquet")
    rwc.draw({"data": [str(tmp_path / "rwc.parquet")]}, str(pdf), str(png), number=0)
    assert pdf.stat().st_size > 1000 and png.stat().st_size > 1000
    rwc_figures = {f.name for f in FIGURES if f.module == "rwc"}
    assert rwc_figures == {"rwc_dnn", "rwc_cnn", "rwc_vit", "rwc_smallcnn"}


# --------------------------------------------------------------------------- the claim
def layer_table(rwc: np.ndarray, archs: np.ndarray, experiment="dnn_digits") -> pd.DataFrame:
    """A features-like table: final rows with ``rwc_mean`` of ``rwc`` ``[T, L]``."""
    t, n_layers = rwc.shape
    return pd.DataFrame(
        {
            "experiment": experiment,
            "arch": np.repeat(archs, n_layers),
            "trial_id": np.repeat(np.arange(t), n_layers),
            "layer_index": np.tile(np.arange(n_layers), t),
            "state": "final",
            "rwc_mean": rwc.reshape(-1),
        }
    )


def test_layer_order_tau_known_values():
    from weightzoo.analysis.dynamics import layer_order_tau

    tau = layer_order_tau(np.array([[1, 2, 3], [3, 2, 1], [1, 3, 2], [1, 1, 1.0]]))
    np.testing.assert_allclose(tau, [1, -1, 1 / 3, 0])
    assert np.isnan(layer_order_tau(np.ones((2, 1)))).all()


def claim_7(rwc: np.ndarray, archs: np.ndarray, groups=None, **settings) -> pd.DataFrame:
    """Claim 7's rows with the claims module's verdicts (BH over these rows only)."""
    from weightzoo.analysis.claims.rows import layer_order_rows
    from weightzoo.analysis.claims.settings import ClaimSettings
    from weightzoo.analysis.claims.verdicts import add_verdicts

    table = layer_table(rwc, archs)
    table["group"] = "high" if groups is None else np.repeat(groups, rwc.shape[1])
    exp = {"experiment": "dnn_digits", "model": "dnn", "dataset": "digits"}
    options = ClaimSettings(**{"permutations": 999, "bootstrap": 199, **settings})
    rows = pd.DataFrame(layer_order_rows(exp, table, options))
    return add_verdicts(rows, options)


@pytest.mark.parametrize(
    ("order", "verdict"), [([1, 2, 3], "supported"), ([3, 2, 1], "contradicted")]
)
def test_a_planted_layer_order_is_found_pooled_and_within(order, verdict):
    rng = np.random.default_rng(0)
    rwc = np.array(order, dtype=float) * rng.uniform(0.9, 1.1, size=(40, 3))  # [T, L]
    archs = np.array(["h4-4"] * 20 + ["h8-8"] * 15 + ["h16-16"] * 5)  # h16-16: too few
    groups = np.array(["high", "low"] * 20)
    table = claim_7(rwc, archs, groups)
    assert list(table["scope"]) == ["pooled", "within"] and set(table["claim"]) == {"7"}
    assert (table["verdict"] == verdict).all()
    assert np.allclose(table["estimate"].abs(), 1.0) and (table["p_value"] < 0.01).all()
    assert table["n"].tolist() == [40, 35] and table["n_strata"].tolist() == [1, 2]
    assert table["n_high"].tolist() == [20, 18] and table["n_rest"].tolist() == [20, 17]


def test_no_layer_order_is_inconclusive():
    rwc = np.random.default_rng(1).lognormal(size=(60, 3))  # layers exchangeable
    table = claim_7(rwc, np.array(["h4-4"] * 30 + ["h8-8"] * 30))
    assert (table["verdict"] == "inconclusive").all()
    assert ((table["ci_low"] < 0) & (table["ci_high"] > 0)).all()


def test_too_few_trials_is_inconclusive_not_a_crash():
    table = claim_7(np.tile([1.0, 2.0, 3.0], (4, 1)), np.array(["h4-4"] * 4), min_trials=10)
    assert (table["verdict"] == "inconclusive").all() and table["p_value"].isna().all()
    assert table["note"].str.startswith("too few trials").all()


def test_a_zoo_without_dynamics_gives_an_untested_row():
    table = claim_7(np.full((20, 3), np.nan), np.array(["h4-4"] * 20))
    assert (table["verdict"] == "inconclusive").all()
    assert table["note"].str.contains("no layer dynamics").all()
