"""Every trial's seed, from its identity alone (no torch: the plan of jobs uses it too).

A trial's seed hashes the config's ``seed``, its experiment, its architecture's name and its
trial id: adding trials or architectures never changes the seed of an existing trial, and
how trials are split into jobs (``execution.trials_per_job``) changes none.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable


def derive_seed(*parts) -> int:
    """A stable 63-bit seed from any parts (independent of Python's hash salt)."""
    digest = hashlib.sha256(":".join(str(p) for p in parts).encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1


def trial_seed(base_seed: int, experiment: str, arch_name: str, trial_id: int) -> int:
    """Seed of one trial. Hashing its identity (not its position in a list) means adding
    trials or architectures never changes the seed of an existing trial."""
    return derive_seed(base_seed, experiment, arch_name, trial_id)


def trial_seeds(
    base_seed: int, experiment: str, arch_name: str, trial_ids: Iterable[int]
) -> list[int]:
    """The seeds of ``trial_ids`` of one architecture: the one list the job plan
    (weightzoo.config.TrainJob) and the training job (weightzoo.stages.train) both use."""
    return [trial_seed(base_seed, experiment, arch_name, i) for i in trial_ids]
