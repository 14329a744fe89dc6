"""CNN and ViT families: batched form == reference module, per-trial independence, shapes;
every family's per-trial activation and dropout."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from weightzoo.train import hparams
from weightzoo.train.dropout import TrialDropout
from weightzoo.train.models import (
    ACTIVATION_FUNCTIONS,
    CNN,
    FAMILIES,
    ViT,
    family_for_device,
    get_family,
    trial_state_dict,
)
from weightzoo.train.reference import train_reference
from weightzoo.train.seeds import trial_seed
from weightzoo.train.trainer import TrainSettings, train_trials

CNN_FLAT = {"channels": 6}
CNN_GAP = {"channels": 6, "head": "gap"}
VIT = {"d_model": 16, "nhead": 4, "patch": 4, "dim_feedforward": 32}
VIT_SMALL_PATCH = {"d_model": 16, "nhead": 2, "patch": 2, "dim_feedforward": 24}

# (id, family, arch) trained on digits [N, 1, 8, 8]: conv map 6x6, ViT 4 tokens of 16 pixels
TRAINED = [
    pytest.param(CNN("loop"), CNN_FLAT, id="cnn-loop-flatten"),
    pytest.param(CNN("loop"), CNN_GAP, id="cnn-loop-gap"),
    pytest.param(ViT(), VIT, id="vit"),
]
# every strategy, also the one that is not bit-identical across ensemble sizes
ALL = [
    *TRAINED,
    pytest.param(CNN("grouped"), CNN_FLAT, id="cnn-grouped-flatten"),
    pytest.param(CNN("grouped"), CNN_GAP, id="cnn-grouped-gap"),
    pytest.param(ViT(), VIT_SMALL_PATCH, id="vit-patch2"),
]


def seeds(n, start=0):
    return [trial_seed(0, "test-models", "arch", i) for i in range(start, start + n)]


def random_params(family, arch, input_shape, n_trials, generator):
    shapes = family.param_shapes(arch, input_shape, 10)
    return {
        name: 0.3 * torch.randn(n_trials, *shape, generator=generator, dtype=torch.float64)
        for name, shape in shapes.items()
    }


@pytest.mark.parametrize("input_shape", [(1, 8, 8), (3, 8, 8)], ids=["gray", "rgb"])
@pytest.mark.parametrize(("family", "arch"), ALL)
def test_batched_forward_equals_reference_module(family, arch, input_shape):
    g = torch.Generator().manual_seed(1)
    params = random_params(family, arch, input_shape, 3, g)
    x = torch.rand(3, 5, *input_shape, generator=g, dtype=torch.float64)  # [T, B, C, H, W]
    logits = family.forward(params, x, arch)  # [T, B, 10]
    assert logits.shape == (3, 5, 10)
    for k in range(3):
        module = family.reference_module(arch, input_shape, 10).to(torch.float64)
        module.load_state_dict(trial_state_dict(params, k))
        diff = (logits[k] - module(x[k])).abs().max().item()
        assert diff <= 1e-12, (k, diff)
        module.eval()  # the ViT's fused inference path of nn.TransformerEncoderLayer
        with torch.no_grad():
            assert (logits[k] - module(x[k])).abs().max().item() <= 1e-12, k


@pytest.mark.parametrize(("family", "arch"), TRAINED)
def test_trial_alone_equals_trial_inside_ensemble_bit_for_bit(family, arch, digits_tensors):
    data = digits_tensors(torch.float32)
    settings = TrainSettings(epochs=2, init_std=0.1)
    ensemble_seeds, k = seeds(5), 3
    together = train_trials(family, arch, ensemble_seeds, data, settings, progress_file=None)
    alone = train_trials(family, arch, [ensemble_seeds[k]], data, settings, progress_file=None)
    # other neighbours, another position: the same trial as element 2 of 4
    elsewhere_seeds = [*seeds(2, start=10), ensemble_seeds[k], *seeds(1, start=20)]
    elsewhere = train_trials(family, arch, elsewhere_seeds, data, settings, progress_file=None)
    for name in together.final:
        assert np.array_equal(together.final[name][k], alone.final[name][0]), name
        assert np.array_equal(together.final[name][k], elsewhere.final[name][2]), name
    for name in together.metrics:
        assert np.array_equal(together.metrics[name][k], alone.metrics[name][0]), name
    assert set(together.dynamics) == {layer.param for layer in family.layers(arch)}
    for name, stats in together.dynamics.items():
        for stat, values in stats.items():  # [T, E]
            assert np.isfinite(values).all(), (name, stat)
            assert np.array_equal(values[k], alone.dynamics[name][stat][0]), (name, stat)
            assert np.array_equal(values[k], elsewhere.dynamics[name][stat][2]), (name, stat)
    first = family.layers(arch)[0].param
    assert not np.array_equal(together.final[first], together.initial[first])


def test_grouped_cnn_depends_on_its_ensemble_only_by_rounding(digits_tensors):
    """The grouped strategy is not bit-identical across ensemble sizes (module docstring);
    a trial still trains to the same weights up to float32 rounding."""
    data = digits_tensors(torch.float32)
    settings = TrainSettings(epochs=2, init_std=0.1)
    ensemble_seeds, k = seeds(5), 3
    together = train_trials(CNN("grouped"), CNN_FLAT, ensemble_seeds, data, settings, None)
    alone = train_trials(CNN("grouped"), CNN_FLAT, [ensemble_seeds[k]], data, settings, None)
    for name in together.final:
        np.testing.assert_allclose(together.final[name][k], alone.final[name][0], atol=1e-4)


@pytest.mark.parametrize(
    ("family", "arch"),
    [*TRAINED, pytest.param(CNN("grouped"), CNN_FLAT, id="cnn-grouped-flatten")],
)
def test_batched_trainer_matches_plain_module_and_adam_in_float64(family, arch, digits_tensors):
    data = digits_tensors(torch.float64)
    settings = TrainSettings(epochs=2, init_std=0.1, dtype="float64")
    ensemble_seeds = seeds(4)
    batched = train_trials(family, arch, ensemble_seeds, data, settings, progress_file=None)
    for k in (0, 3):
        ref = train_reference(family, arch, ensemble_seeds[k], data, settings)
        for name, p in ref.state_dict().items():
            diff = np.abs(batched.final[name][k] - p.numpy()).max()
            assert diff <= 1e-10, (name, diff)
    # training moved the weights far more than the tolerance
    first = family.layers(arch)[0].param
    assert np.abs(batched.final[first] - batched.initial[first]).max() > 1e-3


@pytest.mark.parametrize(
    ("family", "arch", "input_shape"),
    [
        (CNN(), {"channels": 16}, (1, 28, 28)),
        (CNN(), {"channels": 16, "head": "gap"}, (1, 28, 28)),
        (CNN(), {"channels": 8}, (3, 32, 32)),
        (ViT(), {"d_model": 784, "nhead": 16, "patch": 7, "dim_feedforward": 64}, (1, 28, 28)),
        (ViT(), {"d_model": 64, "nhead": 8, "patch": 4, "dim_feedforward": 128}, (3, 32, 32)),
        *[pytest.param(f, a, (1, 8, 8)) for f, a in (p.values for p in ALL)],
    ],
)
def test_param_shapes_layers_and_reference_module_agree(family, arch, input_shape):
    shapes = family.param_shapes(arch, input_shape, 10)
    module = family.reference_module(arch, input_shape, 10)
    assert {n: tuple(p.shape) for n, p in module.state_dict().items()} == shapes
    layers = family.layers(arch)
    assert len({li.label for li in layers}) == len(layers)
    for li in layers:
        ndim = len(shapes[li.param])
        assert li.incoming_axes and set(li.incoming_axes) <= set(range(1, ndim)), li
        assert li.param.endswith("weight"), li


def test_paper_shapes():
    cnn, vit = get_family("cnn"), get_family("vit")
    assert cnn.param_shapes({"channels": 16}, (1, 28, 28), 10)["fc.weight"] == (10, 26 * 26 * 16)
    assert cnn.param_shapes({"channels": 8}, (3, 32, 32), 10)["fc.weight"] == (10, 30 * 30 * 8)
    assert cnn.param_shapes(CNN_GAP, (1, 28, 28), 10)["fc.weight"] == (10, 6)
    arch = {"d_model": 784, "nhead": 8, "patch": 7, "dim_feedforward": 3136}
    shapes = vit.param_shapes(arch, (1, 28, 28), 10)
    assert shapes["pos_embedding"] == (16, 784)
    assert shapes["encoder.self_attn.in_proj_weight"] == (3 * 784, 784)
    assert shapes["patch.weight"] == (784, 49)


def test_arch_names_and_registry():
    assert {"dnn", "cnn", "vit"} <= set(FAMILIES)
    cnn, vit = get_family("cnn"), get_family("vit")
    assert cnn.arch_name({"channels": 16}) == "c16"
    assert cnn.arch_name({"channels": 16, "head": "flatten"}) == "c16"
    assert cnn.arch_name({"channels": 16, "head": "gap"}) == "c16-gap"
    assert vit.arch_name(VIT) == "d16-h4-p4-f32"
    assert cnn.strategy == "loop"
    assert get_family("cnn", strategy="grouped").strategy == "grouped"
    assert get_family("cnn").strategy == "loop", "options do not change the registered family"


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: CNN("vmap"), "strategy"),
        (lambda: CNN().arch_name({"channels": 4, "head": "max"}), "head"),
        (lambda: ViT().param_shapes({**VIT, "nhead": 3}, (1, 8, 8), 10), "divisible"),
        (lambda: ViT().param_shapes({**VIT, "patch": 3}, (1, 8, 8), 10), "patch"),
        (lambda: ViT().forward({}, torch.zeros(1, 1, 1, 8, 8)), "arch"),
    ],
    ids=["strategy", "head", "nhead", "patch", "vit-forward-without-arch"],
)
def test_bad_arch_is_named(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_strategy_auto_picks_per_device_and_explicit_choices_win():
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert family_for_device("cnn", "auto", cpu).strategy == "loop"
    assert family_for_device("cnn", "auto", cuda).strategy == "grouped"
    assert family_for_device("cnn", "grouped", cpu).strategy == "grouped"
    assert family_for_device("vit", "auto", cuda) is FAMILIES["vit"]
    with pytest.raises(ValueError, match="training.strategy 'loop' applies to the CNN only"):
        family_for_device("dnn", "loop", cpu)


# ------------------------------------------------ per-trial activation and dropout
DNN_ARCH = {"widths": [12, 7]}
# every family with a hidden activation, on digits-sized inputs [T, B, 1, 8, 8]
WITH_ACTIVATION = [
    pytest.param(get_family("dnn"), DNN_ARCH, id="dnn"),
    *ALL,
    pytest.param(get_family("smallcnn"), {"channels": 4, "layers": 2}, id="smallcnn"),
]
# the families with dropout sites, and the strategies that run them
WITH_DROPOUT = [p for p in WITH_ACTIVATION if not p.id.startswith("vit")]


def trial_dropout(rates, seed=0):
    """One generator per trial, seeded from the trial's position plus ``seed``."""
    gens = [torch.Generator().manual_seed(seed + t) for t in range(len(rates))]
    return TrialDropout(torch.tensor(rates, dtype=torch.float64), gens)


