"""What a reader hands the writer: the plan of a source and its trials, one at a time."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import numpy as np

from ..hdf5 import METRICS, checkpoint_name
from .provenance import ContentHash


@dataclass
class TrialRecord:
    """One trial of a source.

    ``weights``: weight set (``final``, ``initial``, ``epoch_<k>``) -> ``{param: array}``
    in state-dict order; ``metrics``: name -> ``[E]`` float (accuracies as fractions, NaN
    where unknown); ``hparams``: the trial's value of each setting; ``where``: how errors
    name the trial (a CSV row and its file)."""

    where: str
    weights: dict[str, dict[str, np.ndarray]]
    metrics: dict[str, np.ndarray]
    label: str | None = None
    trial_id: int | None = None
    seed: int = -1
    diverged: bool = False
    diverged_epoch: int | None = None  # None: the first epoch whose test accuracy is NaN
    hparams: dict[str, object] = field(default_factory=dict)


@dataclass
class SourcePlan:
    """A source read as far as it can be without its weights: its format and path, the
    epochs of its metrics, the setting names, the trial count, and ``trials()`` which
    loads the trials one at a time. ``content`` takes each file's hash as the weights are
    read; ``metadata_files`` are hashed into it after the trials."""

    fmt: str
    path: str
    epochs: int
    n_trials: int
    trials: Callable[[], Iterator[TrialRecord]]
    hparam_names: list[str] = field(default_factory=list)
    weight_sets: list[str] = field(default_factory=lambda: ["final"])
    accuracy_unit: str = "fraction"  # as resolved from the values or stated
    metadata_files: list = field(default_factory=list)  # hashed last (tables, JSON)
    content: ContentHash = field(default_factory=ContentHash)


def empty_metrics(epochs: int) -> dict[str, np.ndarray]:
    return {m: np.full(epochs, np.nan, dtype=np.float64) for m in METRICS}


def weight_sets_of(epochs_seen, epochs: int) -> list[str]:
    """The weight sets a source with checkpoints after ``epochs_seen`` stores: the final
    weights, the initial ones when epoch 0 was kept, and each epoch before the last."""
    sets = ["final"] + (["initial"] if 0 in epochs_seen else [])
    return sets + [checkpoint_name(e) for e in epochs_seen if 0 < e < epochs]
