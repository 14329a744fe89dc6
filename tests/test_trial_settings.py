"""Per-trial training settings in the batched trainer: a trial trains the same bits alone or in
any ensemble with any mix of settings, each setting does what it says, and bad input fails at
config time naming its key."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from weightzoo.config import ConfigError, experiment_settings, validate_config
from weightzoo.train.hparams import sample_trial
from weightzoo.train.models import get_family
from weightzoo.train.optim import (
    SLICE_STEP_MIN_PARAMETERS,
    PerTrialOptimizer,
    TrialSliceOptimizer,
    make_trial_optimizer,
)
from weightzoo.train.reference import train_reference
from weightzoo.train.seeds import trial_seed
from weightzoo.train.settings import TrainSettings
from weightzoo.train.trainer import EnsembleTrainer, epoch_orders, train_trials
from weightzoo.train.variation import (
    EnsembleSettings,
    draw_init,
    hparam_arrays,
    sample_job,
    split_by_program,
    train_subset,
)

DNN = get_family("dnn")
ARCH = {"widths": [16, 8]}
VARIED = {
    "lr": {"loguniform": [1e-3, 3e-2]},
    "weight_decay": {"loguniform": [1e-5, 1e-2], "zero_share": 0.3},
    "dropout": {"uniform": [0.0, 0.5]},
    "init_std": {"loguniform": [0.03, 0.3]},
    "optimizer": {"choice": ["adam", "sgd_momentum", "rmsprop"]},
    "activation": {"choice": ["relu", "tanh"]},
    "init": {"choice": ["normal", "truncated_normal", "glorot_uniform", "he_uniform"]},
    "train_fraction": {"choice": [0.5, 1.0]},
}


def seeds(n, start=0):
    return [trial_seed(0, "test", "h16-8", i) for i in range(start, start + n)]


def draws(settings, ids):
    return sample_job(settings, 0, "test", "h16-8", ids)


def fixed(**overrides):
    values = {
        "lr": 1e-3,
        "weight_decay": 0.0,
        "dropout": 0.0,
        "init_std": 0.1,
        "optimizer": "adam",
        "activation": "relu",
        "init": "normal",
        "train_fraction": 1.0,
    }
    return {**values, **overrides}


def same_result(a, i, b, j):
    for name in a.final:
        assert np.array_equal(a.final[name][i], b.final[name][j], equal_nan=True), name
        assert np.array_equal(a.initial[name][i], b.initial[name][j]), name
    for name in a.metrics:
        assert np.array_equal(a.metrics[name][i], b.metrics[name][j], equal_nan=True), name
    assert a.diverged_epoch[i] == b.diverged_epoch[j]


def test_mixed_settings_trial_alone_equals_trial_in_any_ensemble(digits_tensors):
    """Twelve trials with every setting varied (so several programs, each a separate
    ensemble), and one that diverges: each trains the same bits alone, in the mix, and among
    other neighbours."""
    data = digits_tensors(torch.float32)
    settings = TrainSettings(epochs=2, **VARIED)
    ids = list(range(12))
    values = draws(settings, ids)
    values[5] = fixed(lr=1e30, optimizer="sgd_momentum")  # overflows in its first epoch
    together = train_trials(
        DNN, ARCH, seeds(12), data, settings, progress_file=None, trial_values=values
    )
    assert together.diverged_epoch[5] == 0
    assert len(split_by_program(values)) >= 4  # the mix really splits into ensembles
    for k in (0, 5, 7):
        alone = train_trials(
            DNN,
            ARCH,
            seeds(12)[k : k + 1],
            data,
            settings,
            progress_file=None,
            trial_values=[values[k]],
        )
        same_result(together, k, alone, 0)
    # the same trial among two others that share its program, at position 2
    k = 7
    neighbours = [fixed(**{**values[k], "lr": 0.02}), fixed(**{**values[k], "dropout": 0.1})]
    mixed = train_trials(
        DNN,
        ARCH,
        [*seeds(2, start=40), seeds(12)[k]],
        data,
        settings,
        progress_file=None,
        trial_values=[*neighbours, values[k]],
    )
    same_result(together, k, mixed, 2)


def test_fixed_settings_as_values_equal_the_fixed_path(digits_tensors):
    """Giving every trial the config's own values changes no bit: zoos trained before
    per-trial settings train the same."""
    data = digits_tensors(torch.float32)
    settings = TrainSettings(epochs=1, init_std=0.1)
    plain = train_trials(DNN, ARCH, seeds(3), data, settings, progress_file=None)
    values = [fixed()] * 3
    as_values = train_trials(
        DNN, ARCH, seeds(3), data, settings, progress_file=None, trial_values=values
    )
    for k in range(3):
        same_result(plain, k, as_values, k)


@pytest.mark.parametrize("kind", ["adam", "sgd_momentum", "rmsprop"])
def test_per_trial_optimizer_equals_torch_optimizer_per_trial(kind):
    torch.manual_seed(0)
    stacked = torch.randn(3, 5, 4, dtype=torch.float64, requires_grad=True)
    singles = [stacked.detach()[t].clone().requires_grad_(True) for t in range(3)]
    lrs, decays = [1e-3, 1e-2, 3e-2], [0.0, 1e-3, 1e-1]
    optimizer = PerTrialOptimizer([stacked], kind, lrs, decays)
    cls, options = {
        "adam": (torch.optim.Adam, {}),
        "sgd_momentum": (torch.optim.SGD, {"momentum": 0.9}),
        "rmsprop": (torch.optim.RMSprop, {}),
    }[kind]
    refs = [
        cls([p], lr=lr, weight_decay=wd, **options)
        for p, lr, wd in zip(singles, lrs, decays, strict=True)
    ]
    for step in range(4):
        target = torch.randn(3, 5, 4, dtype=torch.float64)
        optimizer.zero_grad()
        ((stacked - target) ** 2).sum().backward()
        optimizer.step()
        for t, (p, ref) in enumerate(zip(singles, refs, strict=True)):
            ref.zero_grad()
            ((p - target[t]) ** 2).sum().backward()
            ref.step()
            # the same update up to rounding: the per-trial rate multiplies torch's unit step
            diff = (stacked.detach()[t] - p.detach()).abs().max()
            assert diff <= 1e-14, (kind, step, t, diff)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("kind", ["adam", "sgd_momentum"])
def test_trial_slice_optimizer_is_torchs_fused_optimizer_on_each_trial(kind, dtype):
    """Each trial's step is bit for bit torch's fused optimizer on that trial alone, with its
    own learning rate and weight decay (zero, tiny and large), at shapes whose last elements
    fall in the kernel's scalar loop."""
    torch.manual_seed(0)
    shapes = [(7, 13), (7,), (3, 7)]
    stacked = [torch.randn(5, *s, dtype=dtype, requires_grad=True) for s in shapes]
    singles = [[p.detach()[t].clone().requires_grad_(True) for p in stacked] for t in range(5)]
    lrs, decays = [1e-3, 2e-3, 1e-2, 5e-2, 3e-4], [0.0, 1e-3, 1e-1, 0.0, 2e-8]
    optimizer = TrialSliceOptimizer(stacked, kind, lrs, decays)
    cls, options = {
        "adam": (torch.optim.Adam, {}),
        "sgd_momentum": (torch.optim.SGD, {"momentum": 0.9}),
    }[kind]
    refs = [
        cls(params, lr=lr, weight_decay=wd, fused=True, **options)
        for params, lr, wd in zip(singles, lrs, decays, strict=True)
    ]
    for _ in range(4):
        targets = [torch.randn(5, *s, dtype=dtype) for s in shapes]
        optimizer.zero_grad()
        sum(((p - g) ** 2).sum() for p, g in zip(stacked, targets, strict=True)).backward()
        optimizer.step()
        for t, ref in enumerate(refs):
            ref.zero_grad()
            loss = sum(((p - g[t]) ** 2).sum() for p, g in zip(singles[t], targets, strict=True))
            loss.backward()
            ref.step()
            for p, single in zip(stacked, singles[t], strict=True):
                assert torch.equal(p.detach()[t], single.detach()), (kind, t)


