"""Rule train: one chunk of trials of one architecture as a batched ensemble."""

import sys
from pathlib import Path

# scriptdir reads ".../workflow/rules/../scripts": resolve it before going up to the repo
sys.path.insert(0, str(Path(snakemake.scriptdir).resolve().parents[1] / "src"))

import torch

from weightzoo.pipeline import train_job
from weightzoo.runlog import job_log

torch.set_num_threads(snakemake.threads)
with job_log(snakemake.log[0]) as progress:
    train_job(
        snakemake.params.job,
        snakemake.params.seed,
        snakemake.params.settings,
        snakemake.input.data,
        snakemake.output[0],
        progress_file=progress,
    )
