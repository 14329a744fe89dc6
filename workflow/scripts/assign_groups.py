"""Rule assign_groups: each trial of one experiment -> non/low/mid/high (or between)."""

import sys
from pathlib import Path

# scriptdir reads ".../workflow/rules/../scripts": resolve it before going up to the repo
sys.path.insert(0, str(Path(snakemake.scriptdir).resolve().parents[1] / "src"))

from weightzoo.pipeline import assign_groups
from weightzoo.runlog import job_log

with job_log(snakemake.log[0]):
    assign_groups(
        snakemake.input.zoo, snakemake.output[0], snakemake.params.bands, snakemake.params.groups
    )
