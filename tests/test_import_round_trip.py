"""Export then import of zoos *trained* with the demo's architectures (config/demo.yaml:
every DNN width, CNN channel count and ViT head count on `digits`), 2 trials each and 2
epochs with a checkpoint after epoch 1: `weightzoo export ZOO.h5 --all` then `weightzoo
import checkpoints` gives the same features table, bit for bit, computed by the package's
own features code on both files.

What legitimately differs is what the importer cannot know, named in ``DIFFERS``: the
imported zoo's family is ``generic``, which labels a layer by its parameter name (``fc1``,
``encoder.linear1``) where the trained family has its own labels (``FC1``, ``MLP 1``) and
numbers the layers in state-dict order (the ViT's patch embedding is a layer to it, not to
the ViT family); the layer dynamics (``rwc``) are recorded during training and are not in
a checkpoint. Rows are therefore matched by (architecture, trial, weight set, parameter
name), and the imported zoo's extra layers (the ViT's patch embedding) are left aside.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import torch
import yaml

from weightzoo.analysis import features as F
from weightzoo.analysis.groups import assign_groups
from weightzoo.cli import main
from weightzoo.train.models import get_family
from weightzoo.train.seeds import trial_seed
from weightzoo.train.shapes import get_shapes
from weightzoo.train.trainer import TrainSettings, train_trials
from weightzoo.zoo import hdf5 as zoo_io
from weightzoo.zoo.hdf5 import Zoo, read_zoo

DEMO_CONFIG = Path(__file__).resolve().parents[1] / "config" / "demo.yaml"
FAMILIES = ("dnn", "cnn", "vit")
TRIALS_PER_ARCH = 2
SETTINGS = TrainSettings(epochs=2, init_std=0.1, checkpoint_epochs=(1,))

# columns named by the family (model, layer label and number) or recorded only in training
DIFFERS = ("model", "layer", "layer_index", *F.DYNAMICS_COLUMNS)
KEYS = ["arch", "trial_id", "state", "param"]
COMPARED = [c for c in F.COLUMNS if c not in DIFFERS and c not in KEYS]


def demo_experiment(model: str) -> dict:
    """The demo's experiment of this model family (its bands and architectures)."""
    experiments = yaml.safe_load(DEMO_CONFIG.read_text())["experiments"]
    (experiment,) = [e for e in experiments.values() if e["model"] == model]
    return experiment


def train_demo_zoo(model: str, data, folder: Path) -> Path:
    """A zoo of every demo architecture of ``model``, trained and merged as the workflow
    does (one job file an architecture, then the merge)."""
    family = get_family(model)
    experiment = f"{model}_digits"
    meta = {"experiment": experiment, "model": model, "dataset": "digits"}
    jobs = []
    for arch in demo_experiment(model)["architectures"]:
        name = family.arch_name(arch)
        ids = list(range(TRIALS_PER_ARCH))
        seeds = [trial_seed(0, experiment, name, i) for i in ids]
        result = train_trials(family, arch, seeds, data, SETTINGS, progress_file=None)
        jobs.append(folder / f"{name}.h5")
        zoo_io.write_job_file(jobs[-1], result.to_arch_trials(name, arch, ids, seeds), meta)
    out = folder / f"{experiment}.h5"
    zoo_io.merge_job_files(jobs, out, {"trials": TRIALS_PER_ARCH * len(jobs)})
    return out


@pytest.fixture(scope="module")
def demo_zoos(tmp_path_factory, digits_arrays):
    """The three trained zoos, written once for the module."""
    from weightzoo.train.trainer import TensorData

    x_tr, y_tr, x_te, y_te = digits_arrays
    data = TensorData.from_arrays(x_tr, y_tr, x_te, y_te, 16, dtype=torch.float32)
    folder = tmp_path_factory.mktemp("demo_zoos")
    return {model: train_demo_zoo(model, data, folder) for model in FAMILIES}


def features_by_parameter(path: Path, bands: dict) -> pd.DataFrame:
    """The features table of the zoo file at ``path`` (the package's own code, every
    stored weight set), indexed by (arch, trial_id, state, parameter name)."""
    zoo = read_zoo(path, weights=())
    table = F.features_from_file(path, assign_groups(zoo.trials_table(), bands))
    param_of = parameter_of_layer(zoo)
    params = [param_of[(a, label)] for a, label in zip(table["arch"], table["layer"], strict=True)]
    return table.assign(param=params)[[*KEYS, *COMPARED]].set_index(KEYS)


