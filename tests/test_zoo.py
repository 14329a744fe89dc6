"""HDF5 export: layout, round trip into a torch model, atomic writes, merging chunks."""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import replace
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest
import torch
from test_figures import make_arch  # synthetic architectures: known accuracies, no training

from weightzoo.train.models import get_family, trial_state_dict
from weightzoo.train.seeds import trial_seed
from weightzoo.train.trainer import TrainSettings, train_trials
from weightzoo.zoo import hdf5 as zoo_io
from weightzoo.zoo.hdf5 import Zoo, write_zoo

DNN = get_family("dnn")
META = {"experiment": "dnn_digits", "model": "dnn", "dataset": "digits"}
ACCS = [0.11, 0.40, 0.81, 0.97, 0.98, 0.70]  # final test accuracies of synthetic trials


def train_chunk(data, arch, trial_ids, epochs=2):
    name = DNN.arch_name(arch)
    seeds = [trial_seed(0, "dnn_digits", name, i) for i in trial_ids]
    result = train_trials(
        DNN, arch, seeds, data, TrainSettings(epochs=epochs, init_std=0.1), progress_file=None
    )
    return result.to_arch_trials(name, arch, trial_ids, seeds)


@pytest.fixture
def zoo_file(tmp_path, digits_tensors):
    data = digits_tensors(torch.float32)
    jobs = [
        (train_chunk(data, {"widths": [16, 8]}, [2, 3]), "a.h5"),
        (train_chunk(data, {"widths": [16, 8]}, [0, 1]), "b.h5"),
        (train_chunk(data, {"widths": [6, 6]}, [0, 1, 2]), "c.h5"),
    ]
    paths = []
    for trials, name in jobs:
        zoo_io.write_job_file(tmp_path / name, trials, META)
        paths.append(tmp_path / name)
    out = tmp_path / "zoo.h5"
    zoo_io.merge_job_files(paths, out, {"trials": 7})
    return out, data


def assert_trials_give_their_recorded_test_accuracy(family, arch, data) -> int:
    """Load each stored trial into the family's reference module and evaluate it; returns
    how many trials were checked."""
    params = {n: torch.from_numpy(v) for n, v in arch.final.items()}
    for k in range(arch.n_trials):
        model = family.reference_module(arch.arch, data.input_shape, 10)
        model.load_state_dict(trial_state_dict(params, k))
        with torch.no_grad():
            predicted = model(data.x_test).argmax(1)
        accuracy = (predicted == data.y_test).double().mean().item()
        assert accuracy == pytest.approx(float(arch.metrics["test_acc"][k, -1]), abs=1e-7)
    return arch.n_trials


def test_exported_weights_give_exactly_the_recorded_test_accuracy(zoo_file):
    path, data = zoo_file
    zoo = zoo_io.read_zoo(path)
    checked = sum(assert_trials_give_their_recorded_test_accuracy(DNN, a, data) for a in zoo.archs)
    assert checked == 7


def test_zoo_layout_is_the_documented_one(zoo_file):
    path, _ = zoo_file
    with h5py.File(path, "r") as f:
        assert f.attrs["format"] == "weightzoo" and f.attrs["schema_version"] == 2
        assert (f.attrs["experiment"], f.attrs["model"], f.attrs["dataset"]) == (
            "dnn_digits",
            "dnn",
            "digits",
        )
        assert set(f["archs"]) == {"h16-8", "h6-6"}
        g = f["archs/h16-8"]
        assert g["trials/trial_id"][()].tolist() == [0, 1, 2, 3]  # chunks merged, sorted
        assert g["weights/final/fc1.weight"].shape == (4, 16, 64)  # [T, out, in]
        assert g["weights/initial/fc3.bias"].shape == (4, 10)
        assert g["metrics/test_acc"].shape == (4, 2)  # [T, epochs]
        assert set(g["dynamics"]) == {"fc1.weight", "fc2.weight", "fc3.weight"}  # the layers
        assert set(g["dynamics/fc2.weight"]) == {"rwc", "fro_norm", "dist_from_init"}
        assert g["dynamics/fc2.weight/rwc"].shape == (4, 2)  # [T, epochs]
        assert set(g["weights"]) == {"initial", "final"}  # no checkpoint_epochs set
        assert g["weights/final/fc1.weight"].compression == "gzip"
        for key in ("versions", "config"):
            assert f.attrs[key].startswith("{")
    zoo = zoo_io.read_zoo(path)
    assert zoo.versions["torch"] == torch.__version__
    assert zoo.config == {"trials": 7}
    table = zoo.trials_table()
    assert len(table) == 7 and set(table["arch"]) == {"h16-8", "h6-6"}


