"""Rule reconstruct: predictor networks fitted to one experiment's trials."""

import sys
from pathlib import Path

# scriptdir reads ".../workflow/rules/../scripts": resolve it before going up to the repo
sys.path.insert(0, str(Path(snakemake.scriptdir).resolve().parents[1] / "src"))

import torch

from weightzoo.runlog import job_log
from weightzoo.stages.reconstruct import reconstruct

torch.set_num_threads(snakemake.threads)
with job_log(snakemake.log[0]):
    reconstruct(
        snakemake.input.zoo,
        snakemake.input.groups,
        snakemake.input.data,
        snakemake.output[0],
        snakemake.params.reconstruct,
        snakemake.params.training,
        snakemake.params.model,
    )
