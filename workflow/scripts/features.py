"""Rule features: the per-(trial, layer, state) features table of one experiment."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parents[1] / "src"))  # the repo's package

from weightzoo.pipeline import features
from weightzoo.runlog import job_log

with job_log(snakemake.log[0]):
    features(snakemake.input.zoo, snakemake.input.groups, snakemake.output[0])
