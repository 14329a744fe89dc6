"""The zoo stage (rule merge_zoo): an experiment's job files merged into its zoo file."""

from __future__ import annotations

import logging
from collections.abc import Mapping

from ..zoo.hdf5 import merge_job_files

log = logging.getLogger(__name__)


def merge_zoo(job_paths, out_path, experiment_config: Mapping) -> None:
    zoo = merge_job_files(job_paths, out_path, experiment_config)
    log.info(
        "merged %d job files: %s",
        len(list(job_paths)),
        ", ".join(f"{a.arch_name} ({a.n_trials} trials)" for a in zoo.archs),
    )
