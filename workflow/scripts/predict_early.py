"""Rule predict_early: how early each trial's fate shows in one experiment's weights."""

import sys
from pathlib import Path

# scriptdir reads ".../workflow/rules/../scripts": resolve it before going up to the repo
sys.path.insert(0, str(Path(snakemake.scriptdir).resolve().parents[1] / "src"))

from weightzoo.runlog import job_log
from weightzoo.stages.predict import predict_early

with job_log(snakemake.log[0]):
    predict_early(snakemake.input.features, snakemake.output[0], snakemake.params.epochs)
