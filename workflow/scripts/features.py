"""Rule features: the per-(trial, layer, state) features table of one experiment."""

import sys
from pathlib import Path

# scriptdir reads ".../workflow/rules/../scripts": resolve it before going up to the repo
sys.path.insert(0, str(Path(snakemake.scriptdir).resolve().parents[1] / "src"))

from weightzoo.runlog import job_log
from weightzoo.stages.features import features

with job_log(snakemake.log[0]):
    features(
        snakemake.input.zoo,
        snakemake.input.groups,
        snakemake.output[0],
        spectral=snakemake.params.spectral,
    )
