"""Rule merge_zoo: all job files of one experiment -> results/zoo/<experiment>.h5."""

import sys
from pathlib import Path

# scriptdir reads ".../workflow/rules/../scripts": resolve it before going up to the repo
sys.path.insert(0, str(Path(snakemake.scriptdir).resolve().parents[1] / "src"))

from weightzoo.pipeline import merge_zoo
from weightzoo.runlog import job_log

with job_log(snakemake.log[0]):
    merge_zoo(snakemake.input.jobs, snakemake.output[0], snakemake.params.experiment)