def test_merged_trial_equals_its_job_file(zoo_file, tmp_path):
    path, _ = zoo_file
    job, _ = zoo_io.read_job_file(tmp_path / "a.h5")  # trials 2, 3 of h16-8
    merged = next(a for a in zoo_io.read_zoo(path).archs if a.arch_name == "h16-8")
    for name, values in job.final.items():
        assert np.array_equal(merged.final[name][2:4], values)
    assert np.array_equal(merged.trials["seed"][2:4], job.trials["seed"])


@pytest.mark.skipif(shutil.which("h5ls") is None, reason="h5ls (Debian hdf5-tools) not installed")
def test_h5ls_lists_the_file(zoo_file):
    path, _ = zoo_file
    out = subprocess.run(["h5ls", "-r", str(path)], capture_output=True, text=True, check=True)
    assert "/archs/h6-6/weights/final/fc1.weight" in out.stdout


def test_duplicate_trial_ids_are_refused(tmp_path, digits_tensors):
    data = digits_tensors(torch.float32)
    trials = train_chunk(data, {"widths": [4, 4]}, [0, 1], epochs=1)
    for name in ("x.h5", "y.h5"):
        zoo_io.write_job_file(tmp_path / name, trials, META)
    with pytest.raises(ValueError, match="same trial id"):
        zoo_io.merge_job_files([tmp_path / "x.h5", tmp_path / "y.h5"], tmp_path / "z.h5", {})
    assert not (tmp_path / "z.h5").exists()


def test_a_failed_write_leaves_nothing_behind(tmp_path, digits_tensors, monkeypatch):
    data = digits_tensors(torch.float32)
    trials = train_chunk(data, {"widths": [4, 4]}, [0], epochs=1)

    def broken(group, a):
        group.create_dataset("trials/trial_id", data=a.trials["trial_id"])
        raise OSError("disk full")

    monkeypatch.setattr(zoo_io, "_write_arch_group", broken)
    with pytest.raises(OSError, match="disk full"):
        zoo_io.write_job_file(tmp_path / "job.h5", trials, META)
    assert list(tmp_path.iterdir()) == []


def test_foreign_hdf5_file_is_refused_with_its_name(tmp_path):
    with h5py.File(tmp_path / "other.h5", "w") as f:
        f["x"] = np.zeros(3)
    with pytest.raises(ValueError, match="other.h5.*not a weightzoo"):
        zoo_io.read_zoo(tmp_path / "other.h5")


def test_reading_only_final_weights(zoo_file):
    path, _ = zoo_file
    light = zoo_io.read_zoo(path, weights=("final",))
    assert all(a.initial == {} and "fc1.weight" in a.final for a in light.archs)
    assert all(a.final == {} and a.initial == {} for a in zoo_io.read_zoo(path, weights=()).archs)
    with pytest.raises(ValueError, match="weights must be among"):
        zoo_io.read_zoo(path, weights=("best",))


@pytest.mark.parametrize(
    ("model", "arch"),
    [
        ("cnn", {"channels": 3}),
        ("cnn", {"channels": 3, "head": "gap"}),
        ("vit", {"d_model": 8, "nhead": 2, "patch": 4, "dim_feedforward": 8}),
    ],
    ids=["cnn", "cnn-gap", "vit"],
)
def test_cnn_and_vit_weights_round_trip_to_the_recorded_accuracy(
    model, arch, tmp_path, digits_tensors
):
    family, data = get_family(model), digits_tensors(torch.float32)
    name = family.arch_name(arch)
    seeds = [trial_seed(0, f"{model}_digits", name, i) for i in range(2)]
    settings = TrainSettings(epochs=1, init_std=0.1)
    result = train_trials(family, arch, seeds, data, settings, progress_file=None)
    path = tmp_path / "job.h5"
    meta = {"experiment": f"{model}_digits", "model": model, "dataset": "digits"}
    zoo_io.write_job_file(path, result.to_arch_trials(name, arch, [0, 1], seeds), meta)
    out = tmp_path / "zoo.h5"
    zoo_io.merge_job_files([path], out, {"trials": 2})
    (stored,) = zoo_io.read_zoo(out).archs
    assert assert_trials_give_their_recorded_test_accuracy(family, stored, data) == 2


