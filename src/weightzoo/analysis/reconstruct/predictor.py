"""The predictor networks: one small MLP per trial, all trials' MLPs stacked.

Every weight of a trial's predictor is one slice of a stacked ``[T, ...]`` tensor, and
every layer is one ``torch.baddbmm`` over the trial axis, as the trainer runs its zoos
(weightzoo.train.trainer). Each trial draws its initial predictor and its coordinate
batches from its own generator, and its loss is its own mean: the sum of the trials'
losses gives each trial exactly its own gradient, and Adam is element-wise, so a trial's
fit does not depend on which trials share its chunk.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from ...train.seeds import derive_seed


def mlp_sizes(d_in: int, hidden: int, depth: int, d_out: int) -> list[int]:
    return [d_in, *([hidden] * depth), d_out]


def n_params(sizes: Sequence[int]) -> int:
    return sum(a * b + b for a, b in zip(sizes[:-1], sizes[1:], strict=True))


def hidden_for_budget(budget: float, d_in: int, depth: int, d_out: int) -> int:
    """The widest hidden layer whose MLP has at most ``budget`` parameters (at least 1)."""
    hidden = 1
    while n_params(mlp_sizes(d_in, hidden + 1, depth, d_out)) <= budget:
        hidden += 1
    return hidden


def generators(seeds: Sequence[int], stream: str) -> list[torch.Generator]:
    """One CPU generator per trial, from the trial's seed and the stream's name."""
    return [torch.Generator().manual_seed(derive_seed(int(s), stream)) for s in seeds]


class StackedMLP:
    """``T`` MLPs of the same sizes, ReLU between layers; weights ``[T, in, out]``."""

    def __init__(self, sizes, gens: Sequence[torch.Generator], dtype, device):
        self.weights, self.biases = [], []
        for a, b in zip(sizes[:-1], sizes[1:], strict=True):
            bound = 1 / math.sqrt(a)  # nn.Linear's default init, drawn per trial in float64
            w = torch.stack([_uniform((a, b), bound, g) for g in gens])  # [T, in, out]
            bias = torch.stack([_uniform((1, b), bound, g) for g in gens])  # [T, 1, out]
            # cast on the CPU, then move: Apple MPS has no float64
            self.weights.append(w.to(dtype).to(device).requires_grad_(True))
            self.biases.append(bias.to(dtype).to(device).requires_grad_(True))

    def parameters(self) -> list[Tensor]:
        return [*self.weights, *self.biases]

    @property
    def n_params(self) -> int:
        """One trial's MLP parameters."""
        return n_params([self.weights[0].shape[1], *(w.shape[2] for w in self.weights)])

    def __call__(self, x: Tensor, trials: slice | None = None) -> Tensor:
        """``x [T, b, d_in]`` -> ``[T, b, d_out]``; with ``trials``, those trials' MLPs only
        (``x``: their inputs; gradients flow into the stacked weights)."""
        h = x
        last = len(self.weights) - 1
        for i, (w, b) in enumerate(zip(self.weights, self.biases, strict=True)):
            if trials is not None:
                w, b = w[trials], b[trials]
            h = torch.baddbmm(b, h, w)  # [T, b, out]
            if i < last:
                h = F.relu(h)
        return h


def _uniform(shape, bound: float, g: torch.Generator) -> Tensor:
    return (torch.rand(shape, generator=g, dtype=torch.float64) * 2 - 1) * bound


def cosine_lr(optimizer: torch.optim.Optimizer, base: float, step: int, steps: int) -> None:
    """Cosine decay from ``base`` to 0 over ``steps``."""
    for group in optimizer.param_groups:
        group["lr"] = base * 0.5 * (1 + math.cos(math.pi * step / max(steps, 1)))
