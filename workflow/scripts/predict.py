"""Rule predict: one experiment's accuracy predicted from its weight features."""

import sys
from pathlib import Path

# scriptdir reads ".../workflow/rules/../scripts": resolve it before going up to the repo
sys.path.insert(0, str(Path(snakemake.scriptdir).resolve().parents[1] / "src"))

from weightzoo.runlog import job_log
from weightzoo.stages.predict import predict

with job_log(snakemake.log[0]):
    predict(
        snakemake.input.features,
        snakemake.output.results,
        snakemake.output.oof,
        snakemake.output.arch,
        # the reconstruction table where the experiment is reconstructed (empty otherwise)
        snakemake.input.reconstruct[0] if snakemake.input.reconstruct else None,
    )
