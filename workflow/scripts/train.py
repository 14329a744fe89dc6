"""Rule train: one chunk of trials of one architecture as a batched ensemble."""

import sys
from pathlib import Path

# the repo's package; scriptdir is ".../workflow/rules/../scripts": resolve it first
sys.path.insert(0, str(Path(snakemake.scriptdir).resolve().parents[1] / "src"))

import torch

from weightzoo.config import DEFAULTS
from weightzoo.runlog import job_log
from weightzoo.stages.train import train_job

torch.set_num_threads(snakemake.threads)
# read here, not passed as a param: it only sizes sub-ensembles, and a changed param
# would rerun every training job
execution = {**DEFAULTS["execution"], **snakemake.config.get("execution", {})}
with job_log(snakemake.log[0]) as progress:
    train_job(
        snakemake.params.job,
        snakemake.params.seed,
        snakemake.params.settings,
        snakemake.input.data,
        snakemake.output[0],
        progress_file=progress,
        device_memory_mb=execution["device_memory_mb"],
    )
