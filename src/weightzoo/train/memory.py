"""How many trials of one architecture fit on the training device at once.

The batched trainer's memory grows linearly with the trials it trains together: the CNN's
conv output alone is ``[T, batch, C, H', W']`` (``cnn_cifar10`` with C=128 at 100 trials:
100·100·128·30·30 float32 = 4.6 GB, over Apple MPS's 2**32-byte per-array limit, and about
five such tensors are alive at the peak of a step). So a training job trains its trials in
*sub-ensembles* of at most :func:`trials_that_fit` trials, one after the other. Trials are
independent (bit-identical on the CPU, within tolerance on CUDA; see weightzoo.train.device), so
this changes no result beyond that. A job of which not even one trial fits fails before it
trains, naming the experiment and the knob.

The estimate is an upper bound from shapes alone: one forward pass of one trial runs on
torch's ``meta`` device (no memory, no arithmetic) and counts every tensor it creates.
A training step keeps at most all of them for the backward pass; on top come the gradient
of the largest one and its input in flight, the images of the batch, and per parameter
the value, its gradient, Adam's two moments and the two copies the layer dynamics keep
(initial and previous epoch, weightzoo.train.dynamics; counted for every parameter, not only
the analysed weights: an upper bound). tests/gpu compares it with the measured
peak (``torch.cuda.max_memory_allocated``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves

from .models import ModelFamily

# value, gradient, Adam's exp_avg and exp_avg_sq, the dynamics' initial and previous copy
PARAM_COPIES = 6


class JobTooLarge(ValueError):
    """Not even one trial of a job fits the device; the message names the knob."""


@dataclass(frozen=True)
class StepMemory:
    """Bytes ONE trial uses in one training step of ``batch`` samples (upper bound)."""

    batch: int
    largest_array: int  # the largest tensor the forward creates
    forward: int  # every tensor the forward creates (views and in-place results excluded)
    params: int  # the trial's parameters
    inputs: int  # its batch of images (the trainer gathers a copy per trial)

    @property
    def per_trial(self) -> int:
        """Peak bytes of one trial's training step."""
        return self.forward + 2 * self.largest_array + self.inputs + PARAM_COPIES * self.params

    def training_bytes(self, trials: int) -> int:
        return trials * self.per_trial

    def largest_array_bytes(self, trials: int) -> int:
        """The largest single tensor of a step of ``trials`` trials (all scale with T)."""
        return trials * max(self.largest_array, self.inputs)


class _CountAllocations(TorchDispatchMode):
    """Sums the bytes of every new tensor an op returns (not views, not in-place results)."""

    def __init__(self):
        super().__init__()
        self.total = 0
        self.largest = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        if not any(r.alias_info is not None for r in func._schema.returns):
            for t in tree_leaves(out):
                if isinstance(t, torch.Tensor):
                    nbytes = t.numel() * t.element_size()
                    self.total += nbytes
                    self.largest = max(self.largest, nbytes)
        return out


def step_memory(
    family: ModelFamily,
    arch: Mapping,
    input_shape: tuple[int, ...],
    num_classes: int,
    batch: int,
    dtype: torch.dtype = torch.float32,
) -> StepMemory:
    """Count one trial's forward pass at ``batch`` on the ``meta`` device (no real memory)."""
    shapes = family.param_shapes(arch, input_shape, num_classes)
    params = {n: torch.empty(1, *s, dtype=dtype, device="meta") for n, s in shapes.items()}
    x = torch.empty(1, batch, *input_shape, dtype=dtype, device="meta")  # [1, b, C, H, W]
    with torch.no_grad(), _CountAllocations() as counter:
        family.forward(params, x, arch)
    itemsize = torch.empty((), dtype=dtype).element_size()
    n_params = sum(int(torch.Size(s).numel()) for s in shapes.values())
    return StepMemory(
        batch=batch,
        largest_array=counter.largest,
        forward=counter.total,
        params=n_params * itemsize,
        inputs=x.numel() * itemsize,
    )


def trials_that_fit(
    memory: StepMemory, budget_bytes: int | None, array_limit: int | None
) -> int | None:
    """Most trials one sub-ensemble may hold (None: no limit; 0: not even one)."""
    caps = []
    if budget_bytes is not None:
        caps.append(budget_bytes // memory.per_trial)
    if array_limit is not None:
        caps.append(array_limit // max(memory.largest_array, memory.inputs))
    return min(caps) if caps else None


def sub_ensembles(n_trials: int, cap: int | None) -> list[slice]:
    """Consecutive slices of at most ``cap`` trials (one slice when ``cap`` is None)."""
    step = n_trials if cap is None else max(1, cap)
    return [slice(s, min(s + step, n_trials)) for s in range(0, n_trials, step)]


def eval_chunk_samples(
    memory: StepMemory, trials: int, budget_bytes: int | None, array_limit: int | None
) -> int | None:
    """Most test samples one evaluation chunk of ``trials`` trials may hold, bounded by the
    activations (``training.eval_chunk_mb`` bounds its input only). Without gradients the
    forward frees as it goes: three largest tensors alive at once is the estimate."""
    per_sample = -(-memory.largest_array // memory.batch)  # ceil
    caps = []
    if budget_bytes is not None:
        left = budget_bytes - trials * PARAM_COPIES * memory.params
        caps.append(left // (3 * trials * per_sample))
    if array_limit is not None:
        caps.append(array_limit // (trials * per_sample))
    return max(1, min(caps)) if caps else None


def mb(n_bytes: int) -> float:
    """Bytes in MB (2**20), to a tenth."""
    return round(n_bytes / 2**20, 1)


def check_fits(
    experiment: str,
    arch_name: str,
    memory: StepMemory,
    budget_bytes: int | None,
    array_limit: int | None,
) -> int | None:
    """:func:`trials_that_fit`, raising :class:`JobTooLarge` where not one trial fits."""
    cap = trials_that_fit(memory, budget_bytes, array_limit)
    if cap is None or cap >= 1:
        return cap
    where = f"experiments.{experiment}, architecture {arch_name}"
    if array_limit is not None and memory.largest_array_bytes(1) > array_limit:
        raise JobTooLarge(
            f"{where}: one trial's largest tensor is {mb(memory.largest_array_bytes(1))} MB "
            f"at training.batch_size {memory.batch}, over Apple MPS's {mb(array_limit)} MB "
            "per-array limit; lower training.batch_size or set training.device: cpu"
        )
    raise JobTooLarge(
        f"{where}: one trial needs about {mb(memory.per_trial)} MB per training step at "
        f"training.batch_size {memory.batch}, more than the {mb(budget_bytes)} MB the "
        "device has for it; raise execution.device_memory_mb (if the device has more) or "
        "lower training.batch_size"
    )
