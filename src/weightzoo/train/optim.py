"""Adam over stacked ``[T, ...]`` parameters in one fused CPU kernel, bit-identical in any
ensemble.

``torch.optim.Adam(fused=True)`` runs one kernel over every tensor: about 3.7x faster than
``foreach`` on the DNN's stacked tensors (4.95 vs 18.3 ms per step at 100 trials),
because it reads and writes each element once instead of once per ``foreach`` op. On the CPU
it walks a tensor in SIMD vectors and finishes the last ``numel % 16`` (or so) elements in a
scalar loop, and the two paths round differently. The scalar tail of a stacked tensor is the
end of its *last* trial, and which of that trial's elements fall into it depends on how many
trials are stacked: with plain fused Adam a trial's weights would depend on its ensemble (seen
on the CNN's 54-element kernels and in ``tests/test_optim.py``).

:class:`BlockAlignedAdam` hands the kernel only tensors whose length is a multiple of
:data:`VECTOR_BLOCK` elements, so every element takes the vector path: each stacked tensor's
first ``numel // VECTOR_BLOCK * VECTOR_BLOCK`` elements as a view (no copy), and all tensors'
remaining elements packed into one zero-padded buffer per step (a few hundred elements; the
padding has zero gradient and stays zero). Adam is element-wise, so where an element sits
changes nothing else.

:func:`make_adam` picks the Adam a trainer runs (block-aligned fused on the CPU, torch's
fused kernel on accelerators, ``foreach`` where no fused kernel runs: probed, not assumed);
:func:`adam_kind` names it for the job's recorded settings.
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence

import torch
from torch import Tensor

# A multiple of every vector width (16 float32 / 8 float64 under AVX-512) and of the 64-byte
# cache-line unit the CPU kernel splits work into between threads.
VECTOR_BLOCK = 64


def _block_floor(n: int) -> int:
    return n // VECTOR_BLOCK * VECTOR_BLOCK


def _block_ceil(n: int) -> int:
    return -(-n // VECTOR_BLOCK) * VECTOR_BLOCK


class StackedOptimizer:
    """What weightzoo's optimizers over stacked ``[T, ...]`` parameters share: the part of
    ``torch.optim.Optimizer``'s interface the trainer uses, and the gradients of a step,
    checked (a parameter without one is a bug in the caller's loss, named here)."""

    def __init__(self, params: Sequence[Tensor]):
        self.params = list(params)

    def zero_grad(self, set_to_none: bool = True) -> None:
        for p in self.params:
            if set_to_none:
                p.grad = None
            elif p.grad is not None:
                p.grad.zero_()

    def _gradients(self) -> list[Tensor]:
        """Every parameter's ``.grad``, in order; raises naming the first one without."""
        for k, p in enumerate(self.params):
            if p.grad is None:
                raise RuntimeError(
                    f"{type(self).__name__}: parameter {k} {tuple(p.shape)} has no gradient"
                )
        return [p.grad for p in self.params]


class BlockAligned(StackedOptimizer):
    """A torch optimizer (``make(tensors)``: an element-wise one, e.g. fused Adam) over
    ``params`` with every element on its kernel's vector path.

    ``params``: contiguous leaf tensors; their ``.grad`` (filled by ``backward``) must be
    contiguous too (autograd's layout contract gives contiguous parameters contiguous
    gradients). The interface is the part of ``torch.optim.Optimizer`` the trainer uses.
    """

    def __init__(self, params: Sequence[Tensor], make, defaults: dict):
        super().__init__(params)
        for k, p in enumerate(self.params):
            if not p.is_contiguous():
                raise ValueError(
                    f"{type(self).__name__}: parameter {k} {tuple(p.shape)} is not contiguous"
                )
        self.defaults = {**defaults, "block_aligned": True}
        self._flat = [p.detach().view(-1) for p in self.params]  # views of the parameters
        self._body = [_block_floor(p.numel()) for p in self.params]
        self._tail = [p.numel() - b for p, b in zip(self.params, self._body, strict=True)]
        n_tail = sum(self._tail)
        first = self.params[0]
        # tails of all parameters, then zeros up to a whole block
        self._tail_param = first.new_zeros(max(VECTOR_BLOCK, _block_ceil(n_tail)))
        self._tail_grad = torch.zeros_like(self._tail_param)
        self._tail_param.grad = self._tail_grad
        self._bodies = [f[:b] for f, b in zip(self._flat, self._body, strict=True) if b]
        self._optimizer = make([*self._bodies, self._tail_param])

    @torch.no_grad()
    def step(self) -> None:
        bodies = iter(self._bodies)
        tail_params, tail_grads = [], []
        for p_grad, flat, body, tail in zip(
            self._gradients(), self._flat, self._body, self._tail, strict=True
        ):
            grad = p_grad.view(-1)  # [n]; raises if the gradient is not contiguous
            if body:
                next(bodies).grad = grad[:body]
            if tail:
                tail_params.append(flat[body:])
                tail_grads.append(grad[body:])
        n_tail = sum(self._tail)
        if n_tail:
            torch.cat(tail_params, out=self._tail_param[:n_tail])
            torch.cat(tail_grads, out=self._tail_grad[:n_tail])
        self._optimizer.step()
        if n_tail:
            updated = self._tail_param[:n_tail].split([t for t in self._tail if t])
            torch._foreach_copy_(tail_params, list(updated))


class BlockAlignedAdam(BlockAligned):
    """Adam (the textbook update, ``torch.optim.Adam`` defaults but ``lr``) over ``params``
    with the fused kernel, every element on its vector path."""

    def __init__(self, params: Sequence[Tensor], lr: float):
        def make(tensors):
            return torch.optim.Adam(tensors, lr=lr, fused=True)

        super().__init__(params, make, {"lr": lr, "fused": True})


# --------------------------------------------------------------------------- choice
_FUSED_ADAM: dict[tuple[str, torch.dtype], bool] = {}


def fused_adam_works(device: torch.device, dtype: torch.dtype) -> bool:
    """Whether a fused Adam step runs on ``device`` in ``dtype``: tried on one element,
    because ``torch.optim.Adam(fused=True)`` only checks the device at its first ``step()``."""
    key = (torch.device(device).type, dtype)
    if key not in _FUSED_ADAM:
        probe = torch.zeros(1, device=device, dtype=dtype, requires_grad=True)
        probe.grad = torch.zeros_like(probe)
        try:
            torch.optim.Adam([probe], lr=1e-3, fused=True).step()
            _FUSED_ADAM[key] = True
        except (RuntimeError, ValueError, NotImplementedError):
            _FUSED_ADAM[key] = False
    return _FUSED_ADAM[key]


def make_adam(params: Sequence[Tensor], lr: float) -> torch.optim.Adam | BlockAlignedAdam:
    """Adam over the stacked tensors in one fused kernel where a probe step works: the
    block-aligned form on the CPU (weightzoo.train.optim: plain fused Adam on the CPU would make a
    trial's weights depend on its ensemble), ``torch.optim.Adam(fused=True)`` on
    accelerators; ``foreach`` where no fused kernel runs."""
    device = params[0].device
    if fused_adam_works(device, params[0].dtype):
        if device.type == "cpu":
            return BlockAlignedAdam(params, lr)
        return torch.optim.Adam(params, lr=lr, fused=True)
    return torch.optim.Adam(params, lr=lr, foreach=True)


def adam_kind(optimizer) -> str:
    """How the optimizer runs, as recorded in every job's settings."""
    if optimizer.defaults.get("trial_slices"):
        return f"{optimizer.defaults['kind']}-trial-slices"
    if optimizer.defaults.get("per_trial"):
        return f"{optimizer.defaults['kind']}-per-trial"
    if optimizer.defaults.get("block_aligned"):
        return "fused-block-aligned"
    return "fused" if optimizer.defaults.get("fused") else "foreach"


# --------------------------------------------------------------------------- per trial
# torch's classes for the optimizers a trial may train with; SGD's momentum is the common 0.9
# (torch's default is none), RMSprop's and Adam's are torch's defaults
TRIAL_OPTIMIZERS = {
    "adam": (torch.optim.Adam, {}),
    "sgd_momentum": (torch.optim.SGD, {"momentum": 0.9}),
    "rmsprop": (torch.optim.RMSprop, {}),
}


# torch.optim.Adam's own defaults, read off its signature: the trial-slice step calls the
# fused kernel directly and must run the Adam every other path runs
_ADAM_DEFAULTS = inspect.signature(torch.optim.Adam.__init__).parameters
ADAM_BETAS = _ADAM_DEFAULTS["betas"].default
ADAM_EPS = _ADAM_DEFAULTS["eps"].default

# the optimizers torch has a fused CPU kernel for (RMSprop has none)
SLICE_STEP_KINDS = ("adam", "sgd_momentum")
# A TrialSliceOptimizer step costs one kernel dispatch per trial (about 15 us), a
# PerTrialOptimizer step three to five extra passes over the stacked parameters; the
# dispatch is cheaper for the DNNs measured, 16,330 to 89,610 parameters a trial
# (benchmarks/README.md). The two round differently, and the per-trial zoos published so
# far (docs/reproduction: 16,330 and 4,970 parameters a trial) were trained with the
# scratch passes: the kernel per trial starts above them, so they train to the same bits.
SLICE_STEP_MIN_PARAMETERS = 32_768


def _unit_step_optimizer(kind: str, tensors: Sequence[Tensor], device: torch.device):
    """torch's optimizer ``kind`` at learning rate 1: fused where its kernel runs, else
    foreach."""
    if kind not in TRIAL_OPTIMIZERS:
        known = ", ".join(TRIAL_OPTIMIZERS)
        raise ValueError(f"training.optimizer: unknown {kind!r}; give one of {known}")
    cls, options = TRIAL_OPTIMIZERS[kind]
    fused = kind in ("adam", "sgd_momentum") and fused_adam_works(device, tensors[0].dtype)
    return cls(list(tensors), lr=1.0, **options, **({"fused": True} if fused else {}))


class PerTrialOptimizer(StackedOptimizer):
    """torch's Adam, SGD with momentum or RMSprop over stacked ``[T, ...]`` parameters, each
    trial with its own learning rate and weight decay.

    torch's optimizers take one learning rate per tensor, and a trial is a slice of each
    tensor. Every update of these three is ``p <- p - lr * u``, with ``u`` computed from the
    gradients alone (the optimizer's state never reads ``p``). So torch's optimizer steps
    zeroed scratch tensors at ``lr = 1`` (leaving ``-u`` in them, in one fused kernel
    where one runs), and each trial adds its own ``lr * (-u)``. Weight decay (the L2
    penalty, torch's coupled ``weight_decay``) is added to the gradient first:
    ``g <- g + wd * p``. Per-trial rates are ``[T, 1, ...]`` tensors broadcast over a
    trial's slice.

    On the CPU the scratch tensors are stepped block-aligned (:class:`BlockAligned`) and
    the rest are plain multiplies and adds, which round the same on the vector and scalar
    paths: a trial's steps do not depend on its ensemble.
    """

    def __init__(
        self,
        params: Sequence[Tensor],
        kind: str,
        lr: Sequence[float],
        weight_decay: Sequence[float],
    ):
        super().__init__(params)
        first = self.params[0]
        self._scratch = [torch.zeros_like(p, requires_grad=False) for p in self.params]

        def make(tensors):
            return _unit_step_optimizer(kind, tensors, first.device)

        if first.device.type == "cpu":
            self._unit = BlockAligned(self._scratch, make, {})
        else:
            self._unit = make(self._scratch)
        self._lr = [_per_trial(lr, p) for p in self.params]  # [T, 1, ...] each
        self._decay = (
            [_per_trial(weight_decay, p) for p in self.params] if any(weight_decay) else None
        )
        self.defaults = {"kind": kind, "per_trial": True}

    @torch.no_grad()
    def step(self) -> None:
        grads = self._gradients()
        for k, (p, grad, scratch) in enumerate(zip(self.params, grads, self._scratch, strict=True)):
            if self._decay is not None:
                # L2: g + wd * p, the product in the scratch tensor (no temporary)
                grad.add_(torch.mul(p, self._decay[k], out=scratch))
            scratch.zero_()
            scratch.grad = grad
        self._unit.step()  # scratch = -u
        for p, scratch, rate in zip(self.params, self._scratch, self._lr, strict=True):
            p.add_(scratch.mul_(rate))  # [T, ...] + [T, ...] * [T, 1, ...]


class TrialSliceOptimizer(StackedOptimizer):
    """Adam or SGD with momentum over stacked ``[T, ...]`` parameters on the CPU, each trial
    stepped by torch's own fused kernel (the op ``torch.optim.Adam(fused=True)`` and
    ``torch.optim.SGD(fused=True)`` call) over views of its own slices, with its own learning
    rate and weight decay.

    One kernel call per trial reads and writes each element once, where
    :class:`PerTrialOptimizer` adds passes over scratch tensors; the call costs a fixed
    dispatch per trial. The trainer takes this path for trials of at least
    :data:`SLICE_STEP_MIN_PARAMETERS` parameters (:func:`make_trial_optimizer`). The kernel
    walks each tensor in vectors and finishes its last elements in a scalar loop (see
    :class:`BlockAligned`); here each tensor is one trial's slice, so which elements take which
    path depends on the trial's own shape, never on its ensemble. A trial's step is exactly
    that of torch's fused optimizer on the trial alone (tested).
    """

    def __init__(
        self,
        params: Sequence[Tensor],
        kind: str,
        lr: Sequence[float],
        weight_decay: Sequence[float],
    ):
        if kind not in SLICE_STEP_KINDS:
            known = ", ".join(SLICE_STEP_KINDS)
            raise ValueError(f"TrialSliceOptimizer: {kind!r} has no fused kernel; give {known}")
        super().__init__(params)
        n_trials = self.params[0].shape[0]
        if len(lr) != n_trials or len(weight_decay) != n_trials:
            raise ValueError(
                f"TrialSliceOptimizer: {len(lr)} learning rates and {len(weight_decay)} "
                f"weight decays for {n_trials} trials; give one of each per trial"
            )
        self.kind = kind
        self._lr = [float(v) for v in lr]
        self._decay = [float(v) for v in weight_decay]
        self._trial_params = _per_trial_views(self.params)  # T lists of [...] views
        # optimizer state stacked like the parameters (one allocation per tensor), stepped
        # through per-trial views
        if kind == "adam":
            self._exp_avg = _per_trial_views([torch.zeros_like(p) for p in self.params])
            self._exp_avg_sq = _per_trial_views([torch.zeros_like(p) for p in self.params])
            # every trial has taken the same number of steps: one counter per tensor, shared
            self._steps = [
                torch.zeros((), dtype=torch.float32, device=p.device) for p in self.params
            ]
        else:
            self._momentum = _per_trial_views([torch.empty_like(p) for p in self.params])
            self._first_step = True
        self.defaults = {"kind": kind, "per_trial": True, "trial_slices": True}

    @torch.no_grad()
    def step(self) -> None:
        grads = [g.unbind(0) for g in self._gradients()]  # per tensor, T views [...]
        if self.kind == "adam":
            self._adam_step(grads)
        else:
            self._sgd_step(grads)

    def _adam_step(self, grads: list[tuple[Tensor, ...]]) -> None:
        torch._foreach_add_(self._steps, 1)
        for t, params in enumerate(self._trial_params):
            torch._fused_adam_(
                params,
                [g[t] for g in grads],
                self._exp_avg[t],
                self._exp_avg_sq[t],
                [],
                self._steps,
                lr=self._lr[t],
                beta1=ADAM_BETAS[0],
                beta2=ADAM_BETAS[1],
                weight_decay=self._decay[t],
                eps=ADAM_EPS,
                amsgrad=False,
                maximize=False,
            )

    def _sgd_step(self, grads: list[tuple[Tensor, ...]]) -> None:
        for t, params in enumerate(self._trial_params):
            torch._fused_sgd_(
                params,
                [g[t] for g in grads],
                self._momentum[t],
                weight_decay=self._decay[t],
                momentum=TRIAL_OPTIMIZERS["sgd_momentum"][1]["momentum"],
                lr=self._lr[t],
                dampening=0.0,
                nesterov=False,
                maximize=False,
                is_first_step=self._first_step,
            )
        self._first_step = False


def _per_trial_views(stacked: Sequence[Tensor]) -> list[list[Tensor]]:
    """``[T, ...]`` tensors -> for each trial, the list of its ``[...]`` views (no copy)."""
    return [list(views) for views in zip(*(s.detach().unbind(0) for s in stacked), strict=True)]


def _per_trial(values: Sequence[float], like: Tensor) -> Tensor:
    """``values`` ``[T]`` as ``[T, 1, ...]`` in ``like``'s dtype and device."""
    shape = (len(values),) + (1,) * (like.dim() - 1)
    return torch.tensor(values, dtype=like.dtype).reshape(shape).to(like.device)


def make_trial_optimizer(
    params: Sequence[Tensor], kind: str, lr: Sequence[float], weight_decay: Sequence[float]
):
    """The optimizer of an ensemble: one shared plain Adam step where every trial has the
    same learning rate and no weight decay (:func:`make_adam`, as before per-trial
    settings); else, on the CPU, for Adam or SGD and trials of at least
    :data:`SLICE_STEP_MIN_PARAMETERS` parameters, a :class:`TrialSliceOptimizer`; else a
    :class:`PerTrialOptimizer`. The choice depends on the trials' shapes and settings, never
    on how many trials the ensemble holds."""
    if kind == "adam" and len(set(lr)) == 1 and not any(weight_decay):
        return make_adam(params, lr[0])
    if uses_trial_slices(params, kind):
        return TrialSliceOptimizer(params, kind, lr, weight_decay)
    return PerTrialOptimizer(params, kind, lr, weight_decay)


def uses_trial_slices(params: Sequence[Tensor], kind: str) -> bool:
    """Whether :func:`make_trial_optimizer` steps these stacked parameters trial by trial
    with torch's fused kernel: CPU, a fused kernel for ``kind``, and at least
    :data:`SLICE_STEP_MIN_PARAMETERS` parameters per trial."""
    first = params[0]
    per_trial = sum(p[0].numel() for p in params)
    return (
        first.device.type == "cpu"
        and kind in SLICE_STEP_KINDS
        and per_trial >= SLICE_STEP_MIN_PARAMETERS
        and fused_adam_works(first.device, first.dtype)
    )
