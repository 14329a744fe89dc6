"""What each trial of an ensemble trains with, when the training settings vary per trial.

A job's trials each carry their own draw of the settings (weightzoo.train.hparams). Two kinds:

* *continuous* ones (learning rate, weight decay, init std, dropout rate) vary *inside* one
  batched ensemble: the optimizer gets one parameter group per trial, init scales and
  dropout masks are drawn per trial;
* *categorical* ones (optimizer, activation, init scheme, train fraction) change the program
  a trial runs, so trials that differ in them train in separate ensembles, as different
  architectures do (:func:`split_by_program`).

A trial's own values and its seed decide everything it draws, so a trial stays bit-identical
alone or in any ensemble, with any mix of settings (tests/test_trial_settings.py).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from .hparams import VARIABLE, Spec, sample_trial, setting_id
from .settings import TrainSettings

# the settings that must be equal inside one ensemble (they change what a trial runs)
PROGRAM_SETTINGS = ("optimizer", "activation", "init", "train_fraction")
PER_TRIAL_SETTINGS = ("lr", "weight_decay", "init_std", "dropout")


@dataclass(frozen=True)
class EnsembleSettings:
    """The settings of one ensemble's trials: shared program, per-trial numbers ``[T]``."""

    optimizer: str
    activation: str
    init: str
    train_fraction: float
    lr: tuple[float, ...]
    weight_decay: tuple[float, ...]
    init_std: tuple[float, ...]
    dropout: tuple[float, ...]

    @classmethod
    def from_trials(cls, trials: Sequence[Mapping]) -> EnsembleSettings:
        """From one mapping of every variable setting per trial; the program settings must
        agree (:func:`split_by_program` groups trials so that they do)."""
        program = {name: {t[name] for t in trials} for name in PROGRAM_SETTINGS}
        mixed = {name: sorted(map(str, v)) for name, v in program.items() if len(v) != 1}
        if mixed:
            raise ValueError(f"one ensemble needs one value of each of {mixed}; split the trials")
        shared = {name: next(iter(v)) for name, v in program.items()}
        numbers = {name: tuple(float(t[name]) for t in trials) for name in PER_TRIAL_SETTINGS}
        return cls(**shared, **numbers)

    @classmethod
    def fixed(cls, settings: TrainSettings, n_trials: int) -> EnsembleSettings:
        """Every trial with the config's one value of each setting (none may vary)."""
        return cls.from_trials([fixed_values(settings)] * n_trials)

    @property
    def n_trials(self) -> int:
        return len(self.lr)

    def trial(self, k: int) -> dict:
        """Trial ``k``'s values, as :func:`fixed_values` gives them."""
        shared = {name: getattr(self, name) for name in PROGRAM_SETTINGS}
        return {**shared, **{name: getattr(self, name)[k] for name in PER_TRIAL_SETTINGS}}


def fixed_values(settings: TrainSettings) -> dict:
    """The config's value of every variable setting (raises where one is a distribution)."""
    varied = settings.spec().varied()
    if varied:
        raise ValueError(f"training.{varied[0]} varies per trial; give each trial's values")
    return {name: getattr(settings, name) for name in VARIABLE}


def split_by_program(trials: Sequence[Mapping]) -> list[list[int]]:
    """Indices of the trials that can share an ensemble (equal program settings), each
    list ascending, the lists in order of their first trial."""
    groups: dict[tuple, list[int]] = {}
    for k, values in enumerate(trials):
        groups.setdefault(tuple(values[name] for name in PROGRAM_SETTINGS), []).append(k)
    return list(groups.values())


def subset_size(n: int, fraction: float) -> int:
    """Training samples a trial with ``train_fraction`` sees (at least one)."""
    return max(1, round(n * fraction))


def train_subset(generator: torch.Generator, n: int, fraction: float) -> torch.Tensor | None:
    """The sorted indices ``[m]`` of the trial's training subset, None for the whole set."""
    if fraction >= 1:
        return None
    return torch.randperm(n, generator=generator)[: subset_size(n, fraction)].sort().values


def draw_init(
    shape: Sequence[int],
    scheme: str,
    std: float,
    generator: torch.Generator,
    zero: bool,
) -> torch.Tensor:
    """One parameter's initial value in float64, from the trial's own generator.

    ``normal`` is the paper's N(0, std²) (the only scheme before per-trial settings, drawn
    exactly as then); ``truncated_normal`` cuts it at ±2 std (Keras' TruncatedNormal).
    Glorot and He uniform set a weight's scale from its fans (torch's layout [out, in, ...])
    and ignore ``std``; tensors of one axis (biases, norms) have no fans and are drawn as
    under ``normal``. ``zero``: the tensor starts at zero (``bias_init: zeros``)."""
    if scheme == "normal" or len(shape) < 2:
        w = torch.randn(shape, generator=generator, dtype=torch.float64) * std
    else:
        w = torch.empty(shape, dtype=torch.float64)
        if scheme == "truncated_normal":
            torch.nn.init.trunc_normal_(w, std=std, a=-2 * std, b=2 * std, generator=generator)
        elif scheme == "glorot_uniform":
            torch.nn.init.xavier_uniform_(w, generator=generator)
        elif scheme == "he_uniform":
            torch.nn.init.kaiming_uniform_(w, nonlinearity="relu", generator=generator)
        else:
            raise ValueError(f"training.init: unknown scheme {scheme!r}")
    return w.zero_() if zero else w


def sample_job(
    settings: TrainSettings, base_seed: int, experiment: str, arch_name: str, trial_ids
) -> list[dict] | None:
    """Each trial's draw of the variable settings, None when none varies (the trials then
    train the config's one value of each, exactly as before per-trial settings)."""
    spec = settings.spec()
    if not spec.varied():
        return None
    return [
        sample_trial(spec, base_seed, experiment, arch_name, t, settings.replicates)
        for t in trial_ids
    ]


def hparam_arrays(spec: Spec, values: Sequence[Mapping], trial_ids, replicates: int) -> dict:
    """What a zoo file stores per trial: the varied settings ``[T]`` (float64 numbers, str
    names) and ``setting_id``; empty when nothing varies."""
    varied = spec.varied()
    if not varied:
        return {}
    arrays = {}
    for name in varied:
        column = [v[name] for v in values]
        is_name = isinstance(column[0], str)
        arrays[name] = np.asarray(column, dtype=str if is_name else np.float64)
    arrays["setting_id"] = np.asarray([setting_id(t, replicates) for t in trial_ids], np.int64)
    return arrays
