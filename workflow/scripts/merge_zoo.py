"""Rule merge_zoo: all job files of one experiment -> results/zoo/<experiment>.h5."""

import sys
from pathlib import Path

# the repo's package; scriptdir is ".../workflow/rules/../scripts": resolve it first
sys.path.insert(0, str(Path(snakemake.scriptdir).resolve().parents[1] / "src"))

from weightzoo.runlog import job_log
from weightzoo.stages.zoo import merge_zoo

with job_log(snakemake.log[0]):
    merge_zoo(snakemake.input.jobs, snakemake.output[0], snakemake.params.experiment)
