"""Rule predict_table: every experiment's predictor scores as one markdown table."""

import sys
from pathlib import Path

# scriptdir reads ".../workflow/rules/../scripts": resolve it before going up to the repo
sys.path.insert(0, str(Path(snakemake.scriptdir).resolve().parents[1] / "src"))

from weightzoo.runlog import job_log
from weightzoo.stages.predict import predict_table

with job_log(snakemake.log[0]):
    predict_table(snakemake.input.results, snakemake.output[0])