def test_large_trials_step_by_slices_small_ones_by_scratch_tensors():
    """The optimizer a job gets depends on its trials' size and settings, not on how many
    trials it holds."""

    def chosen(per_trial: int, trials: int, kind: str = "adam"):
        leaf = torch.zeros(trials, per_trial, requires_grad=True)
        return type(
            make_trial_optimizer([leaf], kind, [1e-3, 2e-3] * (trials // 2), [0.0] * trials)
        )

    large, small = SLICE_STEP_MIN_PARAMETERS, SLICE_STEP_MIN_PARAMETERS - 1
    for trials in (2, 10):
        assert chosen(large, trials) is TrialSliceOptimizer
        assert chosen(large, trials, "sgd_momentum") is TrialSliceOptimizer
        assert chosen(large, trials, "rmsprop") is PerTrialOptimizer  # no fused kernel
        assert chosen(small, trials) is PerTrialOptimizer


def test_large_trial_alone_equals_trial_in_an_ensemble_with_slices(digits_tensors):
    """A DNN big enough for the per-trial kernel calls: mixed learning rates, decays and
    dropout, a trial trains the same bits alone and in the ensemble."""
    data = digits_tensors(torch.float32)
    arch = {"widths": [256, 64]}  # 33,738 parameters on 8x8 digits
    shapes = DNN.param_shapes(arch, (1, 8, 8), 10)
    assert sum(int(np.prod(s)) for s in shapes.values()) >= SLICE_STEP_MIN_PARAMETERS
    settings = TrainSettings(epochs=1, **{k: VARIED[k] for k in ("lr", "weight_decay", "dropout")})
    ids = list(range(4))
    values = sample_job(settings, 0, "test", "h256-64", ids)
    trial_seeds = [trial_seed(0, "test", "h256-64", i) for i in ids]
    together = train_trials(
        DNN, arch, trial_seeds, data, settings, progress_file=None, trial_values=values
    )
    for k in (0, 3):
        alone = train_trials(
            DNN,
            arch,
            trial_seeds[k : k + 1],
            data,
            settings,
            progress_file=None,
            trial_values=[values[k]],
        )
        same_result(together, k, alone, 0)


def test_one_shared_adam_keeps_the_fast_fused_step():
    leaf = torch.zeros(4, 3, requires_grad=True)

    def per_trial(lr, decay):
        return isinstance(make_trial_optimizer([leaf], "adam", lr, decay), PerTrialOptimizer)

    assert not per_trial([1e-3] * 4, [0.0] * 4)
    assert per_trial([1e-3, 2e-3] * 2, [0.0] * 4)
    assert per_trial([1e-3] * 4, [0, 0, 0, 1e-4])


def test_weight_decay_and_sgd_match_the_textbook_module_in_float64(digits_tensors):
    """A trial with SGD + momentum and L2 equals a plain module trained by torch.optim.SGD."""
    data = digits_tensors(torch.float64)
    settings = TrainSettings(epochs=1, init_std=0.1, dtype="float64")
    values = [fixed(optimizer="sgd_momentum", lr=0.05, weight_decay=1e-3)] * 2
    batched = train_trials(
        DNN, ARCH, seeds(2), data, settings, progress_file=None, trial_values=values
    )
    module = DNN.reference_module(ARCH, data.input_shape, data.num_classes).double()
    trainer = EnsembleTrainer(DNN, ARCH, seeds(2), data, settings)
    module.load_state_dict({k: torch.from_numpy(v[0]) for k, v in trainer.snapshot().items()})
    optimizer = torch.optim.SGD(module.parameters(), lr=0.05, momentum=0.9, weight_decay=1e-3)
    order = epoch_orders(trainer.data_generators, data.x_train.shape[0])[0]
    for start in range(0, len(order), settings.batch_size):
        idx = order[start : start + settings.batch_size]
        optimizer.zero_grad()
        loss = torch.nn.functional.cross_entropy(module(data.x_train[idx]), data.y_train[idx])
        loss.backward()
        optimizer.step()
    for name, p in module.state_dict().items():
        assert np.abs(batched.final[name][0] - p.numpy()).max() <= 1e-10, name
    assert train_reference  # the Adam path's own textbook check lives in tests/test_trainer.py


def test_train_fraction_draws_a_subset_per_trial_and_trains_only_on_it():
    g = torch.Generator().manual_seed(1)
    subset = train_subset(g, 100, 0.25)
    assert subset.shape == (25,) and torch.equal(subset, subset.sort().values)
    assert train_subset(g, 100, 1.0) is None
    order = epoch_orders([torch.Generator().manual_seed(2)], 25, [subset])[0]
    assert sorted(order.tolist()) == subset.tolist()


def test_train_fraction_changes_steps_and_the_trial(digits_tensors):
    data = digits_tensors(torch.float32)
    settings = TrainSettings(epochs=1, init_std=0.1)
    whole = EnsembleTrainer(DNN, ARCH, seeds(2), data, settings)
    half = EnsembleTrainer(
        DNN,
        ARCH,
        seeds(2),
        data,
        settings,
        trial_settings=EnsembleSettings.from_trials([fixed(train_fraction=0.5)] * 2),
    )
    assert half.n_train == round(data.x_train.shape[0] * 0.5) and whole.subsets is None
    assert not torch.equal(half.subsets[0], half.subsets[1])  # each trial its own subset


def test_init_schemes_draw_their_documented_scales():
    g = torch.Generator().manual_seed(0)
    w = draw_init((200, 300), "truncated_normal", 0.1, g, zero=False)
    assert w.abs().max() <= 0.2 and 0.07 < w.std() < 0.1
    bound = (6 / (200 + 300)) ** 0.5
    w = draw_init((200, 300), "glorot_uniform", 0.1, g, zero=False)
    assert w.abs().max() <= bound and w.abs().max() > 0.95 * bound
    w = draw_init((200, 300), "he_uniform", 0.1, g, zero=False)
    assert w.abs().max() <= (6 / 300) ** 0.5
    bias = draw_init((200,), "glorot_uniform", 0.1, g, zero=True)
    assert not bias.any()
    # normal is the draw of every zoo before per-trial settings
    g1, g2 = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    assert torch.equal(
        draw_init((4, 5), "normal", 0.1, g1, zero=False),
        torch.randn((4, 5), generator=g2, dtype=torch.float64) * 0.1,
    )


def test_init_std_varies_inside_one_ensemble(digits_tensors):
    data = digits_tensors(torch.float32)
    settings = TrainSettings(epochs=1)
    ens = EnsembleSettings.from_trials([fixed(init_std=0.01), fixed(init_std=1.0)])
    trainer = EnsembleTrainer(DNN, ARCH, seeds(2), data, settings, trial_settings=ens)
    w = trainer.snapshot()["fc1.weight"]
    assert 0.005 < w[0].std() < 0.02 and 0.5 < w[1].std() < 2


def test_activation_and_dropout_change_training(digits_tensors):
    data = digits_tensors(torch.float32)
    settings = TrainSettings(epochs=1, init_std=0.1)
    base = train_trials(DNN, ARCH, seeds(2), data, settings, progress_file=None)
    for change in ({"activation": "tanh"}, {"dropout": 0.3}):
        other = train_trials(
            DNN,
            ARCH,
            seeds(2),
            data,
            settings,
            progress_file=None,
            trial_values=[fixed(**change)] * 2,
        )
        assert not np.array_equal(base.final["fc1.weight"], other.final["fc1.weight"]), change


def test_hparam_arrays_store_the_varied_settings_and_setting_id():
    settings = TrainSettings(
        lr={"loguniform": [1e-4, 1e-1]}, optimizer={"choice": ["adam", "rmsprop"]}, replicates=2
    )
    ids = [4, 5, 6]
    values = draws(settings, ids)
    arrays = hparam_arrays(settings.spec(), values, ids, settings.replicates)
    assert set(arrays) == {"lr", "optimizer", "setting_id"}
    assert arrays["lr"].dtype == np.float64 and arrays["optimizer"].dtype.kind == "U"
    assert arrays["setting_id"].tolist() == [2, 2, 3]
    assert arrays["lr"][0] == arrays["lr"][1] != arrays["lr"][2]  # replicates share a setting
    assert values[0] == sample_trial(settings.spec(), 0, "test", "h16-8", 4, 2)
    assert hparam_arrays(TrainSettings().spec(), [], ids, 1) == {}
    assert sample_job(TrainSettings(), 0, "test", "h16-8", ids) is None


def test_job_params_omit_new_settings_at_their_defaults():
    """A config written before per-trial settings plans jobs with the same params, so
    Snakemake does not retrain its zoos."""
    params = TrainSettings().job_params()
    assert "optimizer" not in params and "replicates" not in params and "lr" in params
    assert TrainSettings(dropout=0.2).job_params()["dropout"] == 0.2


# --------------------------------------------------------------------------- config errors
BASE = {
    "experiments": {
        "e": {
            "model": "dnn",
            "dataset": "digits",
            "trials": 4,
            "architectures": [{"widths": [4, 4]}],
            "bands": {"high": [90, 100]},
        }
    }
}


def with_training(training, where="experiment"):
    config = copy.deepcopy(BASE)
    if where == "experiment":
        config["experiments"]["e"]["training"] = training
    else:
        config["training"] = training
    return config


@pytest.mark.parametrize(
    ("training", "named"),
    [
        ({"lr": {"gaussian": [0.1, 1]}}, "training.lr"),
        ({"lr": {"loguniform": [0.1, 0.01]}}, "training.lr.loguniform"),
        ({"lr": 0}, "training.lr"),
        ({"lr": {"loguniform": [0, 0.1]}}, "training.lr.loguniform"),
        ({"dropout": 1.0}, "training.dropout"),
        ({"dropout": {"uniform": [0.2, 1.0]}}, "training.dropout.uniform"),
        ({"train_fraction": 0}, "training.train_fraction"),
        ({"train_fraction": {"choice": [0.5, 1.5]}}, "training.train_fraction.choice"),
        ({"optimizer": "adamw"}, "training.optimizer"),
        ({"optimizer": {"choice": ["adam", "lion"]}}, "training.optimizer.choice"),
        ({"activation": {"choice": ["gelu"]}}, "training.activation.choice"),
        ({"epochs": {"choice": [1, 2]}}, "training.epochs"),
        ({"batch_size": {"loguniform": [10, 100]}}, "training.batch_size"),
        ({"replicates": 0}, "training.replicates"),
    ],
)
def test_bad_per_trial_settings_fail_naming_the_key(training, named):
    for where in ("experiment", "global"):
        with pytest.raises(ConfigError, match=named.replace(".", r"\.")):
            validate_config(with_training(training, where))


def test_experiment_distribution_replaces_the_global_one_as_a_whole():
    config = with_training({"lr": {"loguniform": [1e-4, 1e-2]}}, where="global")
    config["experiments"]["e"]["training"] = {"lr": {"choice": [0.1, 0.01]}}
    full = validate_config(config)
    assert experiment_settings(full, "e").lr == {"choice": [0.1, 0.01]}


def test_vit_refuses_dropout_at_config_time():
    config = copy.deepcopy(BASE)
    config["experiments"]["e"].update(
        model="vit",
        architectures=[{"d_model": 64, "nhead": 2, "patch": 2, "dim_feedforward": 32}],
        training={"dropout": {"uniform": [0.0, 0.5]}},
    )
    with pytest.raises(ConfigError, match=r"experiments\.e: training\.dropout: the vit"):
        validate_config(config)
