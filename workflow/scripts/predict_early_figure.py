"""Rule predict_early_figure: early-prediction metrics vs epoch of one experiment."""

import sys
from pathlib import Path

# scriptdir reads ".../workflow/rules/../scripts": resolve it before going up to the repo
sys.path.insert(0, str(Path(snakemake.scriptdir).resolve().parents[1] / "src"))

from weightzoo.runlog import job_log
from weightzoo.stages.figures import predict_early_figure

with job_log(snakemake.log[0]):
    predict_early_figure(snakemake.input.early, snakemake.output.pdf, snakemake.output.png)
