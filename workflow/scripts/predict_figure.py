"""Rule predict_figure: predicted vs true accuracy of one experiment (PDF + PNG)."""

import sys
from pathlib import Path

# scriptdir reads ".../workflow/rules/../scripts": resolve it before going up to the repo
sys.path.insert(0, str(Path(snakemake.scriptdir).resolve().parents[1] / "src"))

from weightzoo.runlog import job_log
from weightzoo.stages.figures import predict_figure

with job_log(snakemake.log[0]):
    predict_figure(
        snakemake.input.results, snakemake.input.oof, snakemake.output.pdf, snakemake.output.png
    )
