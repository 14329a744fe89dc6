"""Rule claims_figure: the verdict grid of the claims table (PDF + PNG)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parents[1] / "src"))  # the repo's package

from weightzoo.pipeline import claims_figure
from weightzoo.runlog import job_log

with job_log(snakemake.log[0]):
    claims_figure(snakemake.input.csv, snakemake.output.pdf, snakemake.output.png)
