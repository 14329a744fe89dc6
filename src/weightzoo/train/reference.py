"""The textbook way to train one trial: ``nn.Module`` + ``torch.optim.Adam``.

It exists to prove the batched trainer right (tests compare the two in float64) and as
baseline (b) of the benchmark. It uses the same per-trial seed streams as the batched
trainer (initial weights and data order), so both see exactly the same trial.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
import torch.nn.functional as F
from torch import nn

from .models import ModelFamily, trial_state_dict
from .trainer import (
    TensorData,
    TrainSettings,
    batch_slices,
    data_generators,
    epoch_orders,
    init_params,
)


def reference_model(
    family: ModelFamily, arch: Mapping, seed: int, data: TensorData, settings: TrainSettings
) -> nn.Module:
    """One trial's module, initialised exactly as the batched trainer initialises it."""
    model = family.reference_module(arch, data.input_shape, data.num_classes)
    # cast before loading: loading float64 values into float32 parameters would round them
    model.to(device=data.x_train.device, dtype=settings.torch_dtype)
    init = init_params(family, arch, data.input_shape, data.num_classes, [seed], settings)
    model.load_state_dict(trial_state_dict(init, 0))
    return model


def train_reference(
    family: ModelFamily,
    arch: Mapping,
    seed: int,
    data: TensorData,
    settings: TrainSettings,
    steps: int | None = None,
) -> nn.Module:
    """Train one trial the plain way; ``steps`` stops early (for benchmarks)."""
    model = reference_model(family, arch, seed, data, settings)
    optimizer = torch.optim.Adam(model.parameters(), lr=settings.lr)
    (gen,) = data_generators([seed])
    n, done = data.x_train.shape[0], 0
    for _ in range(settings.epochs):
        order = epoch_orders([gen], n)[0].to(data.x_train.device)  # [N]
        for sl in batch_slices(n, settings.batch_size):
            idx = order[sl]
            loss = F.cross_entropy(model(data.x_train[idx]), data.y_train[idx])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            done += 1
            if steps is not None and done >= steps:
                return model
    return model
