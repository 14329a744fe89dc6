"""What only a GPU can show (skipped without one; see conftest.py).

Every model and strategy in float32 alone vs inside ensembles of 1, 5 and 6 (largest
difference reported and bounded), two runs bit-equal (CUDA's deterministic mode), float64
vs the plain ``nn.Module`` reference (CUDA), grouped vs loop conv (the MPS concern),
initial weights equal to the CPU's, NaN isolation, and the peak memory of the largest
paper job against weightzoo.train.memory's estimate. The layer dynamics
(weightzoo.train.dynamics) are
checked beside the weights: reported alone vs ensemble, bit-equal on reruns, NaN only for
the poisoned trial."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from weightzoo.train.memory import step_memory, trials_that_fit
from weightzoo.train.models import get_family
from weightzoo.train.reference import train_reference
from weightzoo.train.seeds import trial_seed
from weightzoo.train.trainer import (
    EnsembleTrainer,
    TensorData,
    TrainSettings,
    train_trials,
)

pytestmark = pytest.mark.gpu

# alone vs ensemble on a GPU: kernels are picked by shape, so equal only within this
# (max abs difference of any final weight after 2 epochs on digits, init N(0, 0.1²))
ENSEMBLE_TOLERANCE = 1e-4

MODELS = [
    pytest.param("dnn", {"widths": [24, 12]}, None, id="dnn"),
    pytest.param("cnn", {"channels": 4}, "loop", id="cnn-loop"),
    pytest.param("cnn", {"channels": 4}, "grouped", id="cnn-grouped"),
    pytest.param("cnn", {"channels": 4, "head": "gap"}, "grouped", id="cnn-grouped-gap"),
    pytest.param(
        "vit", {"d_model": 16, "nhead": 4, "patch": 4, "dim_feedforward": 32}, None, id="vit"
    ),
]
SETTINGS = TrainSettings(epochs=2, init_std=0.1)


def family(model, strategy):
    return get_family(model, strategy=strategy) if strategy else get_family(model)


def seeds(n, start=0):
    return [trial_seed(0, "test-gpu", "arch", i) for i in range(start, start + n)]


@pytest.fixture(scope="module")
def digits_on(digits_arrays):
    def make(device, dtype=torch.float32):
        x_tr, y_tr, x_te, y_te = digits_arrays
        return TensorData.from_arrays(x_tr, y_tr, x_te, y_te, 16, dtype=dtype, device=device)

    return make


def max_diff(a: dict, i: int, b: dict, j: int) -> float:
    return max(float(np.abs(a[n][i] - b[n][j]).max()) for n in a)


def max_rel_diff_dynamics(a: dict, i: int, b: dict, j: int) -> float:
    """Largest relative difference of any layer dynamics value (weightzoo.train.dynamics)."""
    return max(
        float((np.abs(a[n][s][i] - b[n][s][j]) / np.abs(b[n][s][j])).max()) for n in a for s in a[n]
    )


@pytest.mark.parametrize(("model", "arch", "strategy"), MODELS)
def test_alone_vs_ensembles_of_1_5_6(model, arch, strategy, gpu, digits_on, report):
    data, fam, k = digits_on(gpu), family(model, strategy), 3
    alone = train_trials(fam, arch, [seeds(6)[k]], data, SETTINGS, progress_file=None)
    worst = worst_dynamics = 0.0
    for n in (1, 5, 6):
        members = seeds(6)[:n] if n > k else [seeds(6)[k]]
        pos = members.index(seeds(6)[k])
        together = train_trials(fam, arch, members, data, SETTINGS, progress_file=None)
        worst = max(worst, max_diff(together.final, pos, alone.final, 0))
        dynamics = max_rel_diff_dynamics(together.dynamics, pos, alone.dynamics, 0)
        worst_dynamics = max(worst_dynamics, dynamics)
    report(
        f"{gpu.type} {model} {fam.arch_name(arch)} {strategy or ''}: "
        f"alone vs ensemble of 1/5/6, max |diff| {worst:.3g}, "
        f"layer dynamics max relative diff {worst_dynamics:.3g} (reported, not bounded)"
    )
    assert worst <= ENSEMBLE_TOLERANCE


@pytest.mark.parametrize(("model", "arch", "strategy"), MODELS)
def test_two_runs_are_bit_equal(model, arch, strategy, gpu, digits_on, report):
    if gpu.type != "cuda":
        pytest.skip("bit-equal reruns are promised on CUDA (deterministic mode) only")
    data, fam = digits_on(gpu), family(model, strategy)
    a = train_trials(fam, arch, seeds(5), data, SETTINGS, progress_file=None)
    b = train_trials(fam, arch, seeds(5), data, SETTINGS, progress_file=None)
    for name in a.final:
        assert np.array_equal(a.final[name], b.final[name]), name
    for name in a.metrics:
        assert np.array_equal(a.metrics[name], b.metrics[name], equal_nan=True), name
    for name, stats in a.dynamics.items():
        for stat, values in stats.items():
            assert np.array_equal(values, b.dynamics[name][stat]), (name, stat)


@pytest.mark.parametrize(("model", "arch", "strategy"), MODELS)
def test_float64_matches_the_reference_on_cuda(model, arch, strategy, gpu, digits_on):
    if gpu.type != "cuda":
        pytest.skip("float64 vs the reference: CUDA only (MPS has no float64)")
    data, fam = digits_on(gpu, torch.float64), family(model, strategy)
    settings = TrainSettings(epochs=2, init_std=0.1, dtype="float64")
    batched = train_trials(fam, arch, seeds(3), data, settings, progress_file=None)
    for k in (0, 2):
        ref = train_reference(fam, arch, seeds(3)[k], data, settings)
        for name, p in ref.state_dict().items():
            diff = np.abs(batched.final[name][k] - p.cpu().numpy()).max()
            assert diff <= 1e-10, (name, diff)


@pytest.mark.parametrize("head", ["flatten", "gap"])
def test_grouped_conv_agrees_with_the_loop(head, gpu, digits_on, report):
    """The MPS worry: grouped float32 convs with one input channel per group (digits have
    one channel) silently wrong. Forward pass and 2 epochs of training, grouped vs loop."""
    data, arch = digits_on(gpu), {"channels": 8, "head": head}
    loop = train_trials(
        get_family("cnn", strategy="loop"), arch, seeds(6), data, SETTINGS, progress_file=None
    )
    grouped = train_trials(
        get_family("cnn", strategy="grouped"), arch, seeds(6), data, SETTINGS, progress_file=None
    )
    worst = max(max_diff(loop.final, k, grouped.final, k) for k in range(6))
    report(f"{gpu.type} cnn-{head}: grouped vs loop after 2 epochs, max |diff| {worst:.3g}")
    assert worst <= ENSEMBLE_TOLERANCE


@pytest.mark.parametrize(("model", "arch", "strategy"), MODELS)
def test_initial_weights_equal_the_cpus(model, arch, strategy, gpu, digits_on, digits_arrays):
    fam = family(model, strategy)
    on_gpu = EnsembleTrainer(fam, arch, seeds(4), digits_on(gpu), SETTINGS).snapshot()
    on_cpu = EnsembleTrainer(fam, arch, seeds(4), digits_on("cpu"), SETTINGS).snapshot()
    for name in on_cpu:
        assert np.array_equal(on_gpu[name], on_cpu[name]), name


def test_a_nan_trial_leaves_the_others_alone(gpu, digits_on):
    data, fam, arch = digits_on(gpu), get_family("dnn"), {"widths": [24, 12]}
    clean = train_trials(fam, arch, seeds(4), data, SETTINGS, progress_file=None)
    trainer = EnsembleTrainer(fam, arch, seeds(4), data, SETTINGS)
    with torch.no_grad():
        trainer.params["fc2.weight"][1, 0, 0] = float("inf")
    poisoned = trainer.run(progress_file=None)
    assert poisoned.diverged_epoch.tolist() == [-1, 0, -1, -1]
    for k in (0, 2, 3):
        diff = max_diff(clean.final, k, poisoned.final, k)
        if gpu.type == "cuda":  # deterministic mode and the same shapes: bit-equal
            assert diff == 0.0, k
        else:
            assert diff <= ENSEMBLE_TOLERANCE, k
    for name, stats in poisoned.dynamics.items():
        for stat, values in stats.items():  # [T, E]
            assert np.isnan(values[1]).all(), (name, stat)
            assert np.isfinite(values[[0, 2, 3]]).all(), (name, stat)


@pytest.mark.parametrize(
    ("model", "arch", "input_shape", "trials"),
    [
        ("cnn", {"channels": 128}, (3, 32, 32), 100),  # cnn_cifar10's largest job
        ("vit", {"d_model": 784, "nhead": 16, "patch": 8, "dim_feedforward": 2048}, (3, 32, 32), 8),
    ],
    ids=["cnn_cifar10-c128", "vit_cifar10-d784"],
)
def test_peak_memory_of_the_largest_jobs(model, arch, input_shape, trials, gpu, report):
    if gpu.type != "cuda":
        pytest.skip("peak memory is read from torch.cuda")
    from weightzoo.train.models import family_for_device

    fam = family_for_device(model, "auto", gpu)
    estimate = step_memory(fam, arch, input_shape, 10, 100)
    free = int(0.9 * torch.cuda.get_device_properties(gpu).total_memory)
    trials = min(trials, trials_that_fit(estimate, free, None))
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, size=(1000, *input_shape), dtype=np.uint8)
    y = rng.integers(0, 10, size=1000)
    data = TensorData.from_arrays(x, y, x[:100], y[:100], 255, device=gpu)
    trainer = EnsembleTrainer(fam, arch, seeds(trials), data, TrainSettings(batch_size=100))
    torch.cuda.synchronize(gpu)
    base = torch.cuda.memory_allocated(gpu)
    torch.cuda.reset_peak_memory_stats(gpu)
    trainer.train_epoch()  # 10 steps
    torch.cuda.synchronize(gpu)
    peak = torch.cuda.max_memory_allocated(gpu) - base
    bound = estimate.training_bytes(trials)
    report(
        f"{torch.cuda.get_device_name(gpu)} {model} {fam.arch_name(arch)} x{trials} trials: "
        f"peak {peak / 2**30:.2f} GiB above data and weights, estimate {bound / 2**30:.2f} GiB"
    )
    assert peak <= bound


# --------------------------------------------------------------------------- per-trial settings
MIXED_VALUES = [
    {
        "lr": lr,
        "weight_decay": decay,
        "dropout": drop,
        "init_std": 0.1,
        "optimizer": optimizer,
        "activation": activation,
        "init": "normal",
        "train_fraction": 1.0,
    }
    for lr, decay, drop, optimizer, activation in [
        (1e-3, 0.0, 0.0, "adam", "relu"),
        (3e-3, 1e-4, 0.2, "adam", "relu"),
        (1e-2, 0.0, 0.1, "sgd_momentum", "tanh"),
        (2e-3, 1e-3, 0.3, "rmsprop", "relu"),
        (5e-3, 1e-5, 0.0, "adam", "relu"),
    ]
]


@pytest.mark.parametrize(
    ("model", "arch"),
    [("dnn", {"widths": [24, 12]}), ("smallcnn", {"channels": 8, "padding": "same"})],
)
def test_mixed_settings_alone_vs_ensemble(model, arch, gpu, digits_on, report):
    """Per-trial settings on the device: every trial of a mixed ensemble (several
    programs, per-trial rates and dropout) alone vs in the mix, difference bounded; the
    same run twice is bit-equal on CUDA."""
    data, fam = digits_on(gpu), get_family(model)
    mixed = train_trials(
        fam, arch, seeds(5), data, SETTINGS, progress_file=None, trial_values=MIXED_VALUES
    )
    worst = 0.0
    for k in range(5):
        alone = train_trials(
            fam,
            arch,
            seeds(5)[k : k + 1],
            data,
            SETTINGS,
            progress_file=None,
            trial_values=MIXED_VALUES[k : k + 1],
        )
        worst = max(worst, max_diff(mixed.final, k, alone.final, 0))
    report(f"{gpu.type} {model} mixed settings: alone vs ensemble, max |diff| {worst:.3g}")
    assert worst <= ENSEMBLE_TOLERANCE
    if gpu.type == "cuda":
        again = train_trials(
            fam, arch, seeds(5), data, SETTINGS, progress_file=None, trial_values=MIXED_VALUES
        )
        for name in mixed.final:
            assert np.array_equal(mixed.final[name], again.final[name]), name


# --------------------------------------------------------------------------- reconstruct
def test_predictor_fits_run_on_the_gpu_and_match_the_cpu(gpu, report):
    """The reconstruct stage's fits on the device (weightzoo.analysis.reconstruct): the
    same initial predictors and coordinate batches as the CPU (drawn there), so the
    errors agree up to rounding; a trial's fit alone vs beside others within tolerance."""
    from weightzoo.analysis.reconstruct import fit as rfit
    from weightzoo.analysis.reconstruct.settings import ReconstructSettings

    dnn = get_family("dnn")
    arch = {"widths": [24, 12]}
    shapes = dnn.param_shapes(arch, (1, 8, 8), 10)
    g = torch.Generator().manual_seed(0)
    weights = {k: torch.randn(3, *s, generator=g) * 0.1 for k, s in shapes.items()}
    settings = ReconstructSettings(ratios=(0.25,), claim_ratio=0.25, steps=50, batch_rows=256)

    def errors(device, index):
        part = {k: v[index].to(device) for k, v in weights.items()}
        targets = rfit.prepare("dnn", dnn, arch, part, settings)
        mlp = rfit.fit_predictors(targets, 0.25, settings, [7 + i for i in index])
        assert mlp.weights[0].device.type == torch.device(device).type
        with torch.no_grad():
            rebuilt = rfit.rebuild(targets, rfit.predict_rows(mlp, targets))
        return rfit.relative_errors(part, rebuilt, [p.param for p in targets.grids])[1].cpu()

    on_gpu, on_cpu = errors(gpu, [0, 1, 2]), errors("cpu", [0, 1, 2])
    alone = errors(gpu, [0, 1])
    report(f"reconstruct: |GPU - CPU| error {float((on_gpu - on_cpu).abs().max()):.2e}, "
           f"alone vs ensemble {float((on_gpu[0] - alone[0]).abs()):.2e}")  # fmt: skip
    torch.testing.assert_close(on_gpu, on_cpu, rtol=0, atol=1e-3)
    torch.testing.assert_close(on_gpu[0], alone[0], rtol=0, atol=1e-3)
