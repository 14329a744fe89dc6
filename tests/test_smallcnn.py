"""The Small CNN Zoo network (model ``smallcnn``): its shapes, batched form == reference
module, per-trial independence, gradients, and the analyses' view of its layers."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from weightzoo.analysis.features import bias_param, chunk_features, n_nodes, node_strengths
from weightzoo.analysis.spectral import ww_matrices
from weightzoo.data.catalog import IMAGE_SHAPES
from weightzoo.train.dropout import TrialDropout
from weightzoo.train.memory import step_memory
from weightzoo.train.models import (
    FAMILIES,
    SmallCNN,
    family_for_device,
    get_family,
    trial_state_dict,
)
from weightzoo.train.reference import train_reference
from weightzoo.train.seeds import trial_seed
from weightzoo.train.shapes import SmallCNNShapes, check_strategy, get_shapes
from weightzoo.train.trainer import TrainSettings, train_trials

ZOO = {"channels": 16}  # Unterthiner et al.'s network: 3 layers, valid padding
SAME = {"channels": 6, "padding": "same"}
TWO = {"channels": 6, "layers": 2}

# (arch, input shape) that fit: the zoo's MNIST/F-MNIST and CIFAR-10 inputs, digits with
# 'same' padding (3 layers) or two valid layers
FITTING = [
    pytest.param({"channels": 5}, (1, 28, 28), id="valid-28"),
    pytest.param({"channels": 5}, (3, 32, 32), id="valid-cifar"),
    pytest.param(SAME, (1, 8, 8), id="same-digits"),
    pytest.param(SAME, (3, 32, 32), id="same-cifar"),
    pytest.param(TWO, (1, 8, 8), id="two-layers-digits"),
    pytest.param({"channels": 4, "layers": 1}, (1, 8, 8), id="one-layer-digits"),
]
STRATEGIES = [
    pytest.param(SmallCNN("loop"), id="loop"),
    pytest.param(SmallCNN("grouped"), id="grouped"),
    pytest.param(SmallCNN("loop_nhwc"), id="loop_nhwc"),
]
# the strategies that run each trial on its own: bit-identical alone or in any ensemble
PER_TRIAL = ["loop", "loop_nhwc"]


def seeds(n, start=0):
    return [trial_seed(0, "test-smallcnn", "arch", i) for i in range(start, start + n)]


def random_params(arch, input_shape, n_trials, generator, dtype=torch.float64):
    shapes = SmallCNN().param_shapes(arch, input_shape, 10)
    return {
        name: 0.3 * torch.randn(n_trials, *shape, generator=generator, dtype=dtype)
        for name, shape in shapes.items()
    }


def n_params(arch, input_shape) -> int:
    shapes = SmallCNNShapes().param_shapes(arch, input_shape, 10)
    return sum(int(np.prod(s)) for s in shapes.values())


def test_the_zoo_network_has_4970_parameters():
    assert n_params(ZOO, (1, 28, 28)) == 4970  # their README: 3 x 16 channels, 1-channel input
    shapes = SmallCNNShapes().param_shapes(ZOO, (1, 28, 28), 10)
    assert list(shapes) == [
        *(f"conv{i}.{kind}" for i in (1, 2, 3) for kind in ("weight", "bias")),
        "fc.weight",
        "fc.bias",
    ]
    assert shapes["conv1.weight"] == (16, 1, 3, 3)
    assert shapes["conv3.weight"] == (16, 16, 3, 3)
    assert shapes["fc.weight"] == (10, 16)
    # global average pooling: the input size changes no shape, the input channels conv1 only
    assert n_params(ZOO, (1, 32, 32)) == 4970
    assert n_params(ZOO, (3, 32, 32)) == 4970 + 2 * 16 * 9


def test_feature_maps_follow_keras_valid_and_same():
    shapes = SmallCNNShapes()
    assert shapes.map_sizes(ZOO, 28, 28) == [(13, 13), (6, 6), (2, 2)]
    assert shapes.map_sizes({**ZOO, "padding": "same"}, 28, 28) == [(14, 14), (7, 7), (4, 4)]
    assert shapes.map_sizes(SAME, 8, 8) == [(4, 4), (2, 2), (1, 1)]
    assert shapes.map_sizes(TWO, 8, 8) == [(3, 3), (1, 1)]


@pytest.mark.parametrize("dataset", sorted(IMAGE_SHAPES))
def test_every_dataset_has_an_arch_that_fits(dataset):
    shape = IMAGE_SHAPES[dataset]
    arch = ZOO if min(shape[1:]) >= 15 else {**ZOO, "padding": "same"}
    assert SmallCNNShapes().param_shapes(arch, shape, 10)["fc.weight"] == (10, 16)


def test_names_registry_and_strategy():
    shapes = get_shapes("smallcnn")
    assert shapes.arch_name(ZOO) == "c16"
    assert shapes.arch_name({**ZOO, "layers": 3, "padding": "valid"}) == "c16"
    assert shapes.arch_name(TWO) == "c6-l2"
    assert shapes.arch_name(SAME) == "c6-same"
    assert isinstance(FAMILIES["smallcnn"], SmallCNN)
    assert get_family("smallcnn").strategy == "loop"
    cpu, cuda, mps = torch.device("cpu"), torch.device("cuda"), torch.device("mps")
    assert family_for_device("smallcnn", "auto", cpu).strategy == "loop_nhwc"
    assert family_for_device("smallcnn", "auto", cuda).strategy == "grouped"
    assert family_for_device("smallcnn", "auto", mps).strategy == "loop"
    assert family_for_device("smallcnn", "grouped", cpu).strategy == "grouped"
    assert family_for_device("smallcnn", "loop", cpu).strategy == "loop"
    assert family_for_device("cnn", "auto", cpu).strategy == "loop"  # the CNN keeps its loop
    check_strategy("smallcnn", "loop")  # applies, no error


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: SmallCNNShapes().param_shapes(ZOO, (1, 8, 8), 10), "padding: same"),
        (lambda: SmallCNNShapes().arch_name({**ZOO, "padding": "full"}), "padding"),
        (lambda: SmallCNNShapes().arch_name({**ZOO, "layers": 0}), "layers"),
        (lambda: SmallCNN("vmap"), "strategy"),
    ],
    ids=["valid-digits", "padding", "layers", "strategy"],
)
def test_bad_arch_is_named(call, match):
    with pytest.raises(ValueError, match=match):
        call()


@pytest.mark.parametrize("activation", ["relu", "tanh"])
@pytest.mark.parametrize(("arch", "input_shape"), FITTING)
@pytest.mark.parametrize("family", STRATEGIES)
def test_batched_forward_equals_reference_module(family, arch, input_shape, activation):
    g = torch.Generator().manual_seed(1)
    params = random_params(arch, input_shape, 3, g)
    x = torch.rand(3, 4, *input_shape, generator=g, dtype=torch.float64)  # [T, B, C, H, W]
    logits = family.forward(params, x, arch, activation=activation)  # [T, B, 10]
    assert logits.shape == (3, 4, 10)
    for k in range(3):
        module = family.reference_module(arch, input_shape, 10, activation=activation).double()
        module.load_state_dict(trial_state_dict(params, k))
        assert (logits[k] - module(x[k])).abs().max().item() <= 1e-12, k


@pytest.mark.parametrize(("arch", "input_shape"), FITTING)
def test_reference_module_state_dict_matches_param_shapes(arch, input_shape):
    family = SmallCNN()
    module = family.reference_module(arch, input_shape, 10)
    shapes = family.param_shapes(arch, input_shape, 10)
    assert [(n, tuple(p.shape)) for n, p in module.state_dict().items()] == list(shapes.items())


@pytest.mark.parametrize("family", STRATEGIES)
def test_dropout_after_every_conv_equals_the_reference_module(family):
    g = torch.Generator().manual_seed(2)
    params = random_params(SAME, (1, 8, 8), 3, g)
    x = torch.rand(3, 5, 1, 8, 8, generator=g, dtype=torch.float64)
    rates = [0.4, 0.0, 0.6]

    def dropout(rs, first):
        gens = [torch.Generator().manual_seed(first + t) for t in range(len(rs))]
        return TrialDropout(torch.tensor(rs, dtype=torch.float64), gens)

    logits = family.forward(params, x, SAME, dropout=dropout(rates, 20))
    plain = family.forward(params, x, SAME)
    assert torch.equal(logits[1], plain[1]), "a zero rate changes no bits"
    assert not torch.equal(logits[0], plain[0])
    for k in range(3):
        module = family.reference_module(SAME, (1, 8, 8), 10, dropout=dropout([rates[k]], 20 + k))
        module.double().load_state_dict(trial_state_dict(params, k))
        assert (logits[k] - module(x[k])).abs().max().item() <= 1e-12, k


def test_loop_and_grouped_draw_the_same_masks():
    g = torch.Generator().manual_seed(3)
    params = random_params(ZOO, (1, 28, 28), 3, g)
    x = torch.rand(3, 4, 1, 28, 28, generator=g, dtype=torch.float64)

    def dropout():
        gens = [torch.Generator().manual_seed(30 + t) for t in range(3)]
        return TrialDropout(torch.tensor([0.3, 0.5, 0.1], dtype=torch.float64), gens)

    loop = SmallCNN("loop").forward(params, x, ZOO, dropout=dropout())
    for strategy in ("grouped", "loop_nhwc"):
        other = SmallCNN(strategy).forward(params, x, ZOO, dropout=dropout())
        torch.testing.assert_close(loop, other, rtol=0, atol=1e-12, msg=strategy)


def _logits_and_grads(params, x, y, trials, dropout=None, arch=ZOO, strategy="loop", **options):
    """One forward and backward of ``trials`` (the trainer's loss: per-trial means summed)."""
    leaves = {n: p[trials].clone().requires_grad_(True) for n, p in params.items()}
    family = SmallCNN(strategy)
    logits = family.forward(leaves, x[trials], arch, dropout=dropout, **options)  # [t, B, 10]
    loss = F.cross_entropy(logits.flatten(0, 1), y[trials].flatten(), reduction="none")
    loss.view(len(trials), -1).mean(1).sum().backward()
    return logits.detach(), {n: p.grad for n, p in leaves.items()}


@pytest.mark.parametrize("activation", ["relu", "tanh"])
@pytest.mark.parametrize("strategy", PER_TRIAL)
@pytest.mark.parametrize("with_dropout", [False, True], ids=["plain", "dropout"])
def test_one_trial_alone_equals_it_inside_an_ensemble_bit_for_bit(
    with_dropout, strategy, activation
):
    g = torch.Generator().manual_seed(4)
    params = random_params(ZOO, (1, 28, 28), 5, g, dtype=torch.float32)
    x = torch.rand(5, 8, 1, 28, 28, generator=g)  # [T, B, 1, 28, 28]
    y = torch.randint(0, 10, (5, 8), generator=g)
    rates = [0.2, 0.5, 0.0, 0.3, 0.7]

    def dropout(trials):
        if not with_dropout:
            return None
        gens = [torch.Generator().manual_seed(40 + t) for t in trials]
        return TrialDropout(torch.tensor([rates[t] for t in trials]), gens)

    k = 3

    def run(trials):
        options = {"strategy": strategy, "activation": activation}
        return _logits_and_grads(params, x, y, trials, dropout(trials), **options)

    together, alone, elsewhere = run([0, 1, 2, 3, 4]), run([k]), run([4, k, 0])
    assert torch.equal(together[0][k], alone[0][0])
    assert torch.equal(together[0][k], elsewhere[0][1])
    for name in params:
        assert torch.equal(together[1][name][k], alone[1][name][0]), name
        assert torch.equal(together[1][name][k], elsewhere[1][name][1]), name


@pytest.mark.parametrize("activation", ["relu", "tanh"])
@pytest.mark.parametrize(("arch", "input_shape"), [*FITTING[:3], FITTING[-1]])
@pytest.mark.parametrize("family", STRATEGIES)
def test_gradients_equal_the_reference_modules(family, arch, input_shape, activation):
    g = torch.Generator().manual_seed(5)
    params = random_params(arch, input_shape, 3, g)
    x = torch.rand(3, 6, *input_shape, generator=g, dtype=torch.float64)
    y = torch.randint(0, 10, (3, 6), generator=g)
    leaves = {n: p.clone().requires_grad_(True) for n, p in params.items()}
    logits = family.forward(leaves, x, arch, activation=activation)
    loss = F.cross_entropy(logits.flatten(0, 1), y.flatten(), reduction="none")
    loss.view(3, -1).mean(1).sum().backward()
    for k in range(3):
        module = family.reference_module(arch, input_shape, 10, activation=activation).double()
        module.load_state_dict(trial_state_dict(params, k))
        F.cross_entropy(module(x[k]), y[k]).backward()
        for name, p in module.named_parameters():
            diff = (leaves[name].grad[k] - p.grad).abs().max().item()
            assert diff <= 1e-12, (k, name, diff)


@pytest.mark.parametrize("activation", ["relu", "tanh"])
@pytest.mark.parametrize("strategy", PER_TRIAL)
def test_gradcheck_of_the_batched_forward(strategy, activation):
    """Autograd's gradients against finite differences (fast mode: one random direction)."""
    arch = {"channels": 2, "padding": "same"}
    g = torch.Generator().manual_seed(6)
    params = random_params(arch, (1, 8, 8), 2, g)
    x = torch.rand(2, 3, 1, 8, 8, generator=g, dtype=torch.float64)
    names = list(params)

    def f(*tensors):
        params = dict(zip(names, tensors, strict=True))
        return SmallCNN(strategy).forward(params, x, arch, activation=activation)

    inputs = tuple(p.requires_grad_(True) for p in params.values())
    assert torch.autograd.gradcheck(f, inputs, fast_mode=True)


def test_the_analyses_read_its_layers_as_the_cnns():
    """Conv kernels as the CNN's (a node = one Cin x 3 x 3 kernel), the FC as a matrix: the
    features table and the spectra take them without a special case."""
    family = SmallCNN()
    layers = family.layers(ZOO)
    assert [li.label for li in layers] == ["Conv1", "Conv2", "Conv3", "FC"]
    assert [li.incoming_axes for li in layers] == [(1, 2, 3)] * 3 + [(1,)]
    assert get_family("cnn").layers({"channels": 4})[0].incoming_axes == (1, 2, 3)
    shapes = family.param_shapes(ZOO, (1, 28, 28), 10)
    rng = np.random.default_rng(0)
    for li in layers:
        w = rng.normal(size=(4, *shapes[li.param]))  # [t, *shape]
        bias = rng.normal(size=(4, *shapes[bias_param(li.param)]))
        assert n_nodes(shapes[li.param], li) == (10 if li.label == "FC" else 16)
        assert node_strengths(w, li).shape == (4, n_nodes(shapes[li.param], li))
        feats = chunk_features(w, bias, li, initial=rng.normal(size=w.shape))
        assert all(np.isfinite(v).all() for v in feats.values()), li
        assert ww_matrices(w, li).shape[0] == 4


@pytest.mark.parametrize("strategy", PER_TRIAL)
def test_trained_alone_and_in_an_ensemble_to_the_same_bits(digits_tensors, strategy):
    """Through the trainer: the same trial alone, among five, and elsewhere among four."""
    data = digits_tensors(torch.float32, n_train=300)
    settings = TrainSettings(epochs=2, init_std=0.1)
    ensemble_seeds, k = seeds(5), 3
    family = SmallCNN(strategy)

    def train(trial_seeds):
        return train_trials(family, SAME, trial_seeds, data, settings, progress_file=None)

    together, alone = train(ensemble_seeds), train([ensemble_seeds[k]])
    elsewhere = train([*seeds(2, start=10), ensemble_seeds[k], *seeds(1, start=20)])
    for name in together.final:
        assert np.array_equal(together.final[name][k], alone.final[name][0]), name
        assert np.array_equal(together.final[name][k], elsewhere.final[name][2]), name
    for name in together.metrics:
        assert np.array_equal(together.metrics[name][k], alone.metrics[name][0]), name
    assert set(together.dynamics) == {li.param for li in family.layers(SAME)}
    assert not np.array_equal(together.final["conv1.weight"], together.initial["conv1.weight"])


@pytest.mark.parametrize("strategy", PER_TRIAL)
def test_trainer_matches_the_plain_module_and_adam_in_float64(digits_tensors, strategy):
    data = digits_tensors(torch.float64, n_train=300)
    settings = TrainSettings(epochs=2, init_std=0.1, dtype="float64")
    trial_seeds = seeds(2)
    family = SmallCNN(strategy)
    batched = train_trials(family, SAME, trial_seeds, data, settings, progress_file=None)
    ref = train_reference(SmallCNN(), SAME, trial_seeds[1], data, settings)
    for name, p in ref.state_dict().items():
        diff = np.abs(batched.final[name][1] - p.numpy()).max()
        assert diff <= 1e-10, (name, diff)
    assert np.abs(batched.final["conv1.weight"] - batched.initial["conv1.weight"]).max() > 1e-3


@pytest.mark.parametrize("activation", ["relu", "tanh"])
def test_loop_nhwc_agrees_with_the_reference_module_in_float32(activation):
    """The CPU default at the zoo's shapes, in the trainer's dtype: logits and gradients
    within float32 rounding of the reference module's (other kernels, other sums)."""
    g = torch.Generator().manual_seed(7)
    params = random_params(ZOO, (1, 28, 28), 2, g, dtype=torch.float32)
    x = torch.rand(2, 64, 1, 28, 28, generator=g)
    y = torch.randint(0, 10, (2, 64), generator=g)
    logits, grads = _logits_and_grads(
        params, x, y, [0, 1], strategy="loop_nhwc", activation=activation
    )
    for k in range(2):
        module = SmallCNN().reference_module(ZOO, (1, 28, 28), 10, activation=activation)
        module.load_state_dict(trial_state_dict(params, k))
        ref_logits = module(x[k])
        F.cross_entropy(ref_logits, y[k]).backward()
        torch.testing.assert_close(logits[k], ref_logits.detach(), rtol=1e-5, atol=1e-6)
        for name, p in module.named_parameters():
            scale = p.grad.abs().max().item()
            torch.testing.assert_close(grads[name][k], p.grad, rtol=0, atol=1e-5 * scale)


def test_loop_nhwc_refuses_a_gradient_for_the_images():
    g = torch.Generator().manual_seed(8)
    params = random_params(ZOO, (1, 28, 28), 1, g, dtype=torch.float32)
    x = torch.rand(1, 2, 1, 28, 28, generator=g, requires_grad=True)
    with pytest.raises(ValueError, match="no gradient for the images"):
        SmallCNN("loop_nhwc").forward(params, x, ZOO)


@pytest.mark.parametrize("family", STRATEGIES)
def test_every_strategy_sizes_its_step_on_the_meta_device(family):
    """The training job sizes its sub-ensembles by a forward on ``meta`` (train.memory)."""
    memory = step_memory(family, ZOO, (1, 28, 28), 10, 512)
    conv1_map = 512 * 16 * 13 * 13 * 4  # bytes of the first conv's float32 output
    assert memory.largest_array == conv1_map
    assert 2 * conv1_map < memory.forward < 3 * conv1_map
