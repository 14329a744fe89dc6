"""`weightzoo import`: the three source formats written by the tests in exactly their
layouts, provenance, streaming in chunks, every bad input, and the round trip
export -> import -> the same features table."""

from __future__ import annotations

import gzip
import hashlib
import json
import pickle
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest
import torch
from test_features import make_zoo  # tiny synthetic DNN, CNN and ViT zoos
from test_figures import BANDS
from test_zoo import with_settings  # a zoo that varies its training settings

from weightzoo.analysis import features as F
from weightzoo.analysis.groups import assign_groups
from weightzoo.cli import main
from weightzoo.train.shapes import get_shapes
from weightzoo.zoo.hdf5 import Zoo, read_zoo, write_zoo
from weightzoo.zoo.importers import import_zoo
from weightzoo.zoo.importers.errors import ZooImportError
from weightzoo.zoo.importers.export import export_zoo
from weightzoo.zoo.importers.provenance import ContentHash, file_sha256
from weightzoo.zoo.importers.settings import SettingColumn, settings_as_stored
from weightzoo.zoo.importers.small_cnn_zoo import BUILTIN_LAYOUT
from weightzoo.zoo.importers.sources import source_files

# --------------------------------------------------------------------------- sources


def mlp(seed: int, width: int = 3, dtype=torch.float32) -> dict[str, torch.Tensor]:
    torch.manual_seed(seed)
    net = torch.nn.Sequential(torch.nn.Linear(4, width), torch.nn.ReLU(), torch.nn.Linear(width, 2))
    return {k: v.to(dtype) for k, v in net.state_dict().items()}


def write_checkpoints(root: Path, n: int = 5, **columns) -> Path:
    """A checkpoint folder: trial k's state dict t<k>.pt (initial weights t<k>.init.pt),
    test accuracies 0.5 + k/20, lr and optimizer settings; ``columns`` replace columns."""
    root.mkdir(parents=True, exist_ok=True)
    rows = []
    for k in range(n):
        torch.save(mlp(k), root / f"t{k}.pt")
        torch.save(mlp(100 + k), root / f"t{k}.init.pt")
        rows.append(
            {
                "file": f"t{k}.pt",
                "initial_file": f"t{k}.init.pt",
                "test_acc": 0.5 + k / 20,
                "train_acc": 0.6 + k / 20,
                "lr": 10.0 ** -(1 + k % 2),
                "optimizer": ["adam", "sgd"][k % 2],
            }
        )
    table = pd.DataFrame(rows)
    for name, values in columns.items():
        if values is None:
            table = table.drop(columns=name)
        else:
            table[name] = values
    table.to_csv(root / "trials.csv", index=False)
    return root


def write_small_cnn_zoo(root: Path, n_models: int = 3, gz: bool = True) -> tuple[Path, np.ndarray]:
    """The Small CNN Zoo layout: weights.npy [rows, 4970] (each layer's bias, then its
    kernel, Keras layouts), metrics.csv.gz (modeldir, step, accuracies, config.*), 3
    checkpoints a model at epochs 0, 1 and 2 (config.epochs = 2, 100 steps an epoch)."""
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    rows, weights = [], []
    for m in range(n_models):
        for epoch in (0, 1, 2):
            weights.append(rng.normal(size=4970).astype(np.float32))
            rows.append(
                {
                    "config.activation": ["relu", "tanh"][m % 2],
                    "config.dataset": "mnist",
                    "config.epochs": 2,
                    "config.learning_rate": 0.01 * (m + 1),
                    "config.train_fraction": 1.0,
                    "modeldir": f"/zoo/mnist/{m}",
                    "step": epoch * 100,
                    "test_accuracy": 0.1 + 0.3 * epoch + 0.01 * m,
                    "test_loss": 2.0 - 0.5 * epoch,
                    "train_accuracy": 0.12 + 0.3 * epoch,
                    "train_loss": 2.1 - 0.5 * epoch,
                }
            )
    matrix = np.stack(weights)
    np.save(root / "weights.npy", matrix)
    table = pd.DataFrame(rows)
    if gz:
        with gzip.open(root / "metrics.csv.gz", "wt") as f:
            table.to_csv(f, index=False)
    else:
        table.to_csv(root / "metrics.csv", index=False)
    layout = pd.DataFrame(
        [
            {
                "varname": f"sequential/{'dense' if n.startswith('dense') else 'conv2d_' + n[4]}/"
                f"{'kernel' if n.endswith('weight') else 'bias'}:0",
                "start_idx": s,
                "end_idx": e,
                "shape": str(shape),
            }
            for n, s, e, shape in BUILTIN_LAYOUT
        ]
    )
    layout.to_csv(root / "layout.csv", index=False)
    return root, matrix


