"""The batched trainer: per-trial independence, equality with the textbook loop, divergence."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from weightzoo.train.models import get_family
from weightzoo.train.reference import train_reference
from weightzoo.train.seeds import trial_seed
from weightzoo.train.trainer import (
    EnsembleTrainer,
    TensorData,
    TrainSettings,
    needs_shadow_trial,
    train_trials,
)

DNN = get_family("dnn")
ARCH = {"widths": [24, 12]}


def seeds(n, start=0):
    return [trial_seed(0, "test", "h24-12", i) for i in range(start, start + n)]


def test_trial_alone_equals_trial_inside_ensemble_bit_for_bit(digits_tensors):
    data = digits_tensors(torch.float32)
    settings = TrainSettings(epochs=3, init_std=0.1)
    ensemble_seeds = seeds(6)
    k = 3
    together = train_trials(DNN, ARCH, ensemble_seeds, data, settings, progress_file=None)
    alone = train_trials(DNN, ARCH, [ensemble_seeds[k]], data, settings, progress_file=None)
    # a different neighbourhood and position: the same trial as element 0 of 4
    shuffled = train_trials(
        DNN, ARCH, [ensemble_seeds[k], *seeds(3, start=10)], data, settings, progress_file=None
    )
    for name in together.final:
        assert np.array_equal(together.final[name][k], alone.final[name][0]), name
        assert np.array_equal(together.final[name][k], shuffled.final[name][0]), name
    for name in together.metrics:
        assert np.array_equal(together.metrics[name][k], alone.metrics[name][0]), name
    assert set(together.dynamics) == {"fc1.weight", "fc2.weight", "fc3.weight"}
    for name, stats in together.dynamics.items():
        for stat, values in stats.items():  # [T, E]
            assert np.array_equal(values[k], alone.dynamics[name][stat][0]), (name, stat)
            assert np.array_equal(values[k], shuffled.dynamics[name][stat][0]), (name, stat)
    # and training really moved the weights
    assert not np.array_equal(together.final["fc1.weight"], together.initial["fc1.weight"])


def test_batched_trainer_matches_plain_module_and_adam_in_float64(digits_tensors):
    data = digits_tensors(torch.float64)
    settings = TrainSettings(epochs=2, init_std=0.1, dtype="float64")
    ensemble_seeds = seeds(4)
    batched = train_trials(DNN, ARCH, ensemble_seeds, data, settings, progress_file=None)
    for k in (0, 3):
        ref = train_reference(DNN, ARCH, ensemble_seeds[k], data, settings)
        for name, p in ref.state_dict().items():
            diff = np.abs(batched.final[name][k] - p.numpy()).max()
            assert diff <= 1e-10, (name, diff)
    # 2 epochs of 14 steps moved the weights far more than the tolerance
    assert np.abs(batched.final["fc1.weight"] - batched.initial["fc1.weight"]).max() > 1e-3


def test_seeds_decide_init_and_order_only(digits_tensors):
    data = digits_tensors(torch.float32)
    settings = TrainSettings(epochs=1, init_std=0.1)
    a = train_trials(DNN, ARCH, seeds(2), data, settings, progress_file=None)
    b = train_trials(DNN, ARCH, seeds(2), data, settings, progress_file=None)
    assert all(np.array_equal(a.final[n], b.final[n]) for n in a.final)
    # two seeds give different initial weights
    assert not np.array_equal(a.initial["fc1.weight"][0], a.initial["fc1.weight"][1])
    # the initial draw does not depend on dtype beyond rounding
    c = EnsembleTrainer(
        DNN,
        ARCH,
        seeds(2),
        digits_tensors(torch.float64),
        TrainSettings(init_std=0.1, dtype="float64"),
    )
    np.testing.assert_allclose(c.snapshot()["fc1.weight"], a.initial["fc1.weight"], rtol=1e-6)


def test_trial_seed_is_stable_and_distinct():
    assert trial_seed(0, "dnn_mnist", "h5-5", 3) == trial_seed(0, "dnn_mnist", "h5-5", 3)
    ids = {trial_seed(0, "dnn_mnist", "h5-5", i) for i in range(1000)}
    assert len(ids) == 1000
    assert trial_seed(0, "dnn_mnist", "h5-5", 3) != trial_seed(1, "dnn_mnist", "h5-5", 3)
    assert all(0 <= s < 2**63 for s in ids)


def test_diverged_trial_is_recorded_and_leaves_the_others_untouched(digits_tensors):
    data = digits_tensors(torch.float32)
    settings = TrainSettings(epochs=2, init_std=0.1)
    ensemble_seeds = seeds(4)
    clean = train_trials(DNN, ARCH, ensemble_seeds, data, settings, progress_file=None)
    trainer = EnsembleTrainer(DNN, ARCH, ensemble_seeds, data, settings)
    with torch.no_grad():
        trainer.params["fc2.weight"][1, 0, 0] = float("inf")  # poison trial 1
    poisoned = trainer.run(progress_file=None)
    assert poisoned.diverged_epoch.tolist() == [-1, 0, -1, -1]
    assert np.isnan(poisoned.metrics["test_acc"][1]).all()
    for k in (0, 2, 3):
        for name in clean.final:
            assert np.array_equal(clean.final[name][k], poisoned.final[name][k])


def test_metrics_have_one_value_per_trial_and_epoch(digits_tensors):
    data = digits_tensors(torch.float32)
    result = train_trials(
        DNN, ARCH, seeds(3), data, TrainSettings(epochs=4, init_std=0.1), progress_file=None
    )
    for name in ("train_loss", "train_acc", "test_loss", "test_acc"):
        assert result.metrics[name].shape == (3, 4)
        assert np.isfinite(result.metrics[name]).all()
    acc = result.metrics["test_acc"]
    assert ((acc >= 0) & (acc <= 1)).all()
    assert (acc[:, -1] > acc[:, 0]).all() and (acc[:, -1] > 0.2).all(), "nets learn (chance: 0.1)"


@pytest.mark.parametrize("bad", [{"dtype": "float16"}, {"bias_init": "uniform"}])
def test_bad_settings_name_the_key(bad):
    with pytest.raises(ValueError, match=next(iter(bad))):
        TrainSettings(**bad)


def _mkl_batches_hT_grad_differently(n_in: int, n_out: int, batch: int) -> bool:
    """Whether ``hᵀ @ grad`` of one matrix differs from the same matrix in a batch of two."""
    g = torch.Generator().manual_seed(1)
    h = torch.randn(2, batch, n_in, generator=g)
    grad = torch.randn(2, batch, n_out, generator=g)
    pair = torch.bmm(h.transpose(1, 2), grad)  # [2, in, out]
    one = torch.bmm(h[:1].transpose(1, 2), grad[:1])  # [1, in, out]
    return not torch.equal(pair[0], one[0])


def test_a_lone_trial_trains_beside_a_shadow_copy_to_keep_its_ensemble_bits(digits_tensors):
    # widths [5, 20]: fc2's weight gradient is a [5, 100] @ [100, 20] product, one that MKL
    # sums in another order for a batch of one matrix than for two or more (on this
    # project's AMD EPYC; where MKL does not, the shadow copy is merely redundant)
    data = digits_tensors(torch.float32)
    settings = TrainSettings(epochs=2, init_std=0.1)
    arch = {"widths": [5, 20]}
    all_seeds = [trial_seed(0, "test", "h5-20", i) for i in range(4)]
    together = train_trials(DNN, arch, all_seeds, data, settings, progress_file=None)
    alone = train_trials(DNN, arch, all_seeds[2:3], data, settings, progress_file=None)
    assert set(alone.final) == set(together.final)
    for name in together.final:
        assert alone.final[name].shape[0] == 1, name
        assert np.array_equal(together.final[name][2], alone.final[name][0]), name
    for name in together.metrics:
        assert np.array_equal(together.metrics[name][2], alone.metrics[name][0]), name
    for name, stats in together.dynamics.items():
        for stat, values in stats.items():
            assert np.array_equal(values[2], alone.dynamics[name][stat][0]), (name, stat)
    if _mkl_batches_hT_grad_differently(5, 20, settings.batch_size):
        # the planted effect: without the shadow copy the lone trial does differ
        bare = EnsembleTrainer(DNN, arch, all_seeds[2:3], data, settings).run(None)
        assert not np.array_equal(together.final["fc2.weight"][2], bare.final["fc2.weight"][0])


def test_only_a_lone_cpu_trial_gets_a_shadow_copy():
    assert needs_shadow_trial(1, torch.device("cpu"))
    assert not needs_shadow_trial(2, torch.device("cpu"))
    assert not needs_shadow_trial(1, torch.device("meta"))


def test_first_trials_keeps_every_per_trial_array_of_the_first_trials(digits_tensors):
    data = digits_tensors(torch.float32, n_train=200)
    settings = TrainSettings(epochs=2, init_std=0.1, checkpoint_epochs=(1,))
    result = train_trials(DNN, ARCH, seeds(3), data, settings, progress_file=None)
    head = result.first_trials(2)
    assert np.array_equal(head.diverged_epoch, result.diverged_epoch[:2])
    for key in ("initial", "final", "metrics"):
        for name, values in getattr(head, key).items():
            assert np.array_equal(values, getattr(result, key)[name][:2]), (key, name)
    assert np.array_equal(
        head.checkpoints[1]["fc1.weight"], result.checkpoints[1]["fc1.weight"][:2]
    )
    assert np.array_equal(
        head.dynamics["fc1.weight"]["rwc"], result.dynamics["fc1.weight"]["rwc"][:2]
    )


@pytest.mark.parametrize("widths", [[5, 5], [10, 10], [100, 100]])
def test_mnist_sized_dnn_trial_alone_equals_trial_in_ensembles(widths):
    # the paper's input size, a last batch of 50, ensembles of 1, 3 and 8: the stored
    # [T, in, out] weights and the block-aligned Adam keep every trial's bits
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (250, 1, 28, 28), generator=g, dtype=torch.uint8).numpy()
    y = torch.randint(0, 10, (250,), generator=g).numpy()
    data = TensorData.from_arrays(x, y, x[:100], y[:100], 255)
    settings = TrainSettings(epochs=2, init_std=0.1)
    arch = {"widths": widths}
    all_seeds = [trial_seed(0, "test", "mnist-sized", i) for i in range(8)]
    together = train_trials(DNN, arch, all_seeds, data, settings, progress_file=None)
    for ids in ([5], [2, 5, 7]):
        part_seeds = [all_seeds[i] for i in ids]
        part = train_trials(DNN, arch, part_seeds, data, settings, progress_file=None)
        for j, i in enumerate(ids):
            for name in together.final:
                assert np.array_equal(together.final[name][i], part.final[name][j]), (ids, name)
