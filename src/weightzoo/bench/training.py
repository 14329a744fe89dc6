"""What the benchmark scripts train, shared: images (Fashion-MNIST when installed, else
noise), the settings of the paper's runs, and the two methods every model is timed by:
(b) one trial in the reference loop and (c) the batched trainer."""

from __future__ import annotations

import itertools
import math
import sys
from collections.abc import Iterator, Mapping

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from weightzoo.train.dynamics import DynamicsRecorder
from weightzoo.train.models import ModelFamily
from weightzoo.train.reference import reference_model
from weightzoo.train.seeds import trial_seed, trial_seeds
from weightzoo.train.trainer import (
    EnsembleTrainer,
    TensorData,
    TrainSettings,
    batch_slices,
    data_generators,
    epoch_orders,
)

from .harness import Method

IMAGE_SHAPE = (1, 28, 28)
NUM_CLASSES = 10
BATCH = 100
LR = 1e-3
INIT_STD = 0.1
BASE_SEED = 0
DYNAMICS_LABEL = " + dynamics"


# --------------------------------------------------------------------------- data
def load_images(source: str, n: int) -> tuple[np.ndarray, np.ndarray, str]:
    """``n`` training images uint8 ``[n, 1, 28, 28]`` and labels int64 ``[n]``, plus where they
    came from. Real Fashion-MNIST when it is installed (tiled if ``n`` > 60 000), else noise."""
    if source in ("auto", "fashion-mnist"):
        try:
            from weightzoo.data.sources import read_raw

            raw = read_raw(
                "fashion-mnist", download=False, verify_checksums=False, log=lambda _: None
            )
            reps = math.ceil(n / len(raw.x_train))
            x = np.concatenate([raw.x_train] * reps)[:n]
            y = np.concatenate([raw.y_train] * reps)[:n]
            return x, y, f"fashion-mnist ({raw.source})"
        except Exception as e:  # not installed / unreadable: fall back unless asked for it
            if source == "fashion-mnist":
                raise
            print(
                f"note: fashion-mnist unavailable ({type(e).__name__}), using noise",
                file=sys.stderr,
            )
    rng = np.random.default_rng(BASE_SEED)
    x = rng.integers(0, 256, size=(n, *IMAGE_SHAPE), dtype=np.uint8)
    y = rng.integers(0, NUM_CLASSES, size=n, dtype=np.int64)
    return x, y, "synthetic uint8 noise"


def reference_batches(seed: int, n: int, device: torch.device) -> Iterator[Tensor]:
    """Index batches ``[100]`` of one trial's data order, epoch after epoch."""
    (gen,) = data_generators([seed])
    while True:
        order = epoch_orders([gen], n)[0].to(device)  # [n]
        for sl in batch_slices(n, BATCH):
            yield order[sl]


def reference_method(
    name: str,
    family: ModelFamily,
    arch: Mapping,
    data: TensorData,
    settings: TrainSettings,
    steps: int,
    flop_per_step: float,
) -> Method:
    """One trial of any family over in-memory tensors: the loop of ``train_reference``, setup
    untimed."""
    seed = trial_seed(BASE_SEED, "bench", family.arch_name(arch), 0)
    model = reference_model(family, arch, seed, data, settings)
    optimizer = torch.optim.Adam(model.parameters(), lr=settings.lr)
    batches = reference_batches(seed, data.x_train.shape[0], data.x_train.device)

    def run():
        for idx in itertools.islice(batches, steps):  # idx [100]
            loss = F.cross_entropy(model(data.x_train[idx]), data.y_train[idx])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()

    return Method(name, 1, steps, steps * flop_per_step, run)


def trainer_method(
    name: str,
    family: ModelFamily,
    arch: Mapping,
    data: TensorData,
    settings: TrainSettings,
    trials: int,
    flop_per_step: float,
    dynamics: bool = False,
) -> Method:
    """``trials`` trials of any family at once; one ``train_epoch`` = ``len(x_train) / batch``
    steps, followed by the layer dynamics' recording when ``dynamics``."""
    arch_name = family.arch_name(arch)
    seeds = trial_seeds(BASE_SEED, "bench", arch_name, range(trials))
    trainer = EnsembleTrainer(family, arch, seeds, data, settings)
    steps = len(batch_slices(data.x_train.shape[0], settings.batch_size))
    flop = trials * steps * flop_per_step
    if not dynamics:
        return Method(name, trials, steps, flop, trainer.train_epoch)
    layers = [layer.param for layer in family.layers(arch)]
    recorder = DynamicsRecorder(trainer.params, layers, epochs=1)

    def epoch_and_dynamics():
        trainer.train_epoch()
        # what EnsembleTrainer.run does after each epoch (the divergence mask included)
        diverged = torch.from_numpy(np.zeros(trials, dtype=bool)).to(trainer.device)  # [T]
        recorder.record(trainer.params, 0, diverged)

    return Method(name + DYNAMICS_LABEL, trials, steps, flop, epoch_and_dynamics)


def train_settings(device: torch.device, **changes) -> TrainSettings:
    """The benchmark's training settings: batch 100, Adam lr 1e-3, init N(0, 0.1²), float32."""
    return TrainSettings(
        epochs=1,
        batch_size=BATCH,
        lr=LR,
        init_std=INIT_STD,
        dtype="float32",
        device=str(device),
        **changes,
    )


def tensor_data(images, labels, n_train: int, device: torch.device) -> TensorData:
    """The first ``n_train`` images for training, the first batch as the (unused) test set."""
    return TensorData.from_arrays(
        images[:n_train],
        labels[:n_train],
        images[:BATCH],
        labels[:BATCH],
        pixel_max=255,
        device=device,
    )
