"""A zoo's shared representation: one predictor for all trials of an architecture,
conditioned on a per-trial latent code optimised jointly with it (an auto-decoder, as
DeepSDF: Park et al. 2019). The predictor is small next to the trials it serves
(``shared_ratio`` times ONE network's represented weights), so it can only hold what the
trials have in common; each trial's reconstruction error then says how well the zoo's
common structure explains that trial (claim 9a)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from ...train.seeds import derive_seed
from .fit import Targets, gather_rows, loss_weights
from .predictor import StackedMLP, cosine_lr, hidden_for_budget, mlp_sizes
from .settings import ReconstructSettings

LATENT_PRIOR = 1e-4  # weight of the latent codes' squared norm in the loss (DeepSDF's prior)


@dataclass
class SharedFit:
    mlp: StackedMLP  # one predictor (a stack of 1)
    latents: Tensor  # [T, latent]

    def predict(self, x: Tensor) -> Tensor:
        """``x [T, b, d]`` (trial t's coordinates in row t) -> ``[T, b, g]``."""
        t, b, _ = x.shape
        z = self.latents.unsqueeze(1).expand(t, b, -1)  # [T, b, latent]
        out = self.mlp(torch.cat([x, z], dim=2).reshape(1, t * b, -1))  # [1, T*b, g]
        return out.view(t, b, -1)

    @property
    def parameters(self) -> int:
        """The shared predictor's parameters (the latent codes not counted)."""
        return self.mlp.n_params


def fit_shared(targets: Targets, settings: ReconstructSettings, key: str) -> SharedFit:
    """Fit the shared predictor and every trial's latent code to ``targets`` (all trials
    of one architecture); ``key`` names the architecture for its generator."""
    gen = torch.Generator().manual_seed(derive_seed(settings.seed, "reconstruct-shared", key))
    t, n_rows, g = targets.rows.shape
    d_in = targets.enc.shape[1] + settings.shared_latent
    budget = settings.shared_ratio * targets.n_weights
    sizes = mlp_sizes(d_in, hidden_for_budget(budget, d_in, settings.depth, g), settings.depth, g)
    dtype, device = targets.rows.dtype, targets.rows.device
    mlp = StackedMLP(sizes, [gen], dtype, device)
    z = torch.randn(t, settings.shared_latent, generator=gen, dtype=torch.float64) * 0.01
    fit = SharedFit(mlp, z.to(dtype).to(device).requires_grad_(True))
    weights = loss_weights(targets, settings.magnitude_weighted)  # [T, R, g]
    optimizer = torch.optim.Adam([*mlp.parameters(), fit.latents], lr=settings.lr)
    b = min(n_rows, settings.shared_batch_rows)
    for step in range(settings.shared_steps):
        cosine_lr(optimizer, settings.lr, step, settings.shared_steps)
        x, y, w = _rows(targets, weights, b, gen)
        err = (fit.predict(x) - y).square() * w  # [T, b, g]
        loss = (err.sum(dim=(1, 2)) / w.sum(dim=(1, 2)).clamp_min(1)).mean()
        loss = loss + LATENT_PRIOR * fit.latents.square().sum(1).mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    return fit


def _rows(targets: Targets, weights: Tensor, b: int, gen: torch.Generator):
    """This step's rows: every row, or ``b`` per trial from the one shared generator."""
    t, n_rows, _ = targets.rows.shape
    idx = None if b >= n_rows else torch.randint(n_rows, (t, b), generator=gen)  # [T, b]
    return gather_rows(targets, weights, idx)