def write_model_zoos(root: Path, n_models: int = 3, epochs: int = 3, percent=False) -> Path:
    """The Model Zoos layout: <model>/checkpoint_<e>/checkpoints (e = 0..epochs),
    result.json (one JSON line an epoch), params.json."""
    for m in range(n_models):
        model = root / f"NN_tune_trainable_{m:05d}_{m}_seed={m}"
        for e in range(epochs + 1):
            (model / f"checkpoint_{e:06d}").mkdir(parents=True)
            torch.save(mlp(10 * m + e), model / f"checkpoint_{e:06d}" / "checkpoints")
        scale = 100 if percent else 1
        lines = [
            {
                "test_acc": scale * (0.2 + 0.2 * e + 0.01 * m),
                "train_acc": scale * (0.3 + 0.2 * e),
                "loss_test": 1.0 / e,
                "training_iteration": e,
                "config": {},
            }
            for e in range(1, epochs + 1)
        ]
        (model / "result.json").write_text("".join(json.dumps(x) + "\n" for x in lines))
        params = {"seed": m, "optim": {"lr": 0.001 * (m + 1), "wd": 0.0}, "model": {"nlin": "tanh"}}
        (model / "params.json").write_text(json.dumps(params))
    (root / "basic-variant-state.json").write_text("{}")  # Ray Tune's own file beside them
    return root


# --------------------------------------------------------------------------- formats


def test_checkpoint_folder_imports_weights_accuracies_and_settings(tmp_path):
    src = write_checkpoints(tmp_path / "ck")
    done = import_zoo("checkpoints", src, tmp_path / "z.h5", dataset="digits", chunk_trials=2)
    assert done.trials == 5 and len(done.archs) == 1
    zoo = read_zoo(tmp_path / "z.h5")
    assert (zoo.model, zoo.dataset, zoo.experiment) == ("generic", "digits", "z")
    (a,) = zoo.archs
    assert a.arch["label"] is None
    assert a.arch["parameters"] == [
        ["0.weight", [3, 4]],
        ["0.bias", [3]],
        ["2.weight", [2, 3]],
        ["2.bias", [2]],
    ]
    assert a.arch_name == get_shapes("generic").arch_name(a.arch)
    for k in range(5):
        for name, value in mlp(k).items():
            np.testing.assert_array_equal(a.final[name][k], value.numpy())
        np.testing.assert_array_equal(a.initial["0.weight"][k], mlp(100 + k)["0.weight"].numpy())
    np.testing.assert_allclose(a.metrics["test_acc"][:, -1], 0.5 + np.arange(5) / 20, rtol=1e-6)
    assert a.metrics["test_acc"].shape == (5, 1) and np.isnan(a.metrics["test_loss"]).all()
    assert a.trials["trial_id"].tolist() == [0, 1, 2, 3, 4]
    assert a.trials["seed"].tolist() == [-1] * 5 and not a.trials["diverged"].any()
    assert list(a.hparams) == ["lr", "optimizer", "setting_id"]
    assert a.hparams["optimizer"].tolist() == ["adam", "sgd"] * 2 + ["adam"]
    assert a.hparams["setting_id"].tolist() == [0, 1, 0, 1, 0]


def test_percent_accuracies_are_stored_as_fractions(tmp_path):
    src = write_checkpoints(
        tmp_path / "ck", test_acc=[50.0, 60, 70, 80, 90.5], train_acc=[55.0, 65, 75, 85, 95]
    )
    import_zoo("checkpoints", src, tmp_path / "z.h5")
    a = read_zoo(tmp_path / "z.h5").archs[0]
    np.testing.assert_allclose(a.metrics["test_acc"][:, 0], [0.5, 0.6, 0.7, 0.8, 0.905], rtol=1e-6)
    with h5py.File(tmp_path / "z.h5") as f:
        assert json.loads(f.attrs["provenance"])["accuracy_unit"] == "percent"


def test_safetensors_files_and_labels_make_architectures(tmp_path):
    from safetensors.torch import save_file

    root = tmp_path / "st"
    root.mkdir()
    rows = []
    for k in range(4):
        width = 3 if k < 2 else 5
        save_file(mlp(k, width), root / f"t{k}.safetensors")
        rows.append(
            {
                "file": f"t{k}.safetensors",
                "test_acc": 0.9,
                "arch": f"w{width}",
                "trial_id": 10 - k,
                "seed": 7 + k,
            }
        )
    pd.DataFrame(rows).to_csv(root / "trials.csv", index=False)
    import_zoo("checkpoints", root, tmp_path / "z.h5")
    zoo = read_zoo(tmp_path / "z.h5")
    by_name = {a.arch_name: a for a in zoo.archs}
    assert sorted(by_name) == ["w3", "w5"]
    assert by_name["w3"].arch["label"] == "w3" and by_name["w5"].final["0.weight"].shape == (
        2,
        5,
        4,
    )
    assert by_name["w5"].trials["trial_id"].tolist() == [7, 8]  # sorted by trial id
    assert by_name["w5"].trials["seed"].tolist() == [10, 9]


