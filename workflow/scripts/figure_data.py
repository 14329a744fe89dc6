"""Rule figure_data: one kind of figure data of one experiment (parquet)."""

import sys
from pathlib import Path

# the repo's package; scriptdir is ".../workflow/rules/../scripts": resolve it first
sys.path.insert(0, str(Path(snakemake.scriptdir).resolve().parents[1] / "src"))

from weightzoo.runlog import job_log
from weightzoo.stages.figuredata import figure_data

with job_log(snakemake.log[0]):
    figure_data(
        snakemake.wildcards.kind,
        snakemake.input.zoo,
        snakemake.input.groups,
        snakemake.output[0],
        snakemake.params.options,
    )
