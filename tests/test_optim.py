"""Block-aligned fused Adam: a trial's update never depends on how many trials are stacked."""

from __future__ import annotations

import pytest
import torch

from weightzoo.train.optim import (
    VECTOR_BLOCK,
    BlockAlignedAdam,
    PerTrialOptimizer,
    TrialSliceOptimizer,
)

# per-trial sizes with awkward tails (a 3x3 kernel of 6 channels is 54) and ensemble sizes
SIZES = (1, 7, 9, 10, 54, 100, 1000)
ENSEMBLES = (3, 7, 37)
STEPS = 10


def trial_tensors(trial: int, n: int, dtype: torch.dtype):
    """One trial's start value ``[n]`` and ``STEPS`` gradients, gradients spanning 1..1e-5."""
    g = torch.Generator().manual_seed(1000 + trial)
    start = torch.randn(n, generator=g, dtype=torch.float64)
    scales = [10.0 ** -(s % 6) for s in range(STEPS)]
    grads = [torch.randn(n, generator=g, dtype=torch.float64) * scale for scale in scales]
    return start.to(dtype), [grad.to(dtype) for grad in grads]


def train(make_optimizer, trials, n: int, dtype: torch.dtype) -> torch.Tensor:
    """``trials`` stacked as one ``[T, n]`` tensor, ``STEPS`` Adam steps -> ``[T, n]``."""
    data = [trial_tensors(t, n, dtype) for t in trials]
    p = torch.stack([start for start, _ in data]).requires_grad_(True)  # [T, n]
    optimizer = make_optimizer([p])
    for s in range(STEPS):
        p.grad = torch.stack([grads[s] for _, grads in data])  # [T, n]
        optimizer.step()
    return p.detach()


def differences_alone_vs_stacked(make_optimizer, dtype) -> list[tuple[int, int]]:
    """(n, T) pairs where some trial of a T-ensemble differs from the same trial alone."""
    found = []
    for n in SIZES:
        alone = torch.cat([train(make_optimizer, [t], n, dtype) for t in range(max(ENSEMBLES))])
        for t_count in ENSEMBLES:
            together = train(make_optimizer, range(t_count), n, dtype)
            if not torch.equal(together, alone[:t_count]):
                found.append((n, t_count))
    return found


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_block_aligned_adam_gives_every_trial_the_same_update_alone_or_stacked(dtype):
    assert differences_alone_vs_stacked(lambda ps: BlockAlignedAdam(ps, lr=1e-3), dtype) == []


def test_plain_fused_adam_on_the_cpu_does_not():
    # why BlockAlignedAdam exists: the fused kernel's scalar tail rounds differently
    found = differences_alone_vs_stacked(
        lambda ps: torch.optim.Adam(ps, lr=1e-3, fused=True), torch.float32
    )
    if not found:
        pytest.skip("this torch's fused CPU Adam rounds its tail like its vector body")
    assert all(n % VECTOR_BLOCK for n, _ in found)


def test_block_aligned_adam_is_textbook_adam_in_float64():
    n, trials = 130, range(5)  # 650 elements: ten blocks and a 10-element tail
    ours = train(lambda ps: BlockAlignedAdam(ps, lr=1e-3), trials, n, torch.float64)
    textbook = train(
        lambda ps: torch.optim.Adam(ps, lr=1e-3, foreach=False), trials, n, torch.float64
    )
    assert (ours - textbook).abs().max().item() <= 1e-12
    start = torch.stack([trial_tensors(t, n, torch.float64)[0] for t in trials])
    assert (ours - start).abs().max().item() > 1e-3  # it moved


def test_several_tensors_and_a_nan_trial_stay_separate():
    a = torch.randn(4, 9, 7, dtype=torch.float64, requires_grad=True)  # [T, 9, 7]
    b = torch.randn(4, 3, dtype=torch.float64, requires_grad=True)  # [T, 3]
    a_ref, b_ref = (t.detach().clone().requires_grad_(True) for t in (a, b))
    ours = BlockAlignedAdam([a, b], lr=1e-2)
    textbook = torch.optim.Adam([a_ref, b_ref], lr=1e-2)
    for step in range(3):
        for p, q in ((a, a_ref), (b, b_ref)):
            grad = torch.full_like(p, 0.5 + step)
            grad[2] = float("nan") if step == 1 else grad[2]  # trial 2 diverges
            p.grad, q.grad = grad, grad.clone()
        ours.step()
        textbook.step()
    for p, q in ((a, a_ref), (b, b_ref)):
        assert torch.isnan(p[2]).all()
        keep = [0, 1, 3]
        assert (p[keep] - q[keep]).abs().max().item() <= 1e-12


def test_bad_parameters_are_named():
    with pytest.raises(ValueError, match=r"parameter 0 \(3, 2\) is not contiguous"):
        BlockAlignedAdam([torch.zeros(2, 3).t()], lr=1e-3)
    p = torch.zeros(5, requires_grad=True)
    with pytest.raises(RuntimeError, match=r"BlockAlignedAdam: parameter 0 \(5,\) has no gradient"):
        BlockAlignedAdam([p], lr=1e-3).step()


@pytest.mark.parametrize("cls", [PerTrialOptimizer, TrialSliceOptimizer])
def test_per_trial_optimizers_name_a_parameter_without_gradient(cls):
    """A stacked parameter the loss never reached is named, not stepped as zero."""
    used = torch.zeros(2, 3, requires_grad=True)
    unused = torch.zeros(2, 4, requires_grad=True)
    optimizer = cls([used, unused], "adam", lr=[1e-3, 1e-2], weight_decay=[0.0, 0.0])
    used.sum().backward()
    with pytest.raises(
        RuntimeError, match=rf"{cls.__name__}: parameter 1 \(2, 4\) has no gradient"
    ):
        optimizer.step()


@pytest.mark.parametrize("kind", ["adam", "sgd_momentum", "rmsprop"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_per_trial_optimizer_gives_every_trial_the_same_update_alone_or_stacked(kind, dtype):
    """Each trial with its own learning rate and weight decay (from its id), stacked with
    any number of others: the same bits as alone."""

    def make(trials):
        lr = [1e-3 * (1 + t % 5) for t in trials]
        decay = [0.0 if t % 3 == 0 else 1e-3 * t for t in trials]
        return lambda ps: PerTrialOptimizer(ps, kind, lr, decay)

    for n in SIZES:
        alone = torch.cat([train(make([t]), [t], n, dtype) for t in range(max(ENSEMBLES))])
        for t_count in ENSEMBLES:
            trials = range(t_count)
            together = train(make(trials), trials, n, dtype)
            assert torch.equal(together, alone[:t_count]), (kind, n, t_count)