def test_per_epoch_metrics_and_checkpoints(tmp_path):
    src = write_checkpoints(tmp_path / "ck", n=2)
    table = pd.read_csv(src / "trials.csv")
    for k in range(2):
        torch.save(mlp(50 + k), src / f"t{k}.e1.pt")
    table["epoch_1_file"] = [f"t{k}.e1.pt" for k in range(2)]
    table["test_acc_epoch_1"] = [0.2, 0.3]
    table["test_acc_epoch_2"] = table["test_acc"]
    table.to_csv(src / "trials.csv", index=False)
    import_zoo("checkpoints", src, tmp_path / "z.h5")
    a = read_zoo(tmp_path / "z.h5", weights=("final", "initial", "epoch_*")).archs[0]
    assert a.metrics["test_acc"].shape == (2, 2)
    np.testing.assert_allclose(a.metrics["test_acc"][:, 0], [0.2, 0.3], rtol=1e-6)
    np.testing.assert_array_equal(a.checkpoints[1]["2.bias"][1], mlp(51)["2.bias"].numpy())


def test_small_cnn_zoo_layout(tmp_path):
    src, matrix = write_small_cnn_zoo(tmp_path / "mnist")
    import_zoo("small-cnn-zoo", src, tmp_path / "z.h5", dataset="mnist")
    zoo = read_zoo(tmp_path / "z.h5", weights=("final", "initial", "epoch_*"))
    (a,) = zoo.archs
    assert a.n_trials == 3 and a.checkpoint_epochs == [1]
    names = [n for n, _ in a.arch["parameters"]]
    assert names[:2] == ["sequential.conv2d_1.weight", "sequential.conv2d_1.bias"]
    conv1 = a.final["sequential.conv2d_1.weight"]
    assert conv1.shape == (3, 16, 1, 3, 3)  # torch layout [out, in, kh, kw]
    final_row = matrix[2]  # model 0, epoch 2
    np.testing.assert_array_equal(
        conv1[0], final_row[16:160].reshape(3, 3, 1, 16).transpose(3, 2, 0, 1)
    )
    np.testing.assert_array_equal(
        a.final["sequential.dense.weight"][0], final_row[4810:].reshape(16, 10).T
    )
    np.testing.assert_array_equal(a.initial["sequential.conv2d_1.bias"][1], matrix[3][:16])
    np.testing.assert_array_equal(
        a.checkpoints[1]["sequential.dense.bias"][0], matrix[1][4800:4810]
    )
    np.testing.assert_allclose(a.metrics["test_acc"][:, -1], [0.7, 0.71, 0.72], rtol=1e-6)
    np.testing.assert_allclose(a.metrics["test_acc"][:, 0], [0.4, 0.41, 0.42], rtol=1e-6)
    assert list(a.hparams) == ["activation", "learning_rate", "setting_id"]  # the varying ones
    layers = [layer.param for layer in get_shapes("generic").layers(a.arch)]
    assert len(layers) == 4  # three convs and the dense layer


def test_small_cnn_zoo_matrix_rows_are_read_from_the_file_in_either_order(tmp_path):
    """The matrix is read a row at a time with file reads (a memory map would keep every
    row read resident); a matrix saved in Fortran order reads to the same zoo."""
    from weightzoo.zoo.importers.small_cnn_zoo import MatrixRows

    src, matrix = write_small_cnn_zoo(tmp_path / "mnist")
    with MatrixRows(src / "weights.npy", np.load(src / "weights.npy", mmap_mode="r")) as rows:
        assert rows.fortran is None
        for r in (0, 4, len(matrix) - 1):
            np.testing.assert_array_equal(rows[r], matrix[r])
    import_zoo("small-cnn-zoo", src, tmp_path / "c.h5")
    np.save(src / "weights.npy", np.asfortranarray(matrix))
    import_zoo("small-cnn-zoo", src, tmp_path / "f.h5")
    (c,) = read_zoo(tmp_path / "c.h5", weights=("final", "initial", "epoch_*")).archs
    (f,) = read_zoo(tmp_path / "f.h5", weights=("final", "initial", "epoch_*")).archs
    for state in ("final", "initial", "epoch_1"):
        for name, values in c.weights(state).items():
            np.testing.assert_array_equal(f.weights(state)[name], values)


