"""Per-epoch layer dynamics of an ensemble, recorded by the trainer on the training device.

After every epoch ``t`` (1-based), per trial and per analysed layer (``ModelFamily.layers``):

* ``rwc``: relative weight change, Agrawal et al. 2020's element-wise form
  ``mean_i |w_i(t) - w_i(t-1)| / (|w_i(t-1)| + RWC_EPS)``, with ``w(0)`` the initial weights;
* ``fro_norm``: ``||W(t)||_F``;
* ``dist_from_init``: ``||W(t) - W(0)||_F``.

Each is ``[T, E]`` float32 (docs/dynamics.md gives the formulas and the choice of
``RWC_EPS``). The recorder keeps two copies of the analysed weights on the device (the
initial and the previous epoch's) and computes from the stacked ``[T, ...]`` tensors.

A trial's values do not depend on its ensemble: the terms are element-wise, and every
per-trial sum runs in an order fixed by the layer's size alone (:func:`per_trial_sum`).
A plain ``x.flatten(1).sum(1)`` is not enough on the CPU: with one trial torch splits
that single sum over its threads, with several it gives each thread whole trials, and the
two round differently.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from ..zoo.hdf5 import DYNAMICS_STATS

# Guards |w_i(t-1)| = 0 (Agrawal et al.'s code divides by zero there). Far below the
# weights any init here draws (std >= 0.01): for |w| >= 1e-4 it moves the denominator by
# at most 0.01 %. docs/dynamics.md says why not larger or relative.
RWC_EPS = 1e-8
STATS = DYNAMICS_STATS
# per-trial sums run over blocks of this many elements, then over the block sums
SUM_BLOCK = 1024
# most block sums per trial: below torch's GRAIN_SIZE (32768), so the second sum of a
# single trial is never split over threads either
MAX_BLOCKS = 16384


def per_trial_sum(x: Tensor) -> Tensor:
    """``[T, ...]`` -> ``[T]``: each trial's sum, in an order set by its size only.

    Zero padding to whole blocks (adding +0.0 changes no sum), a sum within each block
    (``[T, blocks]`` outputs: torch reduces each one serially, whatever T), then a sum over
    fewer than ``MAX_BLOCKS`` block sums (too few elements to be split over threads)."""
    t = x.shape[0]
    flat = x.reshape(t, -1)  # [T, N]
    n = flat.shape[1]
    block = max(SUM_BLOCK, -(-n // MAX_BLOCKS))
    blocks = max(1, -(-n // block))
    padded = F.pad(flat, (0, blocks * block - n))  # [T, blocks * block]
    return padded.view(t, blocks, block).sum(2).sum(1)  # [T]


def layer_dynamics(w: Tensor, previous: Tensor, initial: Tensor) -> dict[str, Tensor]:
    """The three statistics ``{name: [T]}`` of one layer ``w`` ``[T, ...]`` after an epoch."""
    n = w[0].numel()
    step = (w - previous).abs() / (previous.abs() + RWC_EPS)  # [T, ...]
    travelled = w - initial  # [T, ...]
    return {
        "rwc": per_trial_sum(step) / n,
        "fro_norm": per_trial_sum(w * w).sqrt(),
        "dist_from_init": per_trial_sum(travelled * travelled).sqrt(),
    }


class DynamicsRecorder:
    """Collects :data:`STATS` of the layers ``names`` after every epoch, on the device.

    ``params``: the trainer's stacked parameters before training. The values stay on the
    training device as ``[T, epochs]`` float32 tensors (NaN until recorded) until
    :meth:`arrays` copies them to the host once, after training."""

    def __init__(self, params: Mapping[str, Tensor], names: Sequence[str], epochs: int):
        self.names = list(names)
        first = params[self.names[0]]
        self.initial = {n: params[n].detach().clone() for n in self.names}  # [T, ...]
        self.previous = {n: params[n].detach().clone() for n in self.names}  # [T, ...]
        shape = (first.shape[0], epochs)
        self.values = {
            n: {
                s: torch.full(shape, float("nan"), dtype=torch.float32, device=first.device)
                for s in STATS
            }
            for n in self.names
        }  # name -> stat -> [T, E]

    @torch.no_grad()
    def record(self, params: Mapping[str, Tensor], epoch: int, diverged: Tensor) -> None:
        """Store the statistics after ``epoch`` (0-based column), NaN where ``diverged``
        (``[T]`` bool, as the metrics), and remember the weights for the next epoch."""
        for name in self.names:
            w = params[name].detach()
            for stat, v in layer_dynamics(w, self.previous[name], self.initial[name]).items():
                column = v.to(torch.float32)  # [T]
                self.values[name][stat][:, epoch] = column.masked_fill(diverged, float("nan"))
            self.previous[name].copy_(w)

    def arrays(self) -> dict[str, dict[str, np.ndarray]]:
        """``{param: {stat: [T, E] float32}}`` on the host."""
        return {
            n: {s: v.cpu().numpy() for s, v in stats.items()} for n, stats in self.values.items()
        }
