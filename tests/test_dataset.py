"""weightzoo.zoo.dataset.ZooDataset: trials of zoo files as a PyTorch Dataset."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from generic_zoo import write_generic_zoo
from test_figures import BANDS, make_arch  # noqa: F401  (a weightzoo DNN zoo)
from torch.utils.data import DataLoader

from weightzoo.zoo.dataset import ZooDataset, pad_collate
from weightzoo.zoo.hdf5 import Zoo, read_zoo, write_zoo


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("dataset")
    write_generic_zoo(root / "imported.h5", n_per_arch=6)
    dnn = Zoo("dnn_digits", "dnn", "digits", [make_arch((4, 3), [0.2, 0.5, 0.9], 1)])
    write_zoo(root / "dnn.h5", dnn)
    return root


def test_an_item_is_a_trials_state_dict_its_accuracy_and_identity(files):
    ds = ZooDataset(files / "imported.h5")
    zoo = read_zoo(files / "imported.h5", weights=("final",))
    assert len(ds) == 12 and ds.archs == [a.arch_name for a in zoo.archs]
    item = ds[7]
    a = zoo.archs[1]
    assert item["arch"] == a.arch_name and item["trial_id"] == int(a.trials["trial_id"][1])
    assert list(item["params"]) == [name for name, _ in a.arch["parameters"]]  # state dict's
    for name, value in item["params"].items():
        np.testing.assert_array_equal(value.numpy(), a.final[name][1])
    assert item["test_acc"].item() == pytest.approx(float(a.metrics["test_acc"][1, -1]))
    assert item["experiment"] == "imported_toy" and item["hparams"] == {}


def test_a_flat_item_carries_each_values_layer_and_parameter(files):
    ds = ZooDataset(files / "imported.h5", flat=True, in_memory=True)
    conv = next(i for i in range(len(ds)) if ds[i]["arch"] == "convnet")
    item, layout = ds[conv], ds.layout(conv)
    assert item["params"].shape == (sum(layout.sizes),) == item["layer_index"].shape
    # the conv net: 0.weight/0.bias -> layer 0, batch norm -> none, 4.weight/4.bias -> layer 1
    per_param = {
        name: set(item["layer_index"][item["param_index"] == i].tolist())
        for i, name in enumerate(layout.names)
    }
    assert per_param["0.weight"] == per_param["0.bias"] == {0}
    assert per_param["1.weight"] == per_param["1.running_mean"] == {-1}
    assert per_param["4.weight"] == per_param["4.bias"] == {1}
    lazy = ZooDataset(files / "imported.h5", flat=True)[conv]["params"]
    torch.testing.assert_close(lazy, item["params"])


def test_several_zoos_their_settings_and_metrics(files):
    ds = ZooDataset([files / "imported.h5", files / "dnn.h5"], metrics=("test_acc", "train_acc"))
    assert len(ds) == 15 and ds[14]["experiment"] == "dnn_digits"
    assert list(ds[14]["params"]) == [
        "fc1.weight",
        "fc1.bias",
        "fc2.weight",
        "fc2.bias",
        "fc3.weight",
        "fc3.bias",
    ]
    assert np.isnan(ds[0]["train_acc"].item())  # the imported zoo has no train accuracy
    assert ds[14]["train_acc"].item() == pytest.approx(0.9)
    np.testing.assert_allclose(ds.targets()[-3:], [0.2, 0.5, 0.9], rtol=1e-6)


def test_splits_are_reproducible_disjoint_and_by_architecture(files):
    ds = ZooDataset(files / "imported.h5")
    train, test = ds.split("trial", test_fraction=0.25, seed=3)
    again = ZooDataset(files / "imported.h5").split("trial", test_fraction=0.25, seed=3)[1]
    assert len(test) == 3 and test.indices == again.indices
    assert set(train.indices).isdisjoint(test.indices)
    assert sorted(train.indices + test.indices) == list(range(12))
    assert ds.split("trial", 0.25, seed=4)[1].indices != test.indices
    train, test = ds.split("arch", test_fraction=0.5, seed=0)
    train_archs = {ds[i]["arch"] for i in train.indices}
    test_archs = {ds[i]["arch"] for i in test.indices}
    assert len(test_archs) == 1 and train_archs.isdisjoint(test_archs) and len(test) == 6


def test_a_dataloader_batches_flat_items_of_two_architectures(files):
    ds = ZooDataset(files / "imported.h5", flat=True)
    batch = next(iter(DataLoader(ds, batch_size=12, collate_fn=pad_collate)))
    longest = max(sum(ds.layout(i).sizes) for i in range(len(ds)))
    assert batch["params"].shape == batch["mask"].shape == (12, longest)
    assert batch["test_acc"].shape == (12,)
    shortest = min(sum(ds.layout(i).sizes) for i in range(len(ds)))
    assert int(batch["mask"].sum(1).min()) == shortest
    assert (batch["layer_index"][~batch["mask"]] == -1).all()


def test_bad_requests_name_what_to_do(files):
    with pytest.raises(ValueError, match="no initial weights"):
        ZooDataset(files / "imported.h5", weights="initial")
    with pytest.raises(ValueError, match="metrics"):
        ZooDataset(files / "imported.h5", metrics=("f1",))
    with pytest.raises(ValueError, match="two architectures"):
        ZooDataset(files / "dnn.h5").split("arch")
    with pytest.raises(ValueError, match="split by one of"):
        ZooDataset(files / "dnn.h5").split("seed")