def test_activation_table_agrees_with_the_settings_names():
    assert tuple(ACTIVATION_FUNCTIONS) == hparams.ACTIVATIONS
    with pytest.raises(ValueError, match="training.activation: unknown activation 'gelu'"):
        get_family("dnn").forward({}, torch.zeros(1, 1, 1, 8, 8), activation="gelu")


@pytest.mark.parametrize(("family", "arch"), WITH_ACTIVATION)
def test_default_options_and_zero_dropout_give_the_bits_of_no_options(family, arch):
    g = torch.Generator().manual_seed(3)
    params = random_params(family, arch, (1, 8, 8), 3, g)
    x = torch.rand(3, 5, 1, 8, 8, generator=g, dtype=torch.float64)
    plain = family.forward(params, x, arch)
    explicit = family.forward(params, x, arch, activation="relu", dropout=None)
    zero = family.forward(params, x, arch, dropout=trial_dropout([0.0, 0.0, 0.0]))
    assert torch.equal(plain, explicit)
    assert torch.equal(plain, zero)


@pytest.mark.parametrize(("family", "arch"), WITH_ACTIVATION)
def test_tanh_forward_equals_the_reference_module_with_tanh(family, arch):
    g = torch.Generator().manual_seed(4)
    params = random_params(family, arch, (1, 8, 8), 3, g)
    x = torch.rand(3, 5, 1, 8, 8, generator=g, dtype=torch.float64)
    logits = family.forward(params, x, arch, activation="tanh")  # [T, B, 10]
    assert not torch.equal(logits, family.forward(params, x, arch)), "tanh changed nothing"
    for k in range(3):
        module = family.reference_module(arch, (1, 8, 8), 10, activation="tanh").double()
        module.load_state_dict(trial_state_dict(params, k))
        assert (logits[k] - module(x[k])).abs().max().item() <= 1e-12, k