def test_small_cnn_zoo_without_layout_file_uses_the_readme_network(tmp_path):
    src, _ = write_small_cnn_zoo(tmp_path / "mnist", gz=False)
    (src / "layout.csv").unlink()
    import_zoo("small-cnn-zoo", src, tmp_path / "z.h5")
    (a,) = read_zoo(tmp_path / "z.h5").archs
    assert a.final["conv2.weight"].shape == (3, 16, 16, 3, 3)


def test_model_zoos_layout(tmp_path):
    src = write_model_zoos(tmp_path / "zoo", percent=True)
    import_zoo("model-zoos", src, tmp_path / "z.h5", dataset="mnist")
    (a,) = read_zoo(tmp_path / "z.h5", weights=("final", "initial", "epoch_*")).archs
    assert a.n_trials == 3 and a.checkpoint_epochs == [1, 2]
    np.testing.assert_array_equal(a.initial["0.weight"][1], mlp(10)["0.weight"].numpy())
    np.testing.assert_array_equal(a.final["0.weight"][1], mlp(13)["0.weight"].numpy())
    np.testing.assert_array_equal(a.checkpoints[2]["2.bias"][2], mlp(22)["2.bias"].numpy())
    np.testing.assert_allclose(a.metrics["test_acc"][2], [0.42, 0.62, 0.82], rtol=1e-6)
    np.testing.assert_allclose(a.metrics["test_loss"][0], [1.0, 0.5, 1 / 3], rtol=1e-6)
    assert a.trials["seed"].tolist() == [0, 1, 2]
    assert list(a.hparams) == ["optim.lr", "setting_id"]  # wd and nlin do not vary


# --------------------------------------------------------------------------- provenance


def test_provenance_names_format_path_content_hash_and_importer(tmp_path):
    src = write_checkpoints(tmp_path / "ck")
    import_zoo("checkpoints", src, tmp_path / "a.h5")
    with h5py.File(tmp_path / "a.h5") as f:
        prov = json.loads(f.attrs["provenance"])
        assert f.attrs["model"] == "generic" and f.attrs["dataset"] == "unknown"
    assert prov["format"] == "checkpoints" and prov["path"] == str(src)
    assert prov["importer"].startswith("weightzoo ") and prov["files"] == 11  # 10 .pt + CSV
    assert len(prov["content_sha256"]) == 64 and prov["imported_at"]
    import_zoo("checkpoints", src, tmp_path / "b.h5", chunk_trials=1)
    with h5py.File(tmp_path / "b.h5") as f:
        assert json.loads(f.attrs["provenance"])["content_sha256"] == prov["content_sha256"]
    torch.save(mlp(99), src / "t3.pt")  # one changed trial changes the hash
    import_zoo("checkpoints", src, tmp_path / "c.h5")
    with h5py.File(tmp_path / "c.h5") as f:
        assert json.loads(f.attrs["provenance"])["content_sha256"] != prov["content_sha256"]


def test_content_hash_is_over_each_file_read_in_reading_order(tmp_path):
    """Each trial's files in trial order (final, then initial), then the CSV: one line
    "<sha256>  <relative path>" a file, hashed as the import reads them."""
    src = write_checkpoints(tmp_path / "ck", n=2)
    summary = import_zoo("checkpoints", src, tmp_path / "a.h5")
    names = ["t0.pt", "t0.init.pt", "t1.pt", "t1.init.pt", "trials.csv"]
    lines = "".join(f"{file_sha256(src / n)}  {n}\n" for n in names)
    assert summary.provenance["content_sha256"] == hashlib.sha256(lines.encode()).hexdigest()
    assert summary.provenance["files"] == 5
    running = ContentHash()
    for n in names:
        running.add(n, file_sha256(src / n))
    assert running.hexdigest() == summary.provenance["content_sha256"]


def test_source_files_list_what_the_import_reads(tmp_path):
    src = write_checkpoints(tmp_path / "ck", n=2)
    assert [Path(p).name for p in source_files("checkpoints", src)] == [
        "trials.csv",
        "t0.init.pt",
        "t0.pt",
        "t1.init.pt",
        "t1.pt",
    ]
    zoos = write_model_zoos(tmp_path / "mz", n_models=1, epochs=1)
    assert len(source_files("model-zoos", zoos)) == 4  # 2 checkpoints, result, params


# --------------------------------------------------------------------------- streaming


@pytest.mark.parametrize("chunk", [1, 3, 100])
def test_the_writer_holds_at_most_a_chunk_of_trials_and_writes_the_same_file(tmp_path, chunk):
    src = write_checkpoints(tmp_path / "ck", n=7)
    done = import_zoo("checkpoints", src, tmp_path / f"z{chunk}.h5", chunk_trials=chunk)
    assert done.max_buffered == min(chunk, 7)
    reference = read_zoo(tmp_path / f"z{chunk}.h5")
    import_zoo("checkpoints", src, tmp_path / "one.h5", chunk_trials=1)
    for name, values in read_zoo(tmp_path / "one.h5").archs[0].final.items():
        np.testing.assert_array_equal(values, reference.archs[0].final[name])