# ------------------------------------------------------------- varied training settings

FIXTURE_V1 = Path(__file__).parent / "fixtures" / "zoo_v1.h5"
SETTINGS = ["setting_id", "hp_lr", "hp_weight_decay", "hp_optimizer"]


def with_settings(a: zoo_io.ArchTrials, replicates: int = 2) -> zoo_io.ArchTrials:
    """``a`` as a zoo that varies lr, weight_decay (some exactly 0) and optimizer trains it:
    trials k*j .. k*j+k-1 share setting j (``replicates`` = k), as the trainer records."""
    sid = a.trials["trial_id"].astype(np.int64) // replicates
    hparams = {
        "lr": 10.0 ** -(1.0 + sid % 3),  # 0.1, 0.01, 0.001, 0.1, ...
        "weight_decay": np.where(sid % 2 == 0, 0.0, 1e-4),
        "optimizer": np.array(["adam", "sgd_momentum", "rmsprop"])[sid % 3],
        "setting_id": sid,
    }
    return replace(a, hparams=hparams)


def assert_same_hparams(got: dict, expected: dict) -> None:
    assert list(got) == list(expected)  # the writer's order, not HDF5's alphabetical one
    for name, values in expected.items():
        assert got[name].dtype.kind == np.asarray(values).dtype.kind, name
        assert got[name].tolist() == np.asarray(values).tolist(), name


def test_varied_settings_round_trip_through_a_zoo_file(tmp_path):
    varied = with_settings(make_arch((4, 3), ACCS, 1))
    write_zoo(tmp_path / "zoo.h5", Zoo("dnn_mnist", "dnn", "mnist", [varied]))
    with h5py.File(tmp_path / "zoo.h5", "r") as f:
        group = f["archs/h4-3/hparams"]
        assert list(group) == ["lr", "weight_decay", "optimizer", "setting_id"]
        assert group["lr"].dtype == np.float64 and group["setting_id"].dtype == np.int64
        assert h5py.check_string_dtype(group["optimizer"].dtype).encoding == "utf-8"
        assert f.attrs["schema_version"] == 2  # additive: readers of version 2 skip the group
    (back,) = zoo_io.read_zoo(tmp_path / "zoo.h5", weights=()).archs
    assert_same_hparams(back.hparams, varied.hparams)
    assert back.hparams["optimizer"].dtype.kind == "U"  # numpy str, not bytes or objects
    picked = back.select(np.array([5, 0]))
    assert picked.hparams["optimizer"].tolist() == ["rmsprop", "adam"]
    assert picked.hparams["setting_id"].tolist() == [2, 0]


def test_varied_settings_survive_job_files_and_their_merge(tmp_path):
    varied = with_settings(make_arch((4, 3), ACCS, 1))
    paths = []
    for name, index in (("late.h5", [3, 4, 5]), ("early.h5", [0, 1, 2])):
        zoo_io.write_job_file(tmp_path / name, varied.select(np.array(index)), META)
        paths.append(tmp_path / name)
    job, _ = zoo_io.read_job_file(paths[0])
    assert job.hparams["lr"].tolist() == varied.hparams["lr"][3:].tolist()
    merged = zoo_io.merge_job_files(paths, tmp_path / "zoo.h5", {})
    assert_same_hparams(merged.archs[0].hparams, varied.hparams)  # sorted by trial id
    (stored,) = zoo_io.read_zoo(tmp_path / "zoo.h5", weights=()).archs
    assert_same_hparams(stored.hparams, varied.hparams)


