"""A synthetic zoo of the ``generic`` family (what ``weightzoo import`` writes), built with
the zoo writers directly: two architectures whose parameter names are those of
``nn.Sequential`` (an MLP ``0.weight``, ``2.weight``; a conv net ``0.weight`` (conv),
``1.*`` (batch norm), ``4.weight`` (linear)), final weights only, one accuracy per trial,
no dynamics. Better trials get tighter weights (a planted effect the claims can see)."""

from __future__ import annotations

import numpy as np

from weightzoo.train.shapes import get_shapes
from weightzoo.zoo.hdf5 import ArchTrials, Zoo, write_zoo

MLP_PARAMS = [("0.weight", (16, 64)), ("0.bias", (16,)), ("2.weight", (10, 16)), ("2.bias", (10,))]
CONV_PARAMS = [
    ("0.weight", (4, 1, 3, 3)),
    ("0.bias", (4,)),
    ("1.weight", (4,)),
    ("1.bias", (4,)),
    ("1.running_mean", (4,)),
    ("1.running_var", (4,)),
    ("4.weight", (10, 144)),
    ("4.bias", (10,)),
]
BANDS = {"low": [30, 55], "mid": [60, 85], "high": [90, 100]}


def generic_arch(params, label=None) -> dict:
    return {"label": label, "parameters": [[name, list(shape)] for name, shape in params]}


def generic_trials(params, accs, seed, label=None, initial=False, start_id=0) -> ArchTrials:
    """One architecture of a generic zoo; trial k reaches ``accs[k]`` (fractions)."""
    rng = np.random.default_rng(seed)
    arch = generic_arch(params, label)
    acc = np.asarray(accs, dtype=np.float32)
    t = len(acc)
    scale = 1.2 - acc.astype(np.float64)

    def weights(spread):
        return {
            name: (rng.normal(0, 1, (t, *shape)) * spread.reshape(t, *[1] * len(shape))).astype(
                np.float32
            )
            for name, shape in params
        }

    nan = np.full((t, 1), np.nan, dtype=np.float32)
    return ArchTrials(
        arch_name=get_shapes("generic").arch_name(arch),
        arch=arch,
        trials={
            "trial_id": np.arange(start_id, start_id + t, dtype=np.int64),
            "seed": np.full(t, -1, dtype=np.int64),
            "diverged": np.zeros(t, dtype=bool),
            "diverged_epoch": np.full(t, -1, dtype=np.int32),
        },
        metrics={
            "train_loss": nan.copy(),
            "train_acc": nan.copy(),
            "test_loss": nan.copy(),
            "test_acc": acc[:, None].copy(),
        },
        initial=weights(np.full(t, 0.1)) if initial else {},
        final=weights(scale),
    )


def accuracies(n: int, seed: int) -> np.ndarray:
    """``n`` accuracies spread over every group (fractions)."""
    rng = np.random.default_rng(seed)
    base = np.resize([0.08, 0.45, 0.75, 0.95], n)
    return np.clip(base + rng.uniform(-0.03, 0.03, n), 0.0, 1.0)


def generic_zoo(n_per_arch: int = 16, initial: bool = False) -> Zoo:
    """Two architectures (an MLP, hashed name; a conv net labelled ``convnet``)."""
    archs = [
        generic_trials(MLP_PARAMS, accuracies(n_per_arch, 1), 1, initial=initial),
        generic_trials(CONV_PARAMS, accuracies(n_per_arch, 2), 2, "convnet", initial=initial),
    ]
    return Zoo("imported_toy", "generic", "unknown", archs)


def write_generic_zoo(path, **kwargs) -> Zoo:
    zoo = generic_zoo(**kwargs)
    write_zoo(path, zoo)
    return zoo