def test_the_writer_appends_ids_and_metrics_a_chunk_at_a_time(tmp_path):
    """Per-trial ids, seeds, divergence and metrics reach the file with each chunk: the
    writer keeps no more of them than of the weights, however many trials come."""
    from weightzoo.zoo.importers.records import TrialRecord
    from weightzoo.zoo.importers.writer import ZooWriter

    def trial(k: int) -> TrialRecord:
        weights = {n: v.numpy() for n, v in mlp(k).items()}
        metrics = {"test_acc": np.array([0.5, 0.5 + k / 100])}
        return TrialRecord(f"trial {k}", {"final": weights}, metrics, trial_id=10 * k, seed=k)

    with h5py.File(tmp_path / "z.h5", "w") as f:
        writer = ZooWriter(f, epochs=2, weight_sets=["final"], hparam_names=[], chunk_trials=3)
        for k in range(7):
            writer.add(trial(k))
            (arch,) = writer.archs.values()
            assert len(arch.pending) == len(arch.buffered) <= 3
            assert len(arch.group["trials/trial_id"]) == arch.written == 3 * ((k + 1) // 3)
        with pytest.raises(ZooImportError, match=r"trial 2: trial_id 20 .* after trial_id 60"):
            writer.add(trial(2))
        writer.finish()
        group = f[f"archs/{arch.name}"]
        np.testing.assert_array_equal(group["trials/trial_id"][()], 10 * np.arange(7))
        np.testing.assert_array_equal(group["trials/seed"][()], np.arange(7))
        acc = np.array([0.5 + k / 100 for k in range(7)], dtype=np.float32)
        np.testing.assert_array_equal(group["metrics/test_acc"][:, 1], acc)
        assert np.isnan(group["metrics/train_acc"][()]).all()


def settings_as_python_lists(hparams: dict[str, list]) -> dict[str, np.ndarray]:
    """The rule the compact settings keep: one list of Python values a setting, names
    when any value is a name, setting ids by the text of each combination."""
    out = {}
    for name, values in hparams.items():
        if any(isinstance(v, str) for v in values):
            out[name] = np.asarray(["" if v is None else str(v) for v in values], dtype=str)
        else:
            out[name] = np.asarray([np.nan if v is None else v for v in values])
    if "setting_id" in out:
        out["setting_id"] = out["setting_id"].astype(np.int64)
    else:
        combos = list(zip(*(map(str, v) for v in out.values()), strict=True))
        first: dict = {}
        out["setting_id"] = np.asarray([first.setdefault(c, len(first)) for c in combos])
    return out


@pytest.mark.parametrize(
    "hparams",
    [
        {"lr": [0.1, 0.01, 0.1, None, float("nan")], "opt": ["adam", "sgd", "adam", None, "sgd"]},
        {"width": [np.int64(2**62 + 1), 3, 3, 4, 2**62 + 1], "act": ["relu"] * 5},
        {"width": [2, 3, None, 3, 2], "zero": [0.0, -0.0, 0.0, -0.0, 0.0]},
        {"mixed": ["a", 3, 2.5, None, "3"], "lr": [1e-3, 1e-3, 1e-2, 1e-3, 1e-3]},
        {"lr": [0.5, 0.25, 0.5, 0.25, 0.5], "setting_id": [7, 8, 7, 8, 7]},
    ],
)
def test_compact_settings_store_what_python_lists_would(hparams):
    columns = {}
    for name, values in hparams.items():
        for v in values:
            columns.setdefault(name, SettingColumn()).append(v)
    got, expected = settings_as_stored(columns), settings_as_python_lists(hparams)
    assert list(got) == list(expected)
    for name in expected:
        assert got[name].dtype == expected[name].dtype, name
        np.testing.assert_array_equal(got[name], expected[name])
        if expected[name].dtype.kind == "f":  # -0.0 stays -0.0
            assert np.signbit(got[name]).tolist() == np.signbit(expected[name]).tolist()


# --------------------------------------------------------------------------- bad input


def refused(tmp_path, src, match, **options):
    out = tmp_path / "bad.h5"
    with pytest.raises(ZooImportError, match=match):
        import_zoo(options.pop("fmt", "checkpoints"), src, out, **options)
    assert not out.exists()
    assert not [p for p in tmp_path.iterdir() if ".tmp-" in p.name], "a temporary file is left"


class Payload:  # pickled by reference: loading it would import and run this module's code
    def __reduce__(self):
        return (print, ("code ran while loading",))


def test_bad_inputs_are_refused_naming_the_file_or_row(tmp_path):
    ck = lambda name, **c: write_checkpoints(tmp_path / name, **c)  # noqa: E731
    refused(tmp_path, ck("noacc", test_acc=None), r"trials\.csv: no test_acc column")
    refused(
        tmp_path,
        ck("nofile", file=["t0.pt", "t1.pt", "gone.pt", "t3.pt", "t4.pt"]),
        r"trials\.csv line 4 \(final\): .*gone\.pt: no such file",
    )
    src = ck("broken")
    (src / "t2.pt").write_bytes(b"not a torch file")
    refused(tmp_path, src, r"trials\.csv line 4 \(final\): .*t2\.pt: unreadable")
    src = ck("dup", trial_id=[0, 1, 2, 1, 4])
    refused(tmp_path, src, r"line 5: trial_id 1 is also on line 3")
    # with labels: ids repeat across labels freely; the first repeat in CSV order is named
    labels = ["a", "b", "a", "b", "a"]
    src = ck("duplabel", arch=labels, trial_id=[3, 3, 1, 0, 1], file=["t0.pt"] * 5)
    refused(tmp_path, src, r"line 6: trial_id 1 of architecture a is also on line 4;")
    src = ck("emptyfile", file=["t0.pt", "t1.pt", " ", "t3.pt", "t4.pt"])
    refused(tmp_path, src, r"trials\.csv line 4: file is empty; name the trial's final state")
    refused(
        tmp_path,
        ck("range", test_acc=[0.5, 0.6, 120.0, 0.7, 0.8]),
        r"trials\.csv line 4: accuracy 120 is outside \[0, 1\].*--accuracy-unit",
    )
    refused(
        tmp_path,
        ck("unit", test_acc=[0.5, 0.6, 50.0, 0.7, 0.8]),
        r"line 4: accuracy 50 is outside \[0, 1\], the range of the stated unit fraction",
        accuracy_unit="fraction",
    )
    refused(tmp_path, ck("neg", test_acc=[0.5, -0.1, 0.5, 0.7, 0.8]), r"line 3: accuracy -0\.1")


def test_a_pickle_with_code_is_refused_and_never_run(tmp_path, capsys):
    src = write_checkpoints(tmp_path / "ck")
    torch.save({"0.weight": Payload()}, src / "t1.pt")
    refused(tmp_path, src, r"line 3 \(final\): .*t1\.pt: refused: not a weights-only file")
    assert "code ran" not in capsys.readouterr().out
    torch.save(torch.nn.Linear(2, 2), src / "t1.pt")  # a whole module, not its state dict
    refused(tmp_path, src, r"t1\.pt: refused: not a weights-only file")


def test_state_dicts_that_do_not_fit_their_architecture_are_refused(tmp_path):
    src = write_checkpoints(tmp_path / "keys", arch="mlp")
    state = mlp(3)
    state["extra.weight"] = torch.zeros(2, 2)
    torch.save(state, src / "t3.pt")
    refused(
        tmp_path,
        src,
        r"line 5 \(t3\.pt\): the final state dict's keys differ from the "
        r"others of architecture label 'mlp' \(first: .*line 2.*extra \['extra\.weight'\]",
    )
    src = write_checkpoints(tmp_path / "dtype")
    torch.save(mlp(2, dtype=torch.float64), src / "t2.pt")
    refused(tmp_path, src, r"line 4 .*mixed dtypes")
    src = write_checkpoints(tmp_path / "mixed")
    state = mlp(1)
    state["2.bias"] = state["2.bias"].double()
    torch.save(state, src / "t1.pt")
    refused(tmp_path, src, r"t1\.pt: mixed dtypes \(0\.weight: float32")
    src = write_checkpoints(tmp_path / "int")
    torch.save({**mlp(1), "bn.num_batches_tracked": torch.tensor(3)}, src / "t1.pt")
    refused(tmp_path, src, r"'bn\.num_batches_tracked' is int64.*drop integer buffers")
    src = write_checkpoints(tmp_path / "nested")
    torch.save({"model": mlp(1), "epoch": 3}, src / "t1.pt")
    refused(tmp_path, src, r"key 'model' holds a dict, not a tensor")


def test_non_finite_weights_mark_the_trial_diverged(tmp_path):
    src = write_checkpoints(tmp_path / "ck", test_acc=[0.5, np.nan, 0.6, 0.7, 0.8])
    state = mlp(1)
    state["0.weight"][0, 0] = float("nan")
    torch.save(state, src / "t1.pt")
    import_zoo("checkpoints", src, tmp_path / "z.h5")
    a = read_zoo(tmp_path / "z.h5").archs[0]
    assert a.trials["diverged"].tolist() == [False, True, False, False, False]
    assert a.trials["diverged_epoch"].tolist() == [-1, 0, -1, -1, -1]


def test_bad_small_cnn_and_model_zoos_inputs(tmp_path):
    refused(tmp_path, tmp_path / "nothing", r"not a Small CNN Zoo folder", fmt="small-cnn-zoo")
    src, _ = write_small_cnn_zoo(tmp_path / "short")
    np.save(src / "weights.npy", np.zeros((4, 4970), np.float32))
    refused(
        tmp_path, src, r"metrics\.csv\.gz: 9 rows, the weight matrix has 4", fmt="small-cnn-zoo"
    )
    empty = tmp_path / "empty"
    empty.mkdir()
    refused(tmp_path, empty, r"no model folders", fmt="model-zoos")
    src = write_model_zoos(tmp_path / "mz")
    bad = next(src.glob("NN_tune_trainable_00001_*/checkpoint_000002"))
    torch.save(Payload(), bad / "checkpoints")
    refused(tmp_path, src, r"model NN_tune_trainable_00001.*refused", fmt="model-zoos")
    with open(bad / "checkpoints", "wb") as f:  # a plain pickle of code, not torch's zip
        pickle.dump(Payload(), f, protocol=2)
    refused(tmp_path, src, r"model NN_tune_trainable_00001.*refused", fmt="model-zoos")


# --------------------------------------------------------------------------- the CLI


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_import_and_its_one_line_errors(tmp_path, capsys):
    src = write_checkpoints(tmp_path / "ck")
    code, out, err = run(
        capsys,
        "import",
        "checkpoints",
        src,
        "-o",
        tmp_path / "z.h5",
        "--dataset",
        "digits",
        "--experiment",
        "mine",
    )
    assert code == 0, err
    assert "wrote" in out and "5 trials in 1 architecture" in out and "fractions" in out
    assert read_zoo(tmp_path / "z.h5").experiment == "mine"
    code, out, _ = run(capsys, "info", tmp_path / "z.h5")
    assert code == 0 and "source      " in out and "format=checkpoints" in out
    code, _, err = run(
        capsys,
        "import",
        "checkpoints",
        src,
        "-o",
        tmp_path / "y.h5",
        "--csv",
        tmp_path / "missing.csv",
    )
    assert code == 2 and err.count("\n") == 1 and "missing.csv: no such file" in err
    code, _, err = run(capsys, "import", "checkpoints", tmp_path / "nope", "-o", tmp_path / "y.h5")
    assert code == 2 and "no such file or folder" in err


def test_cli_export_all_needs_a_new_folder(tmp_path, capsys):
    zoo, _ = make_zoo("dnn")
    write_zoo(tmp_path / "zoo.h5", zoo)
    code, out, err = run(capsys, "export", tmp_path / "zoo.h5", "--all", "-o", tmp_path / "out")
    assert code == 0, err
    assert (tmp_path / "out" / "trials.csv").is_file() and "12 trials of 2 architectures" in out
    code, _, err = run(capsys, "export", tmp_path / "zoo.h5", "--all", "-o", tmp_path / "out")
    assert code == 2 and "not an empty folder" in err
    code, _, err = run(
        capsys, "export", tmp_path / "zoo.h5", "--all", "--arch", "h4-3", "-o", tmp_path / "o2"
    )
    assert code == 2 and "drop --arch" in err


def test_exporting_one_trial_of_an_imported_zoo_says_what_to_do_instead(tmp_path, capsys):
    """One trial is loaded into its model before it is written; an imported zoo has no
    model family to build one: the error names the zoo and the two ways that work."""
    src = write_checkpoints(tmp_path / "ck")
    zoo = tmp_path / "mlps.h5"
    assert run(capsys, "import", "checkpoints", src, "-o", zoo)[0] == 0
    (arch,) = read_zoo(zoo, weights=()).archs
    out = tmp_path / "t.pt"
    code, _, err = run(capsys, "export", zoo, "--arch", arch.arch_name, "--trial", "0", "-o", out)
    assert code == 2 and err.count("\n") == 1 and not out.exists()
    assert f"{zoo}: zoo mlps is of the 'generic' family" in err
    assert "cannot rebuild a model" in err
    assert f"weightzoo export {zoo} --all -o DIR" in err
    assert f"weightzoo evaluate {zoo} --data DATASET --model package.module:Class" in err
    code, _, err = run(capsys, "export", zoo, "--all", "-o", tmp_path / "all")
    assert code == 0, err  # what the error proposes works


# --------------------------------------------------------------------------- round trip

STATS = [c for c in F.COLUMNS if c not in F.DYNAMICS_COLUMNS]  # dynamics: training records
DIFFERS = ("model", "layer", "layer_index")  # generic family: its own labels and layer order


def keyed_by_parameter(df: pd.DataFrame, zoo: Zoo) -> pd.DataFrame:
    """The table indexed by (arch, trial_id, state, parameter name), without the columns a
    generic zoo names its own way."""
    family = get_shapes(zoo.model)
    params = {}
    for a in zoo.archs:
        for layer in family.layers(a.arch):
            params[(a.arch_name, layer.label)] = layer.param
    df = df.assign(param=[params[(a, lab)] for a, lab in zip(df["arch"], df["layer"], strict=True)])
    keys = ["arch", "trial_id", "state", "param"]
    return df[[*keys, *(c for c in STATS if c not in DIFFERS and c not in keys)]].set_index(keys)


@pytest.mark.parametrize("model", ["dnn", "cnn", "vit"])
def test_export_then_import_gives_the_same_features_table_bit_for_bit(tmp_path, model):
    zoo, _ = make_zoo(model)
    if model == "dnn":
        zoo.archs = [with_settings(a) for a in zoo.archs]  # settings round trip too
    write_zoo(tmp_path / "zoo.h5", zoo)
    export_zoo(tmp_path / "zoo.h5", tmp_path / "folder")
    import_zoo(
        "checkpoints",
        tmp_path / "folder",
        tmp_path / "back.h5",
        dataset=zoo.dataset,
        experiment=zoo.experiment,
    )
    back = read_zoo(tmp_path / "back.h5")
    original = read_zoo(tmp_path / "zoo.h5")
    columns = [c for c in original.trials_table().columns if c != "model"]
    pd.testing.assert_frame_equal(back.trials_table()[columns], original.trials_table()[columns])

    groups = assign_groups(original.trials_table(), BANDS)
    groups_back = assign_groups(back.trials_table(), BANDS)
    before = keyed_by_parameter(F.features_from_file(tmp_path / "zoo.h5", groups), original)
    after = keyed_by_parameter(F.features_from_file(tmp_path / "back.h5", groups_back), back)
    assert after.index.is_unique and before.index.isin(after.index).all()
    pd.testing.assert_frame_equal(after.loc[before.index], before, check_exact=True)


# --------------------------------------------------------------------------- config


def imported_config(**source_experiment) -> dict:
    experiment = {"source": {"format": "checkpoints", "path": "imports/mlp"}, "bands": BANDS}
    return {"experiments": {"mlp": {**experiment, **source_experiment}}}


def test_a_source_experiment_is_validated_as_generic_and_plans_no_training():
    from weightzoo.config import plan_jobs, validate_config

    config = validate_config(imported_config())
    assert config["experiments"]["mlp"]["model"] == "generic"
    assert config["experiments"]["mlp"]["dataset"] == "unknown"
    assert plan_jobs(config) == []
    named = imported_config(source={"format": "model-zoos", "path": "z", "dataset": "mnist"})
    assert validate_config(named)["experiments"]["mlp"]["dataset"] == "mnist"


@pytest.mark.parametrize(
    "change, words",
    [
        ({"model": "dnn"}, r"experiments\.mlp: model beside source: an imported experiment"),
        ({"trials": 3}, r"trials beside source"),
        ({"bands": None}, r"experiments\.mlp\.bands: missing"),
        ({"source": {"format": "npz", "path": "x"}}, r"experiments\.mlp\.source\.format"),
        ({"source": {"format": "checkpoints"}}, r"'path' is a required property"),
    ],
)
def test_bad_source_experiments_fail_naming_the_key(change, words):
    from weightzoo.config import ConfigError, validate_config

    config = imported_config(**change)
    config["experiments"]["mlp"] = {
        k: v for k, v in config["experiments"]["mlp"].items() if v is not None
    }
    with pytest.raises(ConfigError, match=words):
        validate_config(config)


@pytest.mark.parametrize("layout", ["checkpoints", "small-cnn-zoo"])
def test_bench_import_prints_the_rate_and_peak_memory(capsys, monkeypatch, layout):
    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parents[1] / "benchmarks"))
    import bench_import

    bench_import.main(["--trials", "3", "6", "--chunk-trials", "2", "--layout", layout])
    out = capsys.readouterr().out
    assert f"{layout}: 6 trials x 4970 parameters" in out
    assert "| trials | chunk | import s | trials/s | RSS after imports MiB | peak RSS MiB |" in out
    assert "| 3 | 2 |" in out and "| 6 | 2 |" in out
    assert "peak RSS growth from 3 to 6 trials:" in out and "peak RSS target (< 1024 MiB" in out
