"""Rule predict_table: every experiment's predictor scores as one markdown table."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parents[1] / "src"))  # the repo's package

from weightzoo.pipeline import predict_table
from weightzoo.runlog import job_log

with job_log(snakemake.log[0]):
    predict_table(snakemake.input.results, snakemake.output[0])
