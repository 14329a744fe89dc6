"""Rule claims_figure: the verdict grid of the claims table (PDF + PNG)."""

import sys
from pathlib import Path

# scriptdir reads ".../workflow/rules/../scripts": resolve it before going up to the repo
sys.path.insert(0, str(Path(snakemake.scriptdir).resolve().parents[1] / "src"))

from weightzoo.runlog import job_log
from weightzoo.stages.figures import claims_figure

with job_log(snakemake.log[0]):
    claims_figure(snakemake.input.csv, snakemake.output.pdf, snakemake.output.png)