def parameter_of_layer(zoo: Zoo) -> dict[tuple[str, str], str]:
    """(architecture, layer label) -> the layer's parameter name, as the zoo's family reads
    the architecture."""
    family = get_shapes(zoo.model)
    layers = [(a.arch_name, layer) for a in zoo.archs for layer in family.layers(a.arch)]
    return {(arch, layer.label): layer.param for arch, layer in layers}


def export_and_import(zoo: Path, tmp_path: Path, capsys) -> Path:
    """The documented commands: export the whole zoo, import the folder back."""
    folder, back = tmp_path / "exported", tmp_path / "imported.h5"
    assert main(["export", str(zoo), "--all", "-o", str(folder)]) == 0
    command = ["import", "checkpoints", str(folder), "-o", str(back), "--dataset", "digits"]
    assert main([*command, "--experiment", zoo.stem]) == 0
    capsys.readouterr()
    return back


@pytest.mark.parametrize("model", FAMILIES)
def test_a_trained_demo_zoo_exported_and_imported_has_the_same_features_bit_for_bit(
    demo_zoos, model, tmp_path, capsys
):
    original = demo_zoos[model]
    back = export_and_import(original, tmp_path, capsys)
    bands = demo_experiment(model)["bands"]

    before = features_by_parameter(original, bands)
    after = features_by_parameter(back, bands)
    assert set(before.index.get_level_values("state")) == {"initial", "epoch_1", "final"}
    assert after.index.is_unique and before.index.isin(after.index).all()
    pd.testing.assert_frame_equal(after.loc[before.index], before, check_exact=True)


@pytest.mark.parametrize("model", FAMILIES)
def test_a_trained_demo_zoo_keeps_its_trials_and_weights_through_the_round_trip(
    demo_zoos, model, tmp_path, capsys
):
    original_path = demo_zoos[model]
    back_path = export_and_import(original_path, tmp_path, capsys)
    every_set = ("initial", "final", "epoch_*")
    original, back = read_zoo(original_path, every_set), read_zoo(back_path, every_set)
    assert back.model == "generic" and back.experiment == original.experiment
    columns = [c for c in original.trials_table().columns if c != "model"]
    pd.testing.assert_frame_equal(back.trials_table()[columns], original.trials_table()[columns])
    for a, b in zip(original.archs, back.archs, strict=True):
        assert b.arch_name == a.arch_name and b.arch["label"] == a.arch_name
        for state in ("initial", "final", "epoch_1"):
            for name, values in a.weights(state).items():
                assert b.weights(state)[name].tobytes() == values.tobytes(), (state, name)


def test_the_round_trip_script_reports_no_differing_column_and_catches_a_changed_weight(
    demo_zoos, tmp_path, capsys, monkeypatch
):
    """benchmarks/import_round_trip.py (the command docs/import.md runs on the demo's zoos)
    on the trained DNN zoo; then one weight of the imported file changed: the comparison
    names the columns that moved."""
    import h5py

    from weightzoo.zoo.importers.roundtrip import compare_features

    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parents[1] / "benchmarks"))
    import import_round_trip

    assert import_round_trip.main([str(demo_zoos["dnn"]), "--work", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    n_archs = len(demo_experiment("dnn")["architectures"])
    rows = n_archs * TRIALS_PER_ARCH * 3 * 3  # 3 layers, 3 weight sets (initial, epoch 1, final)
    assert f"| dnn_digits.h5 | {n_archs * TRIALS_PER_ARCH} | {rows} |" in out
    assert "| none | 0 |" in out and "features table the same bit for bit: yes" in out

    imported = tmp_path / "dnn_digits.h5"
    with h5py.File(imported, "r+") as f:
        f["archs/h3-3/weights/final/fc2.weight"][0, 0, 0] += 1.0
    differing = compare_features(demo_zoos["dnn"], imported).differing
    assert {"w_mean", "w_std", "fro_norm"} <= set(differing) and "b_mean" not in differing
