"""Rule import_zoo: an experiment's `source:` -> results/zoo/<experiment>.h5."""

import sys
from pathlib import Path

# the repo's package; scriptdir is ".../workflow/rules/../scripts": resolve it first
REPO = Path(snakemake.scriptdir).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from weightzoo.runlog import job_log
from weightzoo.stages.zoo_import import import_experiment

with job_log(snakemake.log[0]):
    import_experiment(
        snakemake.params.source, REPO, snakemake.output[0], snakemake.wildcards.experiment
    )