@pytest.mark.parametrize(("family", "arch"), WITH_DROPOUT)
def test_dropout_forward_equals_the_reference_module_with_that_trials_masks(family, arch):
    g = torch.Generator().manual_seed(5)
    params = random_params(family, arch, (1, 8, 8), 3, g)
    x = torch.rand(3, 5, 1, 8, 8, generator=g, dtype=torch.float64)
    rates = [0.5, 0.0, 0.3]
    logits = family.forward(params, x, arch, dropout=trial_dropout(rates, seed=10))
    assert not torch.equal(logits[0], family.forward(params, x, arch)[0]), "nothing dropped"
    for k in range(3):
        one = trial_dropout([rates[k]], seed=10 + k)
        module = family.reference_module(arch, (1, 8, 8), 10, dropout=one).double()
        module.load_state_dict(trial_state_dict(params, k))
        assert (logits[k] - module(x[k])).abs().max().item() <= 1e-12, k
        module.eval()  # evaluation never drops
        with torch.no_grad():
            no_drop = family.forward(params, x, arch)[k]
            assert (no_drop - module(x[k])).abs().max().item() <= 1e-12, k


@pytest.mark.parametrize(
    ("family", "arch"),
    [
        pytest.param(get_family("dnn"), DNN_ARCH, id="dnn"),
        pytest.param(CNN("loop"), CNN_FLAT, id="cnn-loop"),
    ],
)
def test_a_trials_dropout_is_bit_identical_in_any_ensemble(family, arch):
    """Trial k's masks come from its own generator only: its logits and gradients are the
    same bits beside other trials (other rates, other generators) as beside itself."""
    g = torch.Generator().manual_seed(6)
    params = random_params(family, arch, (1, 8, 8), 4, g)
    x = torch.rand(4, 6, 1, 8, 8, generator=g, dtype=torch.float32)
    y = torch.randint(0, 10, (4, 6), generator=g)
    params = {n: p.float() for n, p in params.items()}

    def run(trials, rates, seeds):
        leaves = {n: p[trials].clone().requires_grad_(True) for n, p in params.items()}
        gens = [torch.Generator().manual_seed(s) for s in seeds]
        dropout = TrialDropout(torch.tensor(rates), gens)
        logits = family.forward(leaves, x[trials], arch, dropout=dropout)  # [t, B, 10]
        loss = torch.nn.functional.cross_entropy(
            logits.flatten(0, 1), y[trials].flatten(), reduction="none"
        )
        loss.view(len(trials), -1).mean(1).sum().backward()  # as the trainer: per-trial means
        return logits.detach(), {n: p.grad for n, p in leaves.items()}

    k = 2  # trial 2, rate 0.4, generator seed 102
    together = run([0, 1, 2, 3], [0.1, 0.0, 0.4, 0.6], [100, 101, 102, 103])
    # two trials (a lone CPU trial multiplies differently: trainer.needs_shadow_trial)
    beside = run([2, 0], [0.4, 0.0], [102, 7])
    assert torch.equal(together[0][k], beside[0][0])
    for name in params:
        assert torch.equal(together[1][name][k], beside[1][name][0]), name


