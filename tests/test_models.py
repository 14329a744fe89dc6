"""CNN and ViT families: batched form == reference module, per-trial independence, shapes."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from weightzoo.train.models import (
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