def test_job_files_that_vary_different_settings_are_refused(tmp_path):
    varied = with_settings(make_arch((4, 3), ACCS, 1))
    fixed = make_arch((4, 3), ACCS, 1)
    zoo_io.write_job_file(tmp_path / "a.h5", varied.select(np.arange(3)), META)
    zoo_io.write_job_file(tmp_path / "b.h5", fixed.select(np.arange(3, 6)), META)
    with pytest.raises(ValueError, match="h4-3: its job files hold different varied settings"):
        zoo_io.merge_job_files([tmp_path / "a.h5", tmp_path / "b.h5"], tmp_path / "z.h5", {})


@pytest.mark.parametrize(
    ("values", "message"),
    [
        (np.zeros(5), r"hparams\['lr'\] has shape \(5,\), expected \(6,\)"),
        (np.zeros(6, dtype=bool), r"hparams\['lr'\]: dtype bool is not stored"),
        (np.array([1.0, "a"] * 3, dtype=object), r"hparams\['lr'\]: an object array"),
    ],
    ids=["length", "bool", "mixed"],
)
def test_bad_hparams_are_refused_naming_the_setting(tmp_path, values, message):
    bad = replace(make_arch((4, 3), ACCS, 1), hparams={"lr": values})
    with pytest.raises(ValueError, match=f"architecture h4-3: {message}"):
        zoo_io.write_job_file(tmp_path / "job.h5", bad, META)
    assert list(tmp_path.iterdir()) == []


def test_files_without_the_group_read_as_fixed_settings(tmp_path):
    (old,) = zoo_io.read_zoo(FIXTURE_V1, weights=()).archs  # written before the group existed
    assert old.hparams == {}
    fixed = make_arch((4, 3), ACCS, 1)
    write_zoo(tmp_path / "zoo.h5", Zoo("dnn_mnist", "dnn", "mnist", [fixed]))
    with h5py.File(tmp_path / "zoo.h5", "r") as f:
        assert "hparams" not in f["archs/h4-3"]  # fixed settings write no group
    (back,) = zoo_io.read_zoo(tmp_path / "zoo.h5", weights=()).archs
    assert back.hparams == {}
    columns = zoo_io.read_zoo(FIXTURE_V1, weights=()).trials_table().columns
    assert not [c for c in columns if c == "setting_id" or c.startswith("hp_")]


def test_the_trials_table_carries_the_settings_after_the_trial_fields():
    varied = with_settings(make_arch((4, 3), ACCS, 1))
    table = Zoo("dnn_mnist", "dnn", "mnist", [varied]).trials_table()
    at = list(table.columns).index("diverged_epoch") + 1
    assert list(table.columns)[at : at + 4] == SETTINGS
    assert table["hp_lr"].dtype == np.float64 and table["setting_id"].dtype == np.int64
    assert pd.api.types.is_string_dtype(table["hp_optimizer"])
    assert table["hp_optimizer"].tolist() == ["adam"] * 2 + ["sgd_momentum"] * 2 + ["rmsprop"] * 2
    assert table["hp_weight_decay"].tolist() == [0.0, 0.0, 1e-4, 1e-4, 0.0, 0.0]


def test_architectures_without_a_setting_have_it_missing_in_the_trials_table():
    varied = with_settings(make_arch((4, 3), ACCS, 1))
    only_lr = replace(make_arch((6, 5), ACCS, 2), hparams={"lr": np.full(6, 0.5)})
    fixed = make_arch((8, 8), ACCS, 3)
    table = Zoo("dnn_mnist", "dnn", "mnist", [only_lr, fixed, varied]).trials_table()
    at = list(table.columns).index("diverged_epoch") + 1
    assert list(table.columns)[at : at + 4] == SETTINGS  # in the order they first appear
    lr = table.set_index("arch")["hp_lr"]
    assert (lr["h6-5"] == 0.5).all() and lr["h8-8"].isna().all() and lr["h4-3"].notna().all()
    assert table.loc[table["arch"] != "h4-3", "hp_optimizer"].isna().all()
    assert table["setting_id"].dtype == "Int64"  # ids stay integers beside the missing ones
    assert table.loc[table["arch"] == "h4-3", "setting_id"].tolist() == [0, 0, 1, 1, 2, 2]
    plain = Zoo("dnn_mnist", "dnn", "mnist", [fixed]).trials_table()
    assert list(plain.columns) == [c for c in table.columns if c not in SETTINGS]