def test_dropout_keeps_one_minus_p_scaled_and_a_zero_rate_trial_untouched():
    h = torch.rand(3, 200, 50, generator=torch.Generator().manual_seed(1)) + 0.5  # [T, B, F]
    out = trial_dropout([0.0, 0.25, 0.7])(h)
    assert torch.equal(out[0], h[0])
    for t, p in ((1, 0.25), (2, 0.7)):
        kept = out[t] != 0
        assert abs(kept.float().mean().item() - (1 - p)) < 0.01, t
        torch.testing.assert_close(out[t][kept], h[t][kept] / (1 - p))
    # one trial's masks, drawn alone or stacked, are the same bits
    alone = trial_dropout([0.7], seed=2).trial(h[2], 0)
    assert torch.equal(out[2], alone)


@pytest.mark.parametrize(
    ("rates", "generators", "match"),
    [
        ([0.5, 1.0], 2, r"trial 1 has rate 1\.0"),
        ([-0.1], 1, r"trial 0 has rate -0\.1"),
        ([0.5, 0.5], 3, "2 rates for 3 trials|\\(2,\\) rates for 3 trials"),
    ],
    ids=["one", "negative", "count"],
)
def test_bad_dropout_is_named(rates, generators, match):
    gens = [torch.Generator() for _ in range(generators)]
    with pytest.raises(ValueError, match=match):
        TrialDropout(torch.tensor(rates), gens)


def test_vit_refuses_dropout_naming_the_setting():
    vit = ViT()
    g = torch.Generator().manual_seed(7)
    params = random_params(vit, VIT, (1, 8, 8), 2, g)
    x = torch.rand(2, 3, 1, 8, 8, generator=g, dtype=torch.float64)
    with pytest.raises(ValueError, match="training.dropout: the ViT has no dropout"):
        vit.forward(params, x, VIT, dropout=trial_dropout([0.0, 0.2]))
    with pytest.raises(ValueError, match="training.dropout"):
        vit.reference_module(VIT, (1, 8, 8), 10, dropout=trial_dropout([0.2]))
    zero = vit.forward(params, x, VIT, dropout=trial_dropout([0.0, 0.0]))
    assert torch.equal(zero, vit.forward(params, x, VIT))
