"""Rule assign_groups: each trial of one experiment -> non/low/mid/high (or between)."""

import sys
from pathlib import Path

# the repo's package; scriptdir is ".../workflow/rules/../scripts": resolve it first
sys.path.insert(0, str(Path(snakemake.scriptdir).resolve().parents[1] / "src"))

from weightzoo.runlog import job_log
from weightzoo.stages.groups import assign_groups

with job_log(snakemake.log[0]):
    assign_groups(
        snakemake.input.zoo, snakemake.output[0], snakemake.params.bands, snakemake.params.groups
    )
